"""The lazy result as a dask collection and as xarray data; zarr outputs for xarray."""

from __future__ import annotations

import json

import dask
import numpy as np
import pytest
from helpers import assert_bits_equal

import daskbkg

xr = pytest.importorskip("xarray")


@pytest.fixture
def case(inputs):
    """A rateints target with three backgrounds, tiled in three row strips."""
    rng = np.random.default_rng(7)
    target = inputs(rng.normal(10, 1, (2, 20, 12)).astype(np.float32), dq=4)
    bkgs = [inputs(rng.normal(2, 1, (2, 20, 12)).astype(np.float32), dq=1 << k)
            for k in range(3)]
    return target, bkgs


def _result(case):
    target, bkgs = case
    return daskbkg.subtract_background(target, bkgs, chunks=(8, -1))


def _assert_same(a, b):
    for name in ("sci", "err", "dq"):
        assert_bits_equal(getattr(a, name), getattr(b, name))
    assert a.status == b.status
    assert sorted(a.combined) == sorted(b.combined) == ["DQ", "ERR", "NBKG", "SCI"]
    for name in a.combined:
        assert_bits_equal(a.combined[name], b.combined[name])


def test_dask_compute_gives_the_computed_result(case):
    result = _result(case)
    reference = result.compute(scheduler="synchronous")
    (computed,) = dask.compute(result, scheduler="threads")
    assert isinstance(computed, daskbkg.ComputedResult)
    _assert_same(computed, reference)
    assert reference.dq[0, 0, 0] == 4 | 1 | 2 | 4  # target DQ ORed with every background's


def test_persist_keeps_values_and_only_the_output_blocks(case):
    result = _result(case)
    reference = result.compute()
    for persisted in (result.persist(scheduler="threads"), dask.persist(result)[0]):
        assert isinstance(persisted, daskbkg.BackgroundResult)
        # only the computed blocks are left: one graph entry per output block
        graph = dict(persisted.__dask_graph__())
        assert len(graph) == sum(a.npartitions for a in persisted.arrays().values()) == 7 * 3
        assert not any(str(k[0]).startswith("bkgstack-") for k in graph)
        _assert_same(persisted.compute(), reference)


def test_tokens_are_deterministic_and_differ_with_the_inputs(case):
    target, bkgs = case
    a, b = _result(case), _result(case)
    assert dask.base.tokenize(a) == dask.base.tokenize(b)
    other = daskbkg.subtract_background(target, bkgs, sigma=2.5, chunks=(8, -1))
    assert dask.base.tokenize(a) != dask.base.tokenize(other)


def test_visualize_delegates_to_dask(case, monkeypatch):
    seen = {}

    def fake(*args, **kwargs):
        seen["args"], seen["kwargs"] = args, kwargs
        return "drawn"

    monkeypatch.setattr(dask, "visualize", fake)
    result = _result(case)
    assert result.visualize("graph.png") == "drawn"
    assert seen["args"] == (result,)
    assert seen["kwargs"] == {"filename": "graph.png", "format": None}


def test_reprs_show_shapes_dtypes_counts_and_status(case):
    result = _result(case)
    name = result.target.name
    assert repr(result) == (f"BackgroundResult(target={name!r}, status='COMPLETE', "
                            "shape=(2, 20, 12), backgrounds=3)")
    html = result._repr_html_()
    ntasks = len(result.__dask_graph__())
    assert f"<th style='text-align:left'>tasks</th><td>{ntasks}</td>" in html
    assert "<th style='text-align:left'>backgrounds</th><td>3</td>" in html
    assert "<td>sci</td><td>(2, 20, 12)</td><td>float32</td><td>(2, 8, 12)</td>" in html
    assert "<td>nbkg</td><td>(20, 12)</td><td>int32</td><td>(8, 12)</td>" in html


def test_to_xarray_is_lazy_and_named(case):
    result = _result(case)
    ds = result.to_xarray()
    assert list(ds.data_vars) == ["sci", "err", "dq", "combined_sci", "combined_err",
                                  "combined_dq", "nbkg"]
    assert ds.sci.dims == ("integration", "y", "x")
    assert ds.nbkg.dims == ("y", "x")
    assert ds.sci.data is result.sci and ds.nbkg.data is result.combined_background.nbkg
    assert ds.attrs["S_BKDSUB"] == "COMPLETE"
    assert ds.attrs["DBKG_VER"] == daskbkg.__version__
    assert ds.attrs["INSTRUME"] == "MIRI"
    assert ds.sci.attrs["fits_extname"] == "SCI" and ds.nbkg.attrs["fits_extname"] == "NBKG"
    assert ds.attrs["HISTORY"].splitlines()[0] == f"daskbkg {daskbkg.__version__}: background step COMPLETE"
    computed = result.compute()
    assert_bits_equal(ds.sci.values, computed.sci)
    assert_bits_equal(ds.combined_dq.values, computed.combined["DQ"])


def test_zarr_output_round_trips_through_open_zarr(case, tmp_path):
    result = _result(case)
    computed = result.compute()
    out, comb = tmp_path / "t_bkgsub.zarr", tmp_path / "t_combinedbackground.zarr"
    result.to_zarr(out, combined_path=comb)
    meta = json.loads((out / "zarr.json").read_text())
    assert "consolidated_metadata" in meta and meta["consolidated_metadata"] is not None
    sci_meta = json.loads((out / "sci" / "zarr.json").read_text())
    assert sci_meta["dimension_names"] == ["integration", "y", "x"]
    ds = xr.open_zarr(out)
    for name in ("sci", "err", "dq"):
        assert ds[name].dims == ("integration", "y", "x")
        assert_bits_equal(ds[name].values, getattr(computed, name))
    assert ds.attrs["complete"] is True
    assert ds.attrs["daskbkg"]["status"] == "COMPLETE"
    cds = xr.open_zarr(comb)
    assert sorted(cds.data_vars) == ["dq", "err", "nbkg", "sci"]
    for name in cds.data_vars:
        assert cds[name].dims == ("y", "x")
        assert_bits_equal(cds[name].values, computed.combined[name.upper()])


def test_missing_xarray_names_the_extra(case, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_xarray(name, *args, **kwargs):
        if name == "xarray":
            raise ImportError("No module named 'xarray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_xarray)
    with pytest.raises(ImportError, match=r"pip install 'daskbkg\[xarray\]'"):
        _result(case).to_xarray()
