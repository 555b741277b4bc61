"""A real dask cluster for tests: a `dask scheduler` and `dask worker` processes on 127.0.0.1.

Not a LocalCluster: the scheduler and every worker are separate processes started from
the command line, as on a real cluster, all bound to loopback.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator


def spawn(args, log) -> subprocess.Popen:
    """Start ``python -m <args>`` in its own session (so it can be killed as a group)."""
    return subprocess.Popen([sys.executable, "-m", *args], stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, start_new_session=True)


def wait_for(predicate, timeout: float, what: str) -> None:
    """Poll ``predicate`` every 0.1 s; TimeoutError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise TimeoutError(f"timed out waiting for {what}")


def _address(sched_file: Path) -> str | None:
    """The scheduler's address once its file is completely written, else None."""
    try:
        return json.loads(sched_file.read_text())["address"]
    except (OSError, ValueError, KeyError):
        return None


@contextlib.contextmanager
def dask_cluster(folder: Path, workers: int = 2, memory: str = "2GB") -> Iterator[dict]:
    """A scheduler and ``workers`` single-threaded workers (no nanny), all on loopback.

    Yields ``{"address", "procs", "file"}``; every process is stopped on exit.
    """
    import distributed

    sched_file = folder / "scheduler.json"
    log = open(folder / "cluster.log", "w")
    procs = [spawn(["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
                    "--no-dashboard", "--scheduler-file", str(sched_file)], log)]
    try:
        wait_for(lambda: _address(sched_file) is not None, 60, "the scheduler file")
        address = _address(sched_file)
        for _ in range(workers):
            procs.append(spawn(["distributed.cli.dask_worker", address, "--nthreads", "1",
                                "--no-nanny", "--no-dashboard", "--host", "127.0.0.1",
                                "--memory-limit", memory], log))
        with distributed.Client(address, timeout=30) as client:
            client.wait_for_workers(workers, timeout=60)
        yield {"address": address, "procs": procs, "file": sched_file}
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=20)
        log.close()
