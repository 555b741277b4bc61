"""The WFSS product end to end (algorithm page W.2, W.5, W.7–W.10; oracles W7–W9).

Statuses, DQ, the synthetic scene, chunking, subarrays, bad inputs and the FITS output.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from astropy.io import fits

from daskbkg._wfss_scene import (
    append_dq_def,
    make_wfss_scene,
    write_source_catalog,
)
from daskbkg.datasets import write_exposure
from daskbkg.errors import InputError
from daskbkg.io.layout import scan_fits
from daskbkg.options import make_compat
from daskbkg.result import BackgroundResult
from daskbkg.wfss import build_wfss_product, read_box_table, save_wfss_boxes
from daskbkg.wfss.errors import (
    WfssDependencyError,
    WfssFileNotFoundError,
    WfssNoCatalogError,
    WfssNoWcsError,
    WfssShapeError,
)
from daskbkg.wfss.params import WfssParams

WEIGHTED = make_compat(wfss_method="weighted")


def bits(a):
    """Bit patterns of a float32 array."""
    return np.asarray(a, dtype=np.float32).view(np.uint32)


# ------------------------------------------------------------------------------ helpers
def wfss_target(folder, sci, dq=0, err=1.0, *, name="t_rate.fits", dispaxis=1,
                scatfile=None, exp_type="NRC_WFSS", instrument="NIRCAM", **kwargs):
    """Write a small NIRCam WFSS target."""
    sci = np.asarray(sci, dtype=np.float32)
    err = np.broadcast_to(np.asarray(err, dtype=np.float32), sci.shape).copy()
    dq = np.broadcast_to(np.asarray(dq, dtype=np.uint32), sci.shape).copy()
    primary = {"FILTER": "F356W", "PUPIL": "GRISMR", **kwargs.pop("extra_primary", {})}
    if scatfile is not None:
        primary["SCATFILE"] = scatfile
    return write_exposure(folder / name, sci, err, dq, instrument=instrument,
                          exp_type=exp_type, extra_primary=primary,
                          extra_sci={"DISPAXIS": dispaxis}, **kwargs)


def ref_file(folder, sci, dq=0, *, name="wfssbkg.fits", dq_def=None):
    """Write a background reference image (optionally with a DQ_DEF table)."""
    sci = np.asarray(sci, dtype=np.float32)
    dq = np.broadcast_to(np.asarray(dq, dtype=np.uint32), sci.shape).copy()
    path = write_exposure(folder / name, sci, np.ones_like(sci), dq, instrument="NIRCAM",
                          exp_type="NRC_WFSS", var_arrays=False, asdf_extension=False)
    if dq_def is not None:
        append_dq_def(path, dq_def)
    return path


def mask_file(folder, mask, name="mask.fits"):
    """Write a user mask file (MASK extension, nonzero = background)."""
    hdus = [fits.PrimaryHDU(), fits.ImageHDU(np.asarray(mask).astype(np.uint32), name="MASK")]
    fits.HDUList(hdus).writeto(folder / name)
    return folder / name


def computed(product, **kwargs):
    """Compute a product with the synchronous scheduler."""
    return BackgroundResult(product).compute(scheduler="synchronous", **kwargs)


# ------------------------------------------------------------------------------ W7-W9
def test_w7_end_to_end(tmp_path):
    """W7 through the product: means, factor and exact output bits."""
    row, col = np.mgrid[0:10, 0:11]
    ref = ((row * 11 + col) % 7 + 1).astype(np.float32)
    sci = (ref / 3).astype(np.float32)
    sci[0, 0] = 50
    product = build_wfss_product(
        wfss_target(tmp_path, sci), bkg_ref=ref_file(tmp_path, ref),
        source_mask=mask_file(tmp_path, np.ones(sci.shape)))
    assert product.status == "COMPLETE"
    assert product.info["sci_mean"] == 1.3248945187918748
    assert product.info["ref_mean"] == 3.9746835443037973
    assert product.info["scale_factor"] == 0.3333333343457265
    assert product.info["scale_factor_float32"] == float(np.float32(0.33333334))
    assert product.primary_updates == {"S_BKDSUB": "COMPLETE"}
    out = computed(product)
    expected = np.array([49.666668, 0, 0, 0, -1.1920929e-07, 0, -2.3841858e-07, 0], np.float32)
    assert np.array_equal(bits(out.sci[0, :8]), bits(expected))
    assert out.sci.dtype == np.float32 and out.dq.dtype == np.uint32


def test_w8_nan_reference_dq_and_err(tmp_path):
    """W8: reference NaN, DQ OR, ERR unchanged, COMPLETE."""
    ref = ((1 + 0.1 * np.arange(20)) * np.ones((10, 1))).astype(np.float32)
    sci = (0.5 * ref.astype(np.float64)).astype(np.float32)
    sci[:, 11:] = (0.5 * ref[:, 11:].astype(np.float64) + 100).astype(np.float32)
    ref[0, 0] = np.nan
    ref_dq = np.zeros(ref.shape, np.uint32)
    ref_dq[1, 1] = 4
    dq = np.zeros(ref.shape, np.uint32)
    dq[2, 2], dq[3, 3] = 1, 1025
    err = np.random.default_rng(0).random(ref.shape).astype(np.float32)
    mask = np.zeros(ref.shape, bool)
    mask[:, :11] = True
    target = wfss_target(tmp_path, sci, dq, err)
    product = build_wfss_product(target, bkg_ref=ref_file(tmp_path, ref, ref_dq),
                                 source_mask=mask_file(tmp_path, mask))
    assert (product.info["sci_mean"], product.info["ref_mean"]) == (0.75, 1.5)
    assert product.info["scale_factor"] == 0.5
    assert product.info["pixel_test"] == {"mode": "jwst-1.13", "count": 109, "threshold": 100,
                                          "passed": True}
    out = computed(product)
    expected = np.zeros(ref.shape, np.float32)
    expected[0, 0] = 0.5
    expected[:, 11:] = 100
    assert np.array_equal(out.sci, expected)
    assert (out.dq[1, 1], out.dq[2, 2], out.dq[3, 3]) == (4, 1, 1025)
    assert np.count_nonzero(out.dq) == 3
    assert np.array_equal(bits(out.err), bits(err))
    assert product.status == "COMPLETE"


@pytest.mark.parametrize("dq_case, status", [("zeros", "COMPLETE"), ("one", "SKIPPED"),
                                             ("threes", "COMPLETE")])
def test_w9_pixel_count(tmp_path, dq_case, status):
    """W9: the 100-pixel rule and its precedence bug."""
    rng = np.random.default_rng(1)
    sci = rng.random((20, 20)).astype(np.float32)
    ref = (1 + rng.random((20, 20))).astype(np.float32)
    mask = np.zeros((20, 20), bool)
    mask.flat[:100] = True
    dq = {"zeros": np.zeros((20, 20), np.uint32), "threes": np.full((20, 20), 3, np.uint32),
          "one": np.where(np.arange(400).reshape(20, 20) == 7, 1, 0).astype(np.uint32)}[dq_case]
    product = build_wfss_product(wfss_target(tmp_path, sci, dq), bkg_ref=ref_file(tmp_path, ref),
                                 source_mask=mask_file(tmp_path, mask))
    assert product.status == status
    assert product.primary_updates["S_BKDSUB"] == status
    out = computed(product)
    if status == "SKIPPED":
        assert np.array_equal(bits(out.sci), bits(sci)) and np.array_equal(out.dq, dq)
        assert "not enough background pixels" in product.notes[0]
    else:
        assert not np.array_equal(out.sci, sci)


# ------------------------------------------------------------------------------ the scene
@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """Write the default synthetic scene once per module."""
    return make_wfss_scene(tmp_path_factory.mktemp("scene"))


@pytest.mark.parametrize("seed, dispaxis", [(0, 1), (3, 2)])
def test_scene_recovers_the_true_scale(tmp_path, seed, dispaxis):
    """Both estimators find the true scale (0.42).

    Tolerances: the robust mean within 2e-3 (its 25-75 % trimming biases the ratio slightly
    low, as in the reference), the weighted fit within 5e-4.
    """
    s = make_wfss_scene(tmp_path, seed=seed, dispaxis=dispaxis)
    robust = build_wfss_product(s.target, bkg_ref=s.reference, source_boxes=s.boxes)
    weighted = build_wfss_product(s.target, bkg_ref=s.reference, source_boxes=s.boxes,
                                  compat=make_compat("jwst-3.0"))
    assert abs(robust.info["scale_factor"] - s.scale) < 2e-3
    assert abs(weighted.info["scale_factor"] - s.scale) < 5e-4
    assert weighted.primary_updates["BKGD_SCL"] == weighted.info["scale_factor"]
    assert robust.info["n_boxes"] == s.n_boxes
    # Residual background outside the boxes is close to zero.
    mask = np.ones(s.shape, bool)
    for b in read_box_table(s.boxes):
        mask[max(b.ymin, 0):b.ymax + 1, max(b.xmin, 0):b.xmax + 1] = False
    residual = computed(weighted).sci[mask]
    assert abs(np.nanmedian(residual)) < 2e-3


@pytest.mark.parametrize("compat", [make_compat(), make_compat("jwst-3.0")],
                         ids=["robust", "weighted"])
def test_chunked_equals_unchunked(scene, compat):
    """Any chunking gives bit-identical SCI and DQ."""
    results = []
    for chunks in (None, (256, -1), (37, 50), (64, 64), (1, -1)):
        product = build_wfss_product(scene.target, bkg_ref=scene.reference,
                                     source_boxes=scene.boxes, compat=compat, chunks=chunks)
        out = computed(product)
        results.append((bits(out.sci), out.dq))
    for sci, dq in results[1:]:
        assert np.array_equal(sci, results[0][0]) and np.array_equal(dq, results[0][1])


def test_statistics_are_eager_and_subtraction_lazy(scene):
    """Building computes no dask graph; the outputs are dask arrays."""
    import dask

    def refuse(*args, **kwargs):
        raise AssertionError("building the product must not compute a dask graph")

    with dask.config.set(scheduler=refuse):
        product = build_wfss_product(scene.target, bkg_ref=scene.reference,
                                     source_boxes=scene.boxes)
    assert product.info["scale_factor"] is not None
    import dask.array as da

    assert isinstance(product.sci, da.Array) and isinstance(product.dq, da.Array)


def test_robust_versus_weighted_nan_reference(scene):
    """Reference NaN: left unsubtracted (robust) or propagated (weighted)."""
    robust = computed(build_wfss_product(scene.target, bkg_ref=scene.reference,
                                         source_boxes=scene.boxes))
    weighted = computed(build_wfss_product(scene.target, bkg_ref=scene.reference,
                                           source_boxes=scene.boxes, compat=WEIGHTED))
    with fits.open(scene.reference) as hdul:
        ref_nan = np.isnan(hdul["SCI"].data)
    with fits.open(scene.target) as hdul:
        sci = np.array(hdul["SCI"].data, dtype=np.float32)
    keep = ref_nan & ~np.isnan(sci)
    assert keep.any()
    assert np.array_equal(bits(robust.sci[keep]), bits(sci[keep]))  # unsubtracted
    assert np.isnan(weighted.sci[ref_nan]).all()  # propagated


def test_dq_def_translation(tmp_path):
    """Non-standard reference DQ bits are translated through DQ_DEF."""
    s = make_wfss_scene(tmp_path, remap_dq=True, seed=2)
    out = computed(build_wfss_product(s.target, bkg_ref=s.reference, source_boxes=s.boxes))
    with fits.open(s.reference) as hdul:
        raw = np.array(hdul["DQ"].data).astype(np.uint32)
    with fits.open(s.target) as hdul:
        tdq = np.array(hdul["DQ"].data).astype(np.uint32)
    warm = (raw & 2) != 0
    assert warm.any() and ((out.dq[warm] & 4096) != 0).all()
    assert not (out.dq & 8).any()  # the non-standard flag is dropped
    assert not ((out.dq & 2) != 0)[warm & ((tdq & 2) == 0)].any()


def test_weighted_without_catalog_uses_every_pixel(scene, tmp_path):
    """Without any catalog the weighted method uses every pixel; robust raises."""
    with fits.open(scene.target) as hdul:
        sci, err, dq = (np.array(hdul[n].data) for n in ("SCI", "ERR", "DQ"))
    target = wfss_target(tmp_path, sci, dq.astype(np.uint32), err)  # no SCATFILE
    product = build_wfss_product(target, bkg_ref=scene.reference, compat=WEIGHTED)
    assert product.info["mask_origin"] == "all" and "pixel_test" not in product.info
    assert product.status == "COMPLETE"
    with pytest.raises(ValueError, match="SCATFILE"):
        build_wfss_product(target, bkg_ref=scene.reference)  # the reference's ValueError


def test_user_mask_rule_of_the_weighted_method(scene, tmp_path):
    """A user mask needs one usable pixel (weighted) or the W.5 rule (robust)."""
    mask = np.zeros(scene.shape, bool)
    mask[100, 100:103] = True
    ok = build_wfss_product(scene.target, bkg_ref=scene.reference, compat=WEIGHTED,
                            source_mask=mask_file(tmp_path, mask))
    assert ok.info["pixel_test"]["mode"] == "user-mask" and ok.status == "COMPLETE"
    robust = build_wfss_product(scene.target, bkg_ref=scene.reference,
                                source_mask=tmp_path / "mask.fits")
    assert robust.status == "SKIPPED"  # 3 < 100 under the default rule


def test_jwst30_pixel_test_failure(scene, tmp_path):
    """jwst-3.0 pixel test failure: FAILED, BKGD_SCL 0, MASK written, data unchanged."""
    mask = np.zeros(scene.shape, bool)
    mask[:10, :] = True  # 2560 < 5 % of 65536 = 3276
    product = build_wfss_product(scene.target, bkg_ref=scene.reference,
                                 source_mask=mask_file(tmp_path, mask),
                                 compat=make_compat("jwst-3.0", wfss_method="robust-mean"))
    assert product.status == "FAILED"
    assert product.primary_updates == {"S_BKDSUB": "FAILED", "BKGD_SCL": 0.0}
    (name, data, kind), = product.extra_arrays
    assert (name, kind) == ("MASK", "uint32")
    assert np.array_equal(data.compute(scheduler="synchronous"), mask.astype(np.uint32))
    out = computed(product)
    with fits.open(scene.target) as hdul:
        assert np.array_equal(bits(out.sci), bits(hdul["SCI"].data))


def test_weighted_non_finite_factor_fails(tmp_path):
    """A non-finite weighted factor gives FAILED."""
    rng = np.random.default_rng(4)
    sci = rng.random((20, 30)).astype(np.float32)
    product = build_wfss_product(
        wfss_target(tmp_path, sci, err=0.0), bkg_ref=ref_file(tmp_path, np.ones((20, 30))),
        source_mask=mask_file(tmp_path, np.ones((20, 30))),
        compat=make_compat("jwst-3.0"))
    assert product.status == "FAILED" and product.primary_updates["BKGD_SCL"] == 0.0
    assert "not finite" in product.notes[0]


def test_zero_reference_mean_keeps_data_but_ors_dq(tmp_path):
    """Zero reference mean: data unchanged, DQ ORed, COMPLETE."""
    sci = np.random.default_rng(5).random((20, 30)).astype(np.float32)
    ref_dq = np.zeros((20, 30), np.uint32)
    ref_dq[4, 5] = 2048
    product = build_wfss_product(
        wfss_target(tmp_path, sci), bkg_ref=ref_file(tmp_path, np.zeros((20, 30)), ref_dq),
        source_mask=mask_file(tmp_path, np.ones((20, 30))),
        compat=make_compat(record_scale_factor=True))
    assert product.status == "COMPLETE" and product.info["scale_factor"] is None
    assert product.primary_updates["BKGD_SCL"] == 0.0
    out = computed(product)
    assert np.array_equal(bits(out.sci), bits(sci)) and out.dq[4, 5] == 2048


def test_subarray_target_and_reference_cut(tmp_path):
    """Subarray target: error by default, 'cut' equals a pre-cut reference."""
    full = make_wfss_scene(tmp_path / "full", seed=5)
    sub = make_wfss_scene(tmp_path / "sub", seed=5, window=(33, 65, 128, 96))
    with pytest.raises(IndexError, match="wfss_subarray='cut'") as info:
        build_wfss_product(sub.target, bkg_ref=full.reference, source_boxes=full.boxes)
    assert isinstance(info.value, WfssShapeError)
    cut = build_wfss_product(sub.target, bkg_ref=full.reference, source_boxes=full.boxes,
                             compat=make_compat(wfss_subarray="cut"), chunks=(40, 50))
    with fits.open(full.reference) as hdul:
        window = (slice(64, 160), slice(32, 160))
        pre_cut = ref_file(tmp_path, hdul["SCI"].data[window],
                           np.array(hdul["DQ"].data[window]).astype(np.uint32), name="cut.fits")
    direct = build_wfss_product(sub.target, bkg_ref=pre_cut, source_boxes=full.boxes)
    assert cut.info["scale_factor"] == direct.info["scale_factor"]
    a, b = computed(cut), computed(direct)
    assert np.array_equal(bits(a.sci), bits(b.sci)) and np.array_equal(a.dq, b.dq)


# ------------------------------------------------------------------------------ bad inputs
def test_missing_catalog_file(scene, tmp_path):
    """A SCATFILE naming a missing file raises FileNotFoundError."""
    target = wfss_target(tmp_path, np.ones((8, 8)), scatfile="absent_cat.ecsv")
    with pytest.raises(FileNotFoundError, match="absent_cat.ecsv") as info:
        build_wfss_product(target, bkg_ref=ref_file(tmp_path, np.ones((8, 8))),
                           wavelengthrange=scene.wavelengthrange)
    assert isinstance(info.value, WfssFileNotFoundError)


def test_catalog_without_usable_rows_gives_all_background(scene, tmp_path):
    """A catalog selecting nothing gives an all-background mask."""
    cat = write_source_catalog(tmp_path / "cat.ecsv", [1, 2], [3.0, 4.0], [5.0, 6.0],
                               [20.0, np.nan], masked=[True, False])
    target = wfss_target(tmp_path, np.random.default_rng(2).random((16, 16)),
                         scatfile="cat.ecsv")
    product = build_wfss_product(target, bkg_ref=ref_file(tmp_path, np.ones((16, 16))),
                                 wavelengthrange=scene.wavelengthrange)
    assert product.info["mask_origin"] == "catalog" and product.info["n_selected"] == 0
    assert product.info["n_boxes"] == 0
    assert product.info["mask_background_pixels"] == 256
    assert product.status == "COMPLETE"
    assert product.info["catalog"] == str(cat)


def test_missing_reference_file(scene, tmp_path):
    """A missing background reference raises FileNotFoundError."""
    with pytest.raises(FileNotFoundError, match="background reference") as info:
        build_wfss_product(scene.target, bkg_ref=tmp_path / "nope.fits",
                           source_boxes=scene.boxes)
    assert isinstance(info.value, InputError)


def test_target_without_wcs(scene):
    """No grism WCS: AttributeError naming the alternatives."""
    pytest.importorskip("stdatamodels.jwst.datamodels")
    with pytest.raises(AttributeError) as info:
        build_wfss_product(scene.target, bkg_ref=scene.reference)
    assert isinstance(info.value, WfssNoWcsError)
    message = str(info.value)
    assert "--source-mask" in message and "--source-boxes" in message
    assert "grism WCS" in message


def test_plain_datamodel_rate_file_has_no_wcs(scene, tmp_path):
    """A stdatamodels rate file (meta.wcs None) has no grism WCS."""
    datamodels = pytest.importorskip("stdatamodels.jwst.datamodels")
    model = datamodels.ImageModel(data=np.ones((16, 16), np.float32),
                                  err=np.ones((16, 16), np.float32),
                                  dq=np.zeros((16, 16), np.uint32))
    model.meta.exposure.type = "NRC_WFSS"
    model.meta.instrument.name = "NIRCAM"
    model.meta.instrument.filter = "F356W"
    model.meta.instrument.pupil = "GRISMR"
    model.meta.subarray.xsize = model.meta.subarray.ysize = 16
    model.meta.subarray.xstart = model.meta.subarray.ystart = 1
    model.save(tmp_path / "plain_rate.fits")
    model.close()
    cat = write_source_catalog(tmp_path / "cat.ecsv", [1], [3.0], [5.0], [20.0])
    with pytest.raises(AttributeError, match="has no grism WCS"):
        build_wfss_product(tmp_path / "plain_rate.fits",
                           bkg_ref=ref_file(tmp_path, np.ones((16, 16))),
                           source_catalog=cat, wavelengthrange=scene.wavelengthrange)


def test_missing_optional_dependencies(scene, monkeypatch):
    """Without stdatamodels the error names the extra and the alternatives."""
    monkeypatch.setitem(sys.modules, "stdatamodels.jwst.datamodels", None)
    monkeypatch.setitem(sys.modules, "stdatamodels.jwst", None)
    with pytest.raises(ImportError, match=r"pip install daskbkg\[wfss\]") as info:
        build_wfss_product(scene.target, bkg_ref=scene.reference)
    assert isinstance(info.value, WfssDependencyError)
    assert "--source-boxes" in str(info.value)


def test_conflicting_and_invalid_inputs(scene, tmp_path):
    """Mask plus boxes, 3-D targets, non-WFSS targets and bad cuts are refused."""
    with pytest.raises(ValueError, match="not both"):
        build_wfss_product(scene.target, bkg_ref=scene.reference, source_boxes=scene.boxes,
                           source_mask=mask_file(tmp_path, np.ones(scene.shape)))
    cube = wfss_target(tmp_path, np.ones((2, 8, 8)), name="cube_rateints.fits")
    with pytest.raises(IndexError, match="2-D"):
        build_wfss_product(cube, bkg_ref=ref_file(tmp_path, np.ones((8, 8))),
                           source_boxes=scene.boxes)
    imaging = wfss_target(tmp_path, np.ones((8, 8)), exp_type="NRC_IMAGE", name="img.fits")
    with pytest.raises(ValueError, match="WFSS path"):
        build_wfss_product(imaging, bkg_ref=scene.reference, source_boxes=scene.boxes)
    with pytest.raises(TypeError):
        build_wfss_product(scene.target, bkg_ref=scene.reference,
                           params=WfssParams(mmag_extract="26"))


def test_mir_wfss_only_under_jwst30(tmp_path):
    """MIR_WFSS takes the WFSS path only under compat='jwst-3.0'."""
    sci = np.random.default_rng(6).random((12, 12)).astype(np.float32)
    target = wfss_target(tmp_path, sci, exp_type="MIR_WFSS", instrument="MIRI")
    kwargs = dict(bkg_ref=ref_file(tmp_path, 1 + sci),
                  source_mask=mask_file(tmp_path, np.ones((12, 12))))
    with pytest.raises(ValueError):
        build_wfss_product(target, **kwargs)
    product = build_wfss_product(target, compat=make_compat("jwst-3.0"), **kwargs)
    assert product.status == "COMPLETE"


def test_missing_scatfile_with_catalog_override(scene, tmp_path):
    """No SCATFILE: ValueError, unless a catalog is given explicitly."""
    pytest.importorskip("stdatamodels.jwst.datamodels")
    with fits.open(scene.target) as hdul:
        arrays = [np.array(hdul[n].data) for n in ("SCI", "DQ", "ERR")]
    target = wfss_target(tmp_path, arrays[0], arrays[1].astype(np.uint32), arrays[2])
    with pytest.raises(ValueError) as info:
        build_wfss_product(target, bkg_ref=scene.reference)
    assert isinstance(info.value, WfssNoCatalogError)
    with pytest.raises(WfssNoWcsError):  # an explicit catalog leads on to the WCS
        build_wfss_product(target, bkg_ref=scene.reference, source_catalog=scene.catalog,
                           wavelengthrange=scene.wavelengthrange)


# ------------------------------------------------------------------------------ outputs
def _hdu_bytes(path, name):
    layout = scan_fits(path)
    hdu = layout.find(name)
    with open(path, "rb") as f:
        f.seek(hdu.header_offset)
        return f.read(hdu.end - hdu.header_offset)


def test_fits_output_round_trip(scene, tmp_path):
    """The FITS product reads back; ASDF and ERR are copied byte for byte."""
    product = build_wfss_product(scene.target, bkg_ref=scene.reference,
                                 source_boxes=scene.boxes, compat=make_compat("jwst-3.0"))
    out_path = tmp_path / "out_bkgsub.fits"
    BackgroundResult(product).to_fits(out_path, scheduler="synchronous")
    expected = computed(product)
    with fits.open(out_path) as hdul:
        assert hdul[0].header["S_BKDSUB"] == "COMPLETE"
        assert hdul[0].header["BKGD_SCL"] == product.info["scale_factor"]
        assert np.array_equal(bits(hdul["SCI"].data), bits(expected.sci))
        assert np.array_equal(np.array(hdul["DQ"].data).astype(np.uint32), expected.dq)
        mask = np.array(hdul["MASK"].data).astype(np.uint32)
        assert int(mask.sum()) == product.info["mask_background_pixels"]
    assert _hdu_bytes(out_path, "ASDF") == _hdu_bytes(scene.target, "ASDF")
    assert _hdu_bytes(out_path, "ERR") == _hdu_bytes(scene.target, "ERR")


def test_save_boxes(scene, tmp_path):
    """Boxes are saved as <root>_wfssboxes.ecsv (none for a user mask)."""
    product = build_wfss_product(scene.target, bkg_ref=scene.reference, source_boxes=scene.boxes)
    path = save_wfss_boxes(product, tmp_path)
    assert path.name == "jw01234001001_02101_00001_nrcalong_wfssboxes.ecsv"
    assert read_box_table(path) == read_box_table(scene.boxes)
    masked = build_wfss_product(scene.target, bkg_ref=scene.reference,
                                source_mask=mask_file(tmp_path, np.ones(scene.shape)))
    assert save_wfss_boxes(masked, tmp_path) is None
