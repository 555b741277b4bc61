"""No JIT anywhere: the CLI runs end to end in a process where numba cannot be imported.

A ``sitecustomize`` module on ``PYTHONPATH`` installs an import hook that refuses numba
and llvmlite; the outputs of ``daskbkg run`` in that process must be the bits of the
same run made in-process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from helpers import write

from daskbkg.cli import main

ROOT = Path(__file__).resolve().parents[1]

BLOCKER = textwrap.dedent('''
    """Test shim: numba and llvmlite are not importable in this interpreter."""
    import sys

    class _NoJit:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("numba", "llvmlite"):
                raise ImportError(f"{name} is blocked by the daskbkg test shim")
            return None

    sys.meta_path.insert(0, _NoJit())
''')


def _blocked_env(tmp_path):
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(BLOCKER)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(shim), str(ROOT), env.get("PYTHONPATH", "")])
    return env


def _stack(folder, rateints):
    """A target and 9 noisy backgrounds wider than two blocks of the kernel (300 px)."""
    rng = np.random.default_rng(21)
    shape = (2, 5, 300) if rateints else (5, 300)
    target = write(folder, rng.normal(100.0, 1.0, shape), name="target_" + (
        "rateints.fits" if rateints else "rate.fits"))
    bkgs = []
    for k in range(9):
        sci = rng.normal(10.0, 0.5, shape)
        sci[rng.random(shape) < 0.03] += 50.0
        sci[rng.random(shape) < 0.01] = np.nan
        suffix = "rateints" if rateints else "rate"
        bkgs.append(write(folder, sci, rng.uniform(0.1, 0.3, shape), name=f"b{k}_{suffix}.fits"))
    return target, bkgs


def _arrays(folder):
    out = {}
    for path in sorted(Path(folder).glob("*.fits")):
        with fits.open(path) as hdul:
            for hdu in hdul:
                if hdu.data is not None and hdu.name in ("SCI", "ERR", "DQ"):
                    out[(path.name, hdu.name)] = np.asarray(hdu.data).tobytes()
    return out


@pytest.mark.parametrize("rateints", [False, True], ids=["rate", "rateints"])
def test_cli_without_numba_matches_in_process_run(tmp_path, rateints):
    env = _blocked_env(tmp_path)
    probe = subprocess.run([sys.executable, "-c", "import numba"], env=env,
                           capture_output=True, text=True, timeout=60)
    assert probe.returncode != 0 and "blocked by the daskbkg test shim" in probe.stderr
    inputs = tmp_path / "in"
    inputs.mkdir()
    target, bkgs = _stack(inputs, rateints)
    args = ["run", str(target), "--bkg", *map(str, bkgs), "--save-combined-background", "-q"]
    proc = subprocess.run([sys.executable, "-m", "daskbkg.cli", *args, "--output-dir",
                           str(tmp_path / "sub")], env=env, capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert main([*args, "--output-dir", str(tmp_path / "inproc")]) == 0
    got, expected = _arrays(tmp_path / "sub"), _arrays(tmp_path / "inproc")
    assert len(expected) >= 6 and got.keys() == expected.keys()
    assert all(got[key] == expected[key] for key in expected)
