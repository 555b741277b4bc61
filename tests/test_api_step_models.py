"""``DaskBackgroundStep`` as a drop-in ``BackgroundStep``: datamodels in, datamodels out."""

from __future__ import annotations

import importlib.util
import warnings

import numpy as np
import pytest
from astropy.io import fits
from helpers import assert_bits_equal, random_cube_case

import daskbkg

pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("stpipe") is None
                       or importlib.util.find_spec("stdatamodels") is None,
                       reason="needs stpipe and stdatamodels (pip install 'daskbkg[jwst]')"),
    pytest.mark.filterwarnings("ignore::UserWarning"),  # toy SUBARRAY names fail the schema
]


@pytest.fixture
def case(inputs):
    return random_cube_case(inputs, seed=21)


def _step():
    from daskbkg.step import DaskBackgroundStep

    return DaskBackgroundStep


def _open(path):
    from stdatamodels.jwst import datamodels

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return datamodels.open(path)


def test_model_in_model_out_matches_the_api_bitwise(case, tmp_path):
    target, bkgs = case
    expected = daskbkg.subtract_background(target, bkgs).compute()
    model = _open(target)
    before = model.data.copy()
    result = _step().call(model, [_open(bkgs[0]), str(bkgs[1]), bkgs[2]])
    assert type(result) is type(model) and type(model).__name__ == "CubeModel"
    assert result is not model
    assert_bits_equal(np.asarray(result.data, np.float32), expected.sci)
    assert_bits_equal(np.asarray(result.dq, np.uint32), expected.dq)
    assert_bits_equal(np.asarray(result.err, np.float32), expected.err)
    assert result.meta.cal_step.bkg_subtract == "COMPLETE"
    assert_bits_equal(model.data, before)  # the input model is not modified
    assert model.meta.cal_step.bkg_subtract is None
    assert list(tmp_path.glob("*.fits")) == []  # nothing saved unless asked


@pytest.mark.parametrize("how", ["positional", "comma", "parameter", "trailing-comma"])
def test_background_list_forms(case, how):
    target, bkgs = case
    expected = daskbkg.subtract_background(target, bkgs[:2]).compute()
    names = [str(b) for b in bkgs[:2]]
    step = _step()
    if how == "positional":
        result = step.call(str(target), names)
    elif how == "comma":
        result = step.call(str(target), ",".join(names))
    elif how == "parameter":
        result = step.call(str(target), bkg_list=names)
    else:
        result = step.call(str(target), bkg_list=",".join(names) + ",")
    assert_bits_equal(np.asarray(result.data, np.float32), expected.sci)


@pytest.mark.parametrize("compat, status", [("jwst-3.0", "SKIPPED"), ("jwst-1.13", "COMPLETE")])
def test_empty_background_list_follows_the_preset(case, compat, status):
    target, _ = case
    result = _step().call(str(target), bkg_list=[], compat=compat)
    assert result.meta.cal_step.bkg_subtract == status
    with fits.open(target) as hdul:
        sci = hdul["SCI"].data
        if status == "SKIPPED":
            assert_bits_equal(np.asarray(result.data, np.float32), sci.astype(np.float32))
        else:
            assert np.isnan(result.data).all()


def test_switches_and_parameters_reach_the_computation(case):
    target, bkgs = case
    expected = daskbkg.subtract_background(target, bkgs, sigma=1.5, maxiters=1,
                                           compat="jwst-3.0", clip_scale="mad_std",
                                           propagate_err=True).compute()
    result = _step().call(str(target), [str(b) for b in bkgs], sigma=1.5, maxiters=1,
                          compat="jwst-3.0", clip_scale="mad_std", propagate_err=True,
                          chunks="8,-1", scheduler="synchronous")
    assert_bits_equal(np.asarray(result.data, np.float32), expected.sci)
    assert_bits_equal(np.asarray(result.err, np.float32), expected.err)


def test_saves_only_when_asked(case, tmp_path):
    target, bkgs = case
    expected = daskbkg.subtract_background(target, bkgs).compute()
    step = _step()(output_dir=str(tmp_path), save_results=True, save_combined_background=True)
    result = step.run(str(target), [str(b) for b in bkgs])
    assert result.meta.cal_step.bkg_subtract == "COMPLETE"
    root = target.stem  # stpipe alone keeps "_rateints" (jwst's suffix list would drop it)
    saved = sorted(p.name for p in tmp_path.glob("*.fits"))
    assert saved == [f"{root}_bkgsub.fits", f"{root}_combinedbackground.fits"]
    with fits.open(tmp_path / f"{root}_combinedbackground.fits") as hdul:
        assert_bits_equal(hdul["SCI"].data.astype(np.float32), expected.combined["SCI"])
        assert_bits_equal(hdul["DQ"].data.astype(np.uint32), expected.combined["DQ"])
    with fits.open(tmp_path / f"{root}_bkgsub.fits") as hdul:
        assert hdul[0].header["S_BKDSUB"] == "COMPLETE"
        assert_bits_equal(hdul["SCI"].data.astype(np.float32), expected.sci)


def test_association_returns_the_product_model(tmp_path):
    from daskbkg.datasets import make_dataset

    dataset = make_dataset(tmp_path / "data", n_backgrounds=2, n_targets=2, seed=5)
    results = _step().call(str(dataset.asn))
    assert isinstance(results, list) and len(results) == 2
    for result, target in zip(results, dataset.targets):
        expected = daskbkg.subtract_background(target, dataset.backgrounds).compute()
        assert_bits_equal(np.asarray(result.data, np.float32), expected.sci)
        assert result.meta.cal_step.bkg_subtract == "COMPLETE"
