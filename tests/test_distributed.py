"""Real distributed runs: a `dask scheduler` and `dask worker` processes on 127.0.0.1.

The scheduler and two workers are separate processes (not a LocalCluster). A campaign
runs through the CLI with ``--scheduler tcp://127.0.0.1:PORT`` and must give the same
bits as the threaded scheduler; killing a worker in the middle must not change them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from daskbkg.cli import main
from daskbkg.datasets import make_dataset
from tests.cluster import dask_cluster
from tests.cluster import wait_for as _wait_for
from tests.helpers import listing

pytestmark = pytest.mark.slow

distributed = pytest.importorskip("distributed")


@pytest.fixture()
def cluster(tmp_path):
    """A scheduler and two single-threaded workers (no nanny), all on loopback."""
    with dask_cluster(tmp_path, workers=2) as info:
        yield info


def _files(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in listing(folder)}


def test_cli_campaign_on_scheduler_matches_threads(cluster, tmp_path):
    data = make_dataset(tmp_path / "in", n_targets=3, n_backgrounds=4, frame_shape=(64, 48),
                        seed=11)
    common = [str(data.asn), "--save-combined-background", "--chunks", "16", "--quiet"]
    assert main(["run", *common, "--output-dir", str(tmp_path / "threads")]) == 0
    assert main(["run", *common, "--output-dir", str(tmp_path / "dist"),
                 "--scheduler", cluster["address"]]) == 0
    assert main(["run", *common, "--output-dir", str(tmp_path / "file"),
                 "--scheduler", str(cluster["file"])]) == 0
    threads = _files(tmp_path / "threads")
    assert len(threads) == 6
    assert _files(tmp_path / "dist") == threads
    assert _files(tmp_path / "file") == threads


def test_worker_killed_mid_campaign(cluster, tmp_path):
    """SIGKILL one worker while tasks run: the campaign completes with identical bits."""
    data = make_dataset(tmp_path / "in", n_targets=2, n_backgrounds=8, frame_shape=(1024, 768),
                        seed=12)
    common = [str(data.asn), "--chunks", "8", "--quiet"]
    assert main(["run", *common, "--output-dir", str(tmp_path / "ref")]) == 0

    killed = threading.Event()

    def killer():
        with distributed.Client(cluster["address"], timeout=30) as client:
            def busy():
                return sum(len(v) for v in client.processing().values()) > 0
            try:
                _wait_for(busy, 60, "tasks to start")
            except TimeoutError:
                return
            time.sleep(0.1)
            victim = cluster["procs"][1]
            os.killpg(victim.pid, signal.SIGKILL)
            killed.set()

    thread = threading.Thread(target=killer)
    thread.start()
    code = main(["run", *common, "--output-dir", str(tmp_path / "dist"),
                 "--scheduler", cluster["address"]])
    thread.join()
    assert code == 0
    assert killed.is_set(), "the worker was not killed during the run"
    assert cluster["procs"][1].poll() is not None
    assert _files(tmp_path / "dist") == _files(tmp_path / "ref")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupt_then_resume(tmp_path, sig):
    """Ctrl-C or SIGTERM a CLI campaign: no partial output; the rerun finishes the rest."""
    asns = []
    for i in range(6):
        d = make_dataset(tmp_path / f"in{i}", n_targets=1, n_backgrounds=6,
                         frame_shape=(512, 512), seed=20 + i, prefix=f"jw0{i}000")
        asns.append(str(d.asn))
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "daskbkg.cli", "run", *asns, "--output-dir", str(out),
            "--chunks", "8", "--quiet"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    markers = out / ".daskbkg"
    _wait_for(lambda: markers.exists() and any(markers.glob("*.json")) or proc.poll() is not None,
              120, "the first finished product")
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    finished = sorted(p.name for p in markers.glob("*.json"))
    names = listing(out)
    assert not any(n.endswith(".tmp") or n.startswith(".") for n in names)
    assert len(names) == len(finished)  # only complete products are on disk
    if proc.returncode == 0:
        pytest.skip("the campaign finished before the interrupt arrived")
    assert proc.returncode == 130 and "interrupted" in err
    assert 1 <= len(finished) < 6
    rerun = subprocess.run([*argv, "--report", str(tmp_path / "report.json")],
                           capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    states = [p["state"] for p in json.loads((tmp_path / "report.json").read_text())["products"]]
    assert states.count("skipped") == len(finished) and states.count("done") == 6 - len(finished)
    assert len(listing(out)) == 6
