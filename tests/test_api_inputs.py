"""Inputs already in memory: astropy HDULists and JWST datamodels (duck-typed)."""

from __future__ import annotations

import gc
import subprocess
import sys

import pytest
from astropy.io import fits
from helpers import assert_bits_equal, random_cube_case, read_fits

import daskbkg
from daskbkg.io.memory import MEMORY_ROOT, MemoryArray


@pytest.fixture
def case(inputs):
    target, bkgs = random_cube_case(inputs, seed=11)
    reference = daskbkg.subtract_background(target, bkgs, chunks=(8, -1))
    return target, bkgs, reference


def _assert_same(result, reference):
    got, want = result.compute(), reference.compute()
    for name in ("sci", "err", "dq"):
        assert_bits_equal(getattr(got, name), getattr(want, name))
    for name in want.combined:
        assert_bits_equal(got.combined[name], want.combined[name])


def test_hdulists_give_the_path_based_result_and_file(case, tmp_path):
    target, bkgs, reference = case
    with fits.open(target) as t_hdul:
        b_hduls = [fits.open(b) for b in bkgs]
        before = [h.data.copy() for h in t_hdul if h.data is not None and h.is_image]
        result = daskbkg.subtract_background(t_hdul, b_hduls, chunks=(8, -1))
        assert result.target.name == target.name
        assert isinstance(result.target.sci, MemoryArray)
        _assert_same(result, reference)
        result.to_fits(tmp_path / "mem.fits")
        reference.to_fits(tmp_path / "path.fits")
        after = [h.data for h in t_hdul if h.data is not None and h.is_image]
        for a, b in zip(before, after):
            assert_bits_equal(b, a)  # the HDUList is not modified
        for h in b_hduls:
            h.close()
    mem, path = read_fits(tmp_path / "mem.fits"), read_fits(tmp_path / "path.fits")
    assert mem["_order"] == path["_order"] == ["PRIMARY", "SCI", "DQ", "ERR", "VAR_POISSON",
                                                "VAR_RNOISE", "VAR_FLAT", "INT_TIMES", "ASDF"]
    for name in mem["_order"]:
        if mem[name][0] is not None:
            assert_bits_equal(mem[name][0], path[name][0])
    assert mem["PRIMARY"][1]["S_BKDSUB"] == "COMPLETE"


def test_a_single_hdulist_background_is_one_background(case):
    target, bkgs, _ = case
    with fits.open(bkgs[0]) as hdul:
        result = daskbkg.subtract_background(target, hdul, chunks=(8, -1))
        expected = daskbkg.subtract_background(target, [bkgs[0]], chunks=(8, -1))
        assert len(result.combined_background.backgrounds) == 1
        _assert_same(result, expected)


def test_hdulist_inputs_run_on_processes(case):
    target, bkgs, reference = case
    with fits.open(target) as t_hdul:
        result = daskbkg.subtract_background(t_hdul, bkgs, chunks=(8, -1))
        got = result.compute(scheduler="processes", num_workers=2)
    assert_bits_equal(got.sci, reference.compute().sci)


def test_memory_copies_are_released(case):
    import fsspec

    target, bkgs, _ = case
    fs = fsspec.filesystem("memory")
    root = MEMORY_ROOT.split("://", 1)[1]
    with fits.open(target) as t_hdul:
        result = daskbkg.subtract_background(t_hdul, bkgs, chunks=(8, -1))
        assert len(fs.find(root)) == 1
        url = result.target.path
        assert url.startswith(MEMORY_ROOT + "/") and url.endswith("/" + target.name)
    del result
    gc.collect()
    assert fs.find(root) == []


def test_unknown_objects_are_refused(case):
    target, bkgs, _ = case
    with pytest.raises(TypeError, match="expected a path, an HDUList, a datamodel or an "
                                        "Exposure, not int"):
        daskbkg.subtract_background(42, bkgs)


@pytest.mark.filterwarnings("ignore::UserWarning")  # toy SUBARRAY names fail the schema
def test_datamodels_give_the_path_based_result(case):
    datamodels = pytest.importorskip("stdatamodels.jwst.datamodels")
    target, bkgs, reference = case
    with datamodels.open(target) as model:
        bkg_models = [datamodels.open(b) for b in bkgs]
        data = model.data.copy()
        result = daskbkg.subtract_background(model, bkg_models, chunks=(8, -1))
        _assert_same(result, reference)
        assert_bits_equal(model.data, data)
        for m in bkg_models:
            m.close()


def test_import_does_not_load_stdatamodels():
    code = ("import sys, daskbkg, daskbkg.io.memory; "
            "print('stdatamodels' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"
