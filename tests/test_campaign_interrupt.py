"""Ctrl-C and SIGTERM on a real CLI campaign whose products share one combined background.

Every product that was complete when the signal arrived is kept with its marker, the
report lists every product's state, nothing partial is left, the rerun computes only
the rest, and the final files equal those of an uninterrupted run.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

from daskbkg.datasets import make_dataset
from tests.cluster import wait_for
from tests.helpers import listing, same_outputs

pytestmark = pytest.mark.slow

N_PRODUCTS = 12


@pytest.fixture(scope="module")
def shared_dataset(tmp_path_factory):
    """Twelve targets sharing six backgrounds, and the uninterrupted run's outputs."""
    root = tmp_path_factory.mktemp("shared")
    data = make_dataset(root / "in", n_targets=N_PRODUCTS, n_backgrounds=6,
                        frame_shape=(512, 512), seed=30)
    reference = root / "reference"
    subprocess.run([sys.executable, "-m", "daskbkg.cli", "run", str(data.asn), "--output-dir",
                    str(reference), "--chunks", "4", "--quiet"], check=True, timeout=600)
    return data, reference


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_shared_campaign_keeps_finished_products(shared_dataset, tmp_path, sig):
    data, reference = shared_dataset
    out, report = tmp_path / "out", tmp_path / "report.json"
    argv = [sys.executable, "-m", "daskbkg.cli", "run", str(data.asn), "--output-dir", str(out),
            "--chunks", "4", "--quiet"]
    proc = subprocess.Popen([*argv, "--report", str(report)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    markers = out / ".daskbkg"
    wait_for(lambda: (markers.exists() and any(markers.glob("*_bkgsub.fits.json")))
             or proc.poll() is not None, 300, "the first finished product")
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=300)
    if proc.returncode == 0:
        pytest.skip("the campaign finished before the signal arrived")
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    finished = sorted(p.name[:-len(".json")] for p in markers.glob("*_bkgsub.fits.json"))
    assert 1 <= len(finished) < N_PRODUCTS
    assert listing(out) == finished  # complete products only: no partial or temporary file
    saved = json.loads(report.read_text())
    states = [p["state"] for p in saved["products"]]
    assert saved["interrupted"] is True and len(states) == N_PRODUCTS
    assert states.count("done") == len(finished)
    assert set(states) <= {"done", "interrupted", "not started"}
    for name in finished:
        assert (out / name).read_bytes() != b""
    assert not (markers / "shared").exists()  # the shared scratch file is gone too
    rerun = subprocess.run([*argv, "--report", str(report)], capture_output=True, text=True,
                           timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    states = [p["state"] for p in json.loads(report.read_text())["products"]]
    assert states.count("skipped") == len(finished)
    assert states.count("done") == N_PRODUCTS - len(finished)
    assert len(same_outputs(out, reference)) == N_PRODUCTS


def test_sigkill_leaves_a_usable_record(shared_dataset, tmp_path):
    """Killed outright: the manifest lists every product finished so far, the report parses."""
    data, _ = shared_dataset
    out, report = tmp_path / "out", tmp_path / "report.json"
    proc = subprocess.Popen([sys.executable, "-m", "daskbkg.cli", "run", str(data.asn),
                             "--output-dir", str(out), "--chunks", "4", "--quiet",
                             "--report", str(report)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    manifest = out / ".daskbkg" / "manifest.jsonl"
    wait_for(lambda: (manifest.exists() and manifest.read_text().count("\n") >= 2)
             or proc.poll() is not None, 300, "two finished products")
    proc.kill()
    proc.wait(timeout=60)
    finished = {p.name[:-len(".json")] for p in (out / ".daskbkg").glob("*_bkgsub.fits.json")}
    recorded = [json.loads(line) for line in manifest.read_text().splitlines()]
    done = {r["name"] for r in recorded if r["state"] == "done"}
    # Every product the manifest calls done is complete on disk (its marker is written
    # before its outcome reaches the client).
    assert len(done) >= 2 and done <= {name[:-len("_bkgsub.fits")] for name in finished}
    saved = json.loads(report.read_text())  # written atomically: always whole
    assert len(saved["products"]) == N_PRODUCTS
