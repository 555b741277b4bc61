"""Peak memory stays flat in the number of backgrounds (child-process RSS)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import pytest

from daskbkg.datasets import make_dataset

pytestmark = pytest.mark.slow


def _peak_rss_mib(argv: list[str]) -> float:
    """Run a child process and return its own peak RSS (os.wait4 rusage) in MiB."""
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            log.seek(0)
            raise AssertionError(log.read().decode()[-2000:])
    return usage.ru_maxrss / 1024.0


def test_peak_memory_does_not_grow_with_n(tmp_path):
    """N=16 full 1024² frames within 1.2x the peak of N=4 at the same budget."""
    peaks = {}
    for n in (4, 16):
        data = make_dataset(tmp_path / f"n{n}", n_backgrounds=n, frame_shape=(1024, 1024),
                            seed=n, var_arrays=False, write_asn=False)
        argv = [sys.executable, "-m", "daskbkg.cli", "run", str(data.targets[0]), "--bkg",
                *map(str, data.backgrounds), "--output-dir", str(tmp_path / f"out{n}"),
                "--save-combined-background", "--memory-limit", "64MB", "--quiet"]
        peaks[n] = _peak_rss_mib(argv)
    total_input = 16 * 3 * 4 * 1024 * 1024 / 2**20  # MiB of SCI+ERR+DQ at N=16
    print("peak RSS MiB", peaks)
    assert peaks[16] <= 1.2 * peaks[4], peaks
    assert peaks[16] < 512 and peaks[16] < 2 * total_input, peaks
