"""The native library of daskbkg/kernels/native.py.

It is built from the numba kernels, loaded without numba, gives the same bits, and stays
out of the way whenever it cannot be used.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daskbkg.kernels import combine_tile_reference, combine_tile_sorted, native, sort_once
from daskbkg.options import normalize_maxiters

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or shutil.which("cc") is None,
    reason="the native library is built on Linux with a C compiler")

ROOT = Path(__file__).resolve().parents[1]
#: What a shared object may leave to the dynamic loader: the C library, libm, and the
#: hooks every ``cc -shared`` output carries.
_LOADER_SYMBOLS = {"memset", "memcpy", "memmove", "sqrt", "__cxa_finalize",
                   "_ITM_deregisterTMCloneTable", "_ITM_registerTMCloneTable",
                   "__gmon_start__"}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A kernel cache holding a freshly built native library."""
    root = tmp_path_factory.mktemp("kernel-cache")
    patch = pytest.MonkeyPatch()
    patch.setenv("NUMBA_CACHE_DIR", str(root))
    patch.delenv("DASKBKG_NATIVE", raising=False)
    folder = native.build()
    assert folder is not None and folder.parent == root and (folder / "ok").exists()
    yield root
    patch.undo()


def _bitwise(got, expected):
    for x, y in zip(got, expected):
        assert x.dtype == y.dtype and x.shape == y.shape
        assert x.tobytes() == y.tobytes()


def test_library_needs_nothing_but_the_c_library(cache):
    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("no nm to list the symbols")
    for name in ("rate.so", "rateints.so"):
        listing = subprocess.run([nm, "-D", "--undefined-only", str(native.library_dir() / name)],
                                 capture_output=True, text=True, check=True).stdout
        undefined = {line.split()[-1].split("@")[0] for line in listing.splitlines() if line}
        assert undefined <= _LOADER_SYMBOLS, undefined


def test_default_path_uses_the_library(cache):
    kernels = native.load()
    assert kernels is not None
    rate, rateints = sort_once.compiled_kernels()
    assert rate.__self__ is kernels and rateints.__self__ is kernels


def _stack(data, rateints):
    n = data.draw(st.integers(1, 40), label="n")
    nints = data.draw(st.integers(1, 6), label="nints") if rateints else None
    width = data.draw(st.integers(1, 600), label="width")  # whole blocks and tails
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    rng = np.random.default_rng(seed)
    shape = (n, nints, 1, width) if rateints else (n, 1, width)
    sci = rng.normal(5.0, 1.0, shape).astype(np.float32)
    if data.draw(st.booleans(), label="ties"):
        sci = np.round(sci * 4) / 4  # many equal values and bound hits
    sci[rng.random(shape) < 0.05] = np.nan
    sci[rng.random(shape) < 0.03] += 80.0
    err = np.abs(rng.normal(0.3, 0.05, shape)).astype(np.float32)
    dq = rng.integers(0, 4, shape).astype(np.uint32)
    overlaps = rng.random(n) < 0.9
    return sci, err, dq, overlaps


@pytest.mark.parametrize("rateints", [False, True])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_library_matches_numba_and_the_reference(cache, monkeypatch, rateints, data):
    sci, err, dq, overlaps = _stack(data, rateints)
    sigma = data.draw(st.sampled_from([1.0, 2.0, 3.0]), label="sigma")
    maxiters = data.draw(st.sampled_from([None, 1, 3]), label="maxiters")
    args = (sci, err, dq, overlaps, sigma, normalize_maxiters(maxiters))
    reject = data.draw(st.sampled_from(["keep", "reject"]), label="all_rejected")
    options = dict(rateints=rateints, all_rejected=reject)
    assert native.load() is not None
    from_library = combine_tile_sorted(*args, **options)
    monkeypatch.setenv("DASKBKG_NATIVE", "0")
    assert native.load() is None
    from_numba = combine_tile_sorted(*args, **options)
    monkeypatch.delenv("DASKBKG_NATIVE")
    _bitwise(from_library, from_numba)
    _bitwise(from_library, combine_tile_reference(*args, **options))


_RUN = """
import sys
from daskbkg.cli import main
code = main(sys.argv[1:])
print("numba imported:", "numba" in sys.modules)
sys.exit(code)
"""


def test_cli_run_does_not_import_numba(cache, tmp_path):
    """With the library built, a whole run never imports numba.

    It writes the bits the numba path writes.
    """
    from astropy.io import fits

    from daskbkg.datasets import make_dataset

    data = make_dataset(tmp_path / "in", n_backgrounds=4, frame_shape=(64, 300), seed=3)
    results = {}
    for label, extra in (("library", {}), ("numba", {"DASKBKG_NATIVE": "0"})):
        out = tmp_path / label
        run = subprocess.run(
            [sys.executable, "-c", _RUN, "run", str(data.targets[0]), "--bkg",
             *map(str, data.backgrounds), "--output-dir", str(out), "--quiet"],
            env={**os.environ, "NUMBA_CACHE_DIR": str(cache), "PYTHONPATH": str(ROOT),
                 **extra}, capture_output=True, text=True, check=True)
        results[label] = run.stdout
        with fits.open(next(out.glob("*_bkgsub.fits"))) as hdul:
            results[label, "data"] = [hdul[e].data.tobytes() for e in ("SCI", "ERR", "DQ")]
    assert "numba imported: False" in results["library"]
    assert "numba imported: True" in results["numba"]
    assert results["library", "data"] == results["numba", "data"]


def test_switched_off_or_broken_library_is_not_used(cache, monkeypatch, tmp_path):
    monkeypatch.setenv("DASKBKG_NATIVE", "0")
    assert native.load() is None
    monkeypatch.delenv("DASKBKG_NATIVE")
    # A library folder with garbage in it (say, a truncated copy): ignored, numba runs.
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    folder = native.library_dir()
    folder.mkdir(parents=True)
    for name in ("rate.so", "rateints.so", "ok"):
        (folder / name).write_bytes(b"not a library")
    assert native.load() is None
    rate, _ = sort_once.compiled_kernels()
    assert not hasattr(rate, "__self__")  # the numba dispatcher


def test_no_compiler_means_no_library(monkeypatch, tmp_path):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    assert native.build(compiler=str(tmp_path / "no-such-cc")) is None
    assert native.load() is None
    assert not any(tmp_path.iterdir())


def test_code_needing_numba_at_run_time_is_refused():
    """An entry point that allocates would need numba's runtime: no library is made."""
    from numba import njit, types

    @njit(types.void(types.CPointer(types.float64), types.int64), error_model="numpy")
    def allocating(out, n):
        out[0] = np.ones(n).sum()

    with pytest.raises(RuntimeError, match="NRT_"):
        native._object_code(allocating, "allocating", [("out", "f8*"), ("n", "i8")])
