"""Peak memory stays flat in the number of backgrounds (child-process RSS)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from daskbkg.datasets import make_dataset

pytestmark = pytest.mark.slow


_LAUNCHER = (
    "import os, subprocess, sys\n"
    "p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
    "_, status, usage = os.wait4(p.pid, 0)\n"
    "print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)\n"
)


def _peak_rss_mib(argv: list[str]) -> float:
    """Peak RSS (MiB) of a command, measured by a small launcher process.

    On Linux a child's maximum RSS starts from its parent's at fork time; the test runner
    is large, so a fresh small process starts the command.
    """
    out = subprocess.run([sys.executable, "-c", _LAUNCHER, *argv], capture_output=True,
                         text=True, check=True)
    code, rss_kib = out.stdout.split()
    assert code == "0", out.stderr
    return int(rss_kib) / 1024.0


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
