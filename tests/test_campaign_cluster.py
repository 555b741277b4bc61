"""Campaigns on a real cluster: a `dask scheduler` and four single-thread `dask worker`s.

What a cluster user needs from a campaign: every worker busy while products remain,
the workers (not the client) writing the outputs, and the same bits as a threaded run.
"""

from __future__ import annotations

import pytest

from daskbkg import Campaign, RunSettings
from daskbkg.datasets import make_dataset
from tests.cluster import dask_cluster
from tests.helpers import same_outputs

pytestmark = pytest.mark.slow

distributed = pytest.importorskip("distributed")


def _client_bytes_written() -> int:
    """Bytes this process passed to write() and pwrite() so far (``wchar`` of /proc/self/io)."""
    with open("/proc/self/io") as f:
        for line in f:
            if line.startswith("wchar:"):
                return int(line.split()[1])
    raise AssertionError("no wchar in /proc/self/io")


def _worker_to_worker_bytes(client) -> int:
    """Bytes the workers fetched from each other since they started.

    Results the client gathers are not counted: those are outgoing, not incoming, transfers.
    """

    def fetched(dask_worker) -> int:
        return sum(entry["total"] for entry in dask_worker.transfer_incoming_log)

    return sum(client.run(fetched).values())


def _compute_intervals(task_stream) -> list[tuple[float, float]]:
    return [(ss["start"], ss["stop"]) for rec in task_stream.data
            for ss in rec["startstops"] if ss["action"] == "compute"]


def test_campaign_keeps_four_workers_busy_and_workers_write(tmp_path):
    """16 products with their own backgrounds on 4 workers.

    The scheduler's record of compute intervals shows at least 0.8 x 4 tasks running on
    average over the busy window; the client process writes at most 5 % of the output
    bytes; the files equal those of a threaded run.
    """
    asns = [str(make_dataset(tmp_path / f"in{i}", n_targets=1, n_backgrounds=4,
                             frame_shape=(256, 256), seed=100 + i,
                             prefix=f"jw{10000 + i}").asn) for i in range(16)]
    with dask_cluster(tmp_path, workers=4) as info, distributed.Client(info["address"]) as client:
        before = _client_bytes_written()
        with distributed.get_task_stream(client) as stream:
            report = Campaign.from_inputs(asns, RunSettings(output_dir=tmp_path / "dist")).run(
                {"scheduler": client})
        written = _client_bytes_written() - before
        moved = _worker_to_worker_bytes(client)
    assert [o.state for o in report.outcomes] == ["done"] * 16
    assert moved == 0  # each product is read, combined and written by one task
    intervals = _compute_intervals(stream)
    assert len(intervals) == 16  # one task per product: reading, combining, writing
    busy = max(b for _, b in intervals) - min(a for a, _ in intervals)
    concurrency = sum(b - a for a, b in intervals) / busy
    assert concurrency >= 0.8 * 4, concurrency
    output_bytes = sum(p.stat().st_size for p in (tmp_path / "dist").iterdir() if p.is_file())
    assert written <= 0.05 * output_bytes, (written, output_bytes)
    threaded = Campaign.from_inputs(asns, RunSettings(output_dir=tmp_path / "threads")).run()
    assert threaded.ok
    assert len(same_outputs(tmp_path / "dist", tmp_path / "threads")) == 16


def test_shared_background_on_cluster_computed_once(tmp_path):
    """Eight products sharing four backgrounds: one combined-background task, eight products."""
    data = make_dataset(tmp_path / "in", n_targets=8, n_backgrounds=4, frame_shape=(128, 96),
                        seed=5)
    settings = RunSettings(output_dir=tmp_path / "dist", save_combined=True)
    with dask_cluster(tmp_path, workers=2) as info, distributed.Client(info["address"]) as client:
        with distributed.get_task_stream(client) as stream:
            report = Campaign.from_inputs([str(data.asn)], settings).run({"scheduler": client})
    assert report.ok and len(report.outcomes) == 8
    names = [rec["key"] if isinstance(rec["key"], str) else str(rec["key"]) for rec in stream.data]
    assert sum("daskbkg-combined" in n for n in names) == 1
    assert sum("daskbkg-product" in n for n in names) == 8
    assert len({o.combined_key for o in report.outcomes}) == 1
    threaded = Campaign.from_inputs([str(data.asn)], settings.replace(
        output_dir=tmp_path / "threads")).run()
    assert threaded.ok
    assert len(same_outputs(tmp_path / "dist", tmp_path / "threads")) == 16


def test_ctrl_c_on_a_cluster_campaign_is_one_line(tmp_path):
    """SIGINT to `daskbkg run --scheduler ADDRESS`: exit 130, one line, no traceback."""
    import signal
    import subprocess
    import sys

    from tests.cluster import wait_for

    data = make_dataset(tmp_path / "in", n_targets=8, n_backgrounds=6, frame_shape=(512, 512),
                        seed=31)
    out = tmp_path / "out"
    with dask_cluster(tmp_path, workers=2) as info:
        proc = subprocess.Popen(
            [sys.executable, "-m", "daskbkg.cli", "run", str(data.asn), "-o", str(out),
             "--chunks", "4", "--scheduler", info["address"], "--report", str(tmp_path / "r.json")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: (tmp_path / "r.json").exists() or (out / ".daskbkg").exists()
                 or proc.poll() is not None, 120, "the campaign to start")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("the campaign finished before the signal arrived")
    assert proc.returncode == 130
    lines = [ln for ln in err.splitlines() if not ln.startswith("dask dashboard:")]
    assert len(lines) == 1 and lines[0].startswith("daskbkg: interrupted; ")
    assert "Traceback" not in err


def test_single_product_spreads_its_tiles_over_the_cluster(tmp_path):
    """One product on two workers: its tiles run on both, the bits equal a threaded run."""
    data = make_dataset(tmp_path / "in", n_targets=1, n_backgrounds=4, frame_shape=(256, 256),
                        seed=12)
    settings = RunSettings(output_dir=tmp_path / "dist", chunks=(16, -1), save_combined=True)
    with dask_cluster(tmp_path, workers=2) as info, distributed.Client(info["address"]) as client:
        with distributed.get_task_stream(client) as stream:
            report = Campaign.from_inputs([str(data.asn)], settings).run({"scheduler": client})
        moved = _worker_to_worker_bytes(client)
    assert report.ok
    assert len({rec["worker"] for rec in stream.data}) == 2
    # Samples never travel (each tile is read and combined in one task); at most the
    # packed per-pixel results (16 bytes) and the target tiles (12 bytes) do.
    assert moved <= 28 * 256 * 256, moved
    Campaign.from_inputs([str(data.asn)], settings.replace(output_dir=tmp_path / "threads")).run()
    assert len(same_outputs(tmp_path / "dist", tmp_path / "threads")) == 2
