"""WFSS through the CLI and associations, with the box-table route (no gwcs needed)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from astropy.io import fits

from daskbkg.cli import main
from daskbkg.datasets import make_wfss_scene
from daskbkg.result import BackgroundResult
from daskbkg.wfss import WfssParams, build_wfss_product
from tests.helpers import hashes, listing


@pytest.fixture()
def scene(tmp_path):
    return make_wfss_scene(tmp_path / "in", shape=(96, 128), seed=4)


def _expected(scene, method):
    product = build_wfss_product(scene.target, bkg_ref=scene.reference,
                                 source_boxes=scene.boxes, params=WfssParams(method=method))
    return product, BackgroundResult(product).compute()


@pytest.mark.parametrize("method", ["robust-mean", "weighted"])
def test_cli_wfss_matches_api(scene, tmp_path, method, capsys):
    out = tmp_path / "out"
    inputs = hashes([scene.target, scene.reference, scene.boxes])
    code = main(["run", str(scene.target), "--wfss-bkg-ref", str(scene.reference),
                 "--source-boxes", str(scene.boxes), "--wfss-method", method,
                 "--output-dir", str(out), "--save-wfss-boxes"])
    assert code == 0
    product, expected = _expected(scene, method)
    root = scene.target.name.rsplit("_rate", 1)[0]
    with fits.open(out / f"{root}_bkgsub.fits") as hdul:
        assert hdul[0].header["S_BKDSUB"] == "COMPLETE"
        assert np.array_equal(hdul["SCI"].data, expected.sci, equal_nan=True)
        assert np.array_equal(hdul["DQ"].data, expected.dq)
        history = "\n".join(str(h) for h in hdul[0].header["HISTORY"])
        assert "WFSS scale factor" in history and method in history
    assert abs(product.info["scale_factor"] - scene.scale) < 0.01
    assert (out / f"{root}_wfssboxes.ecsv").exists()
    assert hashes([scene.target, scene.reference, scene.boxes]) == inputs


def test_cli_wfss_asn_with_sourcecat_member(scene, tmp_path):
    """An association whose science member is WFSS runs the WFSS path."""
    asn = scene.outdir / "wfss_asn.json"
    asn.write_text(json.dumps({"asn_type": "spec2", "asn_id": "a1", "products": [
        {"name": "wfssprod", "members": [
            {"expname": scene.target.name, "exptype": "science"},
            {"expname": scene.catalog.name, "exptype": "sourcecat"}]}]}))
    out = tmp_path / "out"
    code = main(["run", str(asn), "--wfss-bkg-ref", str(scene.reference),
                 "--source-boxes", str(scene.boxes), "--output-dir", str(out)])
    assert code == 0
    assert listing(out) == ["wfssprod_bkgsub.fits"]
    _, expected = _expected(scene, "robust-mean")
    with fits.open(out / "wfssprod_bkgsub.fits") as hdul:
        assert np.array_equal(hdul["SCI"].data, expected.sci, equal_nan=True)


def test_cli_wfss_without_reference_is_one_clear_error(scene, tmp_path, capsys):
    code = main(["run", str(scene.target), "--output-dir", str(tmp_path / "out")])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--wfss-bkg-ref" in err[0] and scene.target.name in err[0]
    assert not (tmp_path / "out").exists() or listing(tmp_path / "out") == []


def test_cli_wfss_missing_reference_file(scene, tmp_path, capsys):
    code = main(["run", str(scene.target), "--wfss-bkg-ref", str(tmp_path / "nope.fits"),
                 "--source-boxes", str(scene.boxes), "--output-dir", str(tmp_path / "out")])
    assert code == 2
    err = capsys.readouterr().err
    assert "nope.fits" in err and err.count("\n") == 1


def test_api_wfss_matches_builder(scene):
    """daskbkg.subtract_wfss_background is the public face of the WFSS builder."""
    import daskbkg

    result = daskbkg.subtract_wfss_background(scene.target, scene.reference,
                                              source_boxes=scene.boxes, method="weighted",
                                              record_scale_factor=True)
    _, expected = _expected(scene, "weighted")
    got = result.compute()
    assert got.sci.tobytes() == expected.sci.tobytes() and got.status == "COMPLETE"
    assert result.product.primary_updates["BKGD_SCL"] == result.product.info["scale_factor"]
