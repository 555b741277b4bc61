"""Tests of the synthetic-data generator :mod:`daskbkg.datasets` (files read back with astropy)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from daskbkg import datasets
from daskbkg.datasets import (
    DETECTORS,
    DQ_DO_NOT_USE,
    Dataset,
    full_frame,
    make_dataset,
    make_exposure_arrays,
    subarray_window,
    write_exposure,
)

BIT31 = np.uint32(1 << 31)
NAME_RE = re.compile(r"^jw01234(001|002)001_02101_\d{5}_(nrca1|mirimage)_(rate|rateints)\.fits$")


def _arrays(shape=(6, 8), seed=1):
    """Small SCI/ERR/DQ arrays with DQ values on both sides of 2**31."""
    rng = np.random.default_rng(seed)
    sci = rng.normal(1.0, 0.1, shape).astype(np.float32)
    err = np.full(shape, 0.1, dtype=np.float32)
    dq = np.zeros(shape, dtype=np.uint32)
    dq.flat[:5] = [1, 4, 1 << 31, (1 << 31) | 1, 0xFFFFFFFF]
    return sci, err, dq


def _names(path):
    """EXTNAMEs of a file in order."""
    with fits.open(path) as hdul:
        return [hdu.name for hdu in hdul]


def _read(path, ext):
    """Return a copy of the data and header of one extension."""
    with fits.open(path) as hdul:
        return np.array(hdul[ext].data), hdul[ext].header.copy()


def _headers(path):
    """Return copies of every header of a file."""
    with fits.open(path) as hdul:
        return [hdu.header.copy() for hdu in hdul]


# --------------------------------------------------------------------------- write_exposure


def test_extension_order_2d(tmp_path):
    """A 2-D file has the stdatamodels extension order."""
    path = write_exposure(tmp_path / "x_rate.fits", *_arrays())
    assert path == tmp_path / "x_rate.fits"
    assert _names(path) == ["PRIMARY", "SCI", "DQ", "ERR", "VAR_POISSON", "VAR_RNOISE",
                            "VAR_FLAT", "ASDF"]


def test_extension_order_options(tmp_path):
    """Optional extensions can be left out and ERR may precede DQ."""
    path = write_exposure(tmp_path / "x.fits", *_arrays(), var_arrays=False,
                          asdf_extension=False, err_before_dq=True)
    assert _names(path) == ["PRIMARY", "SCI", "ERR", "DQ"]


def test_dtypes_and_dq_round_trip(tmp_path):
    """SCI/ERR read back as float32 and DQ as uint32, values >= 2**31 included."""
    sci, err, dq = _arrays()
    path = write_exposure(tmp_path / "x.fits", sci, err, dq)
    sci_r, _ = _read(path, "SCI")
    err_r, _ = _read(path, "ERR")
    dq_r, _ = _read(path, "DQ")
    assert sci_r.dtype.type is np.float32 and err_r.dtype.type is np.float32  # big-endian f4
    assert dq_r.dtype == np.uint32
    np.testing.assert_array_equal(sci_r, sci)
    np.testing.assert_array_equal(err_r, err)
    np.testing.assert_array_equal(dq_r, dq)
    assert (dq_r >= BIT31).sum() == 3 and dq_r.max() == 0xFFFFFFFF


def test_dq_on_disk_encoding(tmp_path):
    """DQ is stored as BITPIX 32 with BSCALE 1 and BZERO 2**31."""
    sci, err, dq = _arrays()
    path = write_exposure(tmp_path / "x.fits", sci, err, dq)
    with fits.open(path, do_not_scale_image_data=True) as hdul:
        hdr = hdul["DQ"].header
        raw = np.array(hdul["DQ"].data)
        assert hdul["SCI"].header["BITPIX"] == -32 and hdul["ERR"].header["BITPIX"] == -32
    assert hdr["BITPIX"] == 32 and hdr["BSCALE"] == 1 and hdr["BZERO"] == 2147483648
    assert raw.dtype.kind == "i" and raw.dtype.itemsize == 4
    np.testing.assert_array_equal(raw, (dq ^ np.uint32(0x80000000)).view(np.int32))
    # the same cards are in the raw bytes of the file
    blob = path.read_bytes()
    assert b"BZERO   =           2147483648" in blob
    assert b"BSCALE  =                    1" in blob


def test_dq_from_other_integer_types(tmp_path):
    """Integer DQ of other dtypes is accepted; negative or float DQ is refused."""
    sci, err, dq = _arrays()
    path = write_exposure(tmp_path / "x.fits", sci, err, dq.astype(np.int64))
    np.testing.assert_array_equal(_read(path, "DQ")[0], dq)
    with pytest.raises(ValueError):
        write_exposure(tmp_path / "y.fits", sci, err, -np.ones(sci.shape, dtype=np.int64))
    with pytest.raises(TypeError):
        write_exposure(tmp_path / "z.fits", sci, err, np.zeros(sci.shape, dtype=np.float32))


def test_default_err_and_dq(tmp_path):
    """ERR defaults to ones and DQ to zeros; SCI is cast to float32."""
    sci = np.zeros((4, 5), dtype=np.float64)
    path = write_exposure(tmp_path / "x.fits", sci)
    err, _ = _read(path, "ERR")
    dq, _ = _read(path, "DQ")
    sci_r, _ = _read(path, "SCI")
    assert sci_r.dtype.type is np.float32
    np.testing.assert_array_equal(err, np.ones((4, 5), dtype=np.float32))
    np.testing.assert_array_equal(dq, np.zeros((4, 5), dtype=np.uint32))


def test_primary_keywords_nircam(tmp_path):
    """PRIMARY carries the JWST keywords; SUBSIZE comes from the array shape."""
    path = write_exposure(tmp_path / "jw01234001001_02101_00001_nrca1_rate.fits",
                          *_arrays((30, 40)), substrt=(5, 7))
    hdr = _headers(path)[0]
    assert hdr["NAXIS"] == 0
    assert hdr["TELESCOP"] == "JWST" and hdr["INSTRUME"] == "NIRCAM"
    assert hdr["EXP_TYPE"] == "NRC_IMAGE" and hdr["DETECTOR"] == "NRCA1"
    assert hdr["FILTER"] == "F200W" and hdr["SUBARRAY"] == "SUB40X30"
    assert (hdr["SUBSTRT1"], hdr["SUBSTRT2"]) == (5, 7)
    assert (hdr["SUBSIZE1"], hdr["SUBSIZE2"]) == (40, 30)  # x = axis 1 = last array axis
    assert hdr["NINTS"] == 1 and hdr["DATE-OBS"] == "2024-01-01"
    assert hdr["FILENAME"] == path.name
    assert hdr["PROGRAM"] == "01234" and hdr["OBSERVTN"] == "001" and hdr["EXPOSURE"] == "00001"


def test_primary_keywords_miri_full_frame(tmp_path):
    """MIRI presets fill DETECTOR, FILTER and EXP_TYPE; full frame is FULL."""
    sci = np.zeros(DETECTORS["MIRI"]["full"], dtype=np.float32)
    path = write_exposure(tmp_path / "m.fits", sci, instrument="miri", var_arrays=False)
    hdr = _headers(path)[0]
    assert hdr["INSTRUME"] == "MIRI" and hdr["EXP_TYPE"] == "MIR_IMAGE"
    assert hdr["DETECTOR"] == "MIRIMAGE" and hdr["FILTER"] == "F770W"
    assert hdr["SUBARRAY"] == "FULL"
    assert (hdr["SUBSIZE1"], hdr["SUBSIZE2"]) == (1032, 1024)


def test_extension_headers(tmp_path):
    """Extension headers carry EXTNAME, BUNIT and extra SCI keywords."""
    path = write_exposure(tmp_path / "x.fits", *_arrays(), extra_sci={"DISPAXIS": 2})
    headers = dict(zip(_names(path), _headers(path)))
    for name in ("SCI", "ERR"):
        assert headers[name]["BUNIT"] == "DN/s"
    for name in ("SCI", "DQ", "ERR", "VAR_POISSON", "ASDF"):
        assert headers[name]["EXTNAME"] == name
    assert headers["SCI"]["DISPAXIS"] == 2


def test_overrides_and_deletions(tmp_path):
    """extra_primary overrides or deletes keywords; window and NINTS overrides stick."""
    path = write_exposure(
        tmp_path / "x.fits", *_arrays((6, 8)), substrt=(3, 4), subsize=(100, 200), nints=7,
        exp_type="NRC_WFSS",
        extra_primary={"GWA_XTIL": 0.25, "SCATFILE": ("cat.ecsv", "catalog"), "FILTER": "F356W",
                       "DETECTOR": None, "SUBSIZE2": None})
    hdr = _headers(path)[0]
    assert hdr["GWA_XTIL"] == 0.25 and hdr["SCATFILE"] == "cat.ecsv"
    assert hdr.comments["SCATFILE"] == "catalog"
    assert hdr["FILTER"] == "F356W" and hdr["EXP_TYPE"] == "NRC_WFSS"
    assert "DETECTOR" not in hdr and "SUBSIZE2" not in hdr
    assert hdr["SUBSIZE1"] == 100 and hdr["SUBSTRT2"] == 4
    assert hdr["NINTS"] == 7  # metadata may disagree with the array on purpose


@pytest.mark.parametrize("kwargs", [{"window_keywords": False}, {"substrt": None}])
def test_window_keywords_omitted(tmp_path, kwargs):
    """All four window keywords can be omitted."""
    path = write_exposure(tmp_path / "x.fits", *_arrays(), **kwargs)
    hdr = _headers(path)[0]
    for key in ("SUBSTRT1", "SUBSTRT2", "SUBSIZE1", "SUBSIZE2"):
        assert key not in hdr
    assert hdr["INSTRUME"] == "NIRCAM"


def test_3d_with_int_times(tmp_path):
    """3-D data get NINTS from the first axis and an INT_TIMES table."""
    sci, err, dq = make_exposure_arrays((4, 10, 12), seed=3, dq_fraction=0.1)
    path = write_exposure(tmp_path / "x_rateints.fits", sci, err, dq)
    assert _names(path) == ["PRIMARY", "SCI", "DQ", "ERR", "VAR_POISSON", "VAR_RNOISE",
                            "VAR_FLAT", "INT_TIMES", "ASDF"]
    hdr = _headers(path)[0]
    assert hdr["NINTS"] == 4 and hdr["DATAMODL"] == "CubeModel"
    assert (hdr["SUBSIZE1"], hdr["SUBSIZE2"]) == (12, 10)
    sci_r, _ = _read(path, "SCI")
    dq_r, _ = _read(path, "DQ")
    assert sci_r.shape == (4, 10, 12)
    np.testing.assert_array_equal(dq_r, dq)
    table, thdr = _read(path, "INT_TIMES")
    assert thdr["XTENSION"] == "BINTABLE" and len(table) == 4
    np.testing.assert_array_equal(table["integration_number"], [1, 2, 3, 4])
    assert table["integration_number"].dtype.kind == "i"
    assert table["int_start_MJD_UTC"].dtype == np.dtype(">f8")
    assert np.all(table["int_end_MJD_UTC"] > table["int_start_MJD_UTC"])
    assert table["int_start_MJD_UTC"][0] == hdr["EXPSTART"]


def test_int_times_options(tmp_path):
    """INT_TIMES can be suppressed, or forced for 2-D data."""
    sci3 = np.zeros((2, 3, 3), dtype=np.float32)
    path = write_exposure(tmp_path / "a.fits", sci3, int_times=False)
    assert "INT_TIMES" not in _names(path)
    path = write_exposure(tmp_path / "b.fits", sci3[0], int_times=[[60000.0, 60000.1]])
    table, _ = _read(path, "INT_TIMES")
    assert len(table) == 1 and table["int_end_MJD_UTC"][0] == 60000.1
    assert "INT_TIMES" not in _names(write_exposure(tmp_path / "c.fits", sci3[0]))


def test_asdf_extension(tmp_path):
    """The ASDF extension is a one-row uint8 table holding fake ASDF text."""
    path = write_exposure(tmp_path / "x.fits", *_arrays())
    with fits.open(path) as hdul:
        hdu = hdul["ASDF"]
        assert isinstance(hdu, fits.BinTableHDU)
        assert hdu.columns.names == ["ASDF_METADATA"] and len(hdu.data) == 1
        blob = np.array(hdu.data["ASDF_METADATA"][0])
    assert blob.dtype == np.uint8
    assert blob.tobytes().startswith(b"#ASDF 1.0.0\n")
    assert b"filename: x.fits" in blob.tobytes()
    assert "ASDF" not in _names(write_exposure(tmp_path / "y.fits", *_arrays(),
                                               asdf_extension=False))


def test_var_arrays(tmp_path):
    """Derived variances sum to ERR**2; explicit variance arrays are written as given."""
    sci, err, dq = _arrays()
    path = write_exposure(tmp_path / "x.fits", sci, err, dq)
    total = sum(_read(path, n)[0].astype(np.float64) for n in
                ("VAR_POISSON", "VAR_RNOISE", "VAR_FLAT"))
    np.testing.assert_allclose(total, err.astype(np.float64) ** 2, rtol=1e-6)
    custom = {"VAR_POISSON": np.full(sci.shape, 2.0)}
    path = write_exposure(tmp_path / "y.fits", sci, err, dq, var_arrays=custom)
    assert "VAR_RNOISE" not in _names(path)
    var, _ = _read(path, "VAR_POISSON")
    assert var.dtype.type is np.float32 and np.all(var == 2.0)


def test_bad_shapes(tmp_path):
    """Bad dimensionality or mismatched shapes raise before any file is made."""
    with pytest.raises(ValueError):
        write_exposure(tmp_path / "a.fits", np.zeros(5, dtype=np.float32))
    with pytest.raises(ValueError):
        write_exposure(tmp_path / "b.fits", np.zeros((3, 3)), np.zeros((3, 4)))
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_leaves_no_temp_files(tmp_path):
    """Successful writes leave only the final file."""
    write_exposure(tmp_path / "x.fits", *_arrays())
    write_exposure(tmp_path / "x.fits", *_arrays(seed=2), overwrite=True)
    assert [p.name for p in tmp_path.iterdir()] == ["x.fits"]


def test_failed_write_cleans_up(tmp_path, monkeypatch):
    """A failing write removes its temporary file and keeps the old file intact."""
    write_exposure(tmp_path / "x.fits", *_arrays())
    before = (tmp_path / "x.fits").read_bytes()

    def boom(self, fileobj, *args, **kwargs):
        fileobj.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(fits.HDUList, "writeto", boom)
    with pytest.raises(OSError, match="disk full"):
        write_exposure(tmp_path / "x.fits", *_arrays(seed=5), overwrite=True)
    with pytest.raises(OSError, match="disk full"):
        write_exposure(tmp_path / "new.fits", *_arrays(seed=5))
    assert [p.name for p in tmp_path.iterdir()] == ["x.fits"]
    assert (tmp_path / "x.fits").read_bytes() == before


def test_refuses_to_overwrite(tmp_path):
    """An existing file is kept unless overwrite=True."""
    path = write_exposure(tmp_path / "x.fits", *_arrays())
    before = path.read_bytes()
    with pytest.raises(FileExistsError):
        write_exposure(path, *_arrays(seed=9))
    assert path.read_bytes() == before
    write_exposure(path, *_arrays(seed=9), overwrite=True)
    assert path.read_bytes() != before


# ---------------------------------------------------------------------- make_exposure_arrays


def test_arrays_types_and_flags():
    """Dtypes, NaN/DO_NOT_USE agreement, bit 31, hot pixels, level and sources."""
    sci, err, dq = make_exposure_arrays((64, 48), level=2.0, noise=0.05, seed=4,
                                        nan_fraction=0.01, n_sources=5, dq_fraction=0.02,
                                        hot_value=1000.0)
    assert (sci.dtype, err.dtype, dq.dtype) == (np.float32, np.float32, np.uint32)
    assert sci.shape == err.shape == dq.shape == (64, 48)
    nan = np.isnan(sci)
    assert nan.sum() >= round(0.01 * 64 * 48)
    np.testing.assert_array_equal(nan, (dq & DQ_DO_NOT_USE) != 0)
    np.testing.assert_array_equal(np.isnan(err), nan)
    assert np.any(dq >= BIT31)
    hot = (dq & (1 << 11)) != 0
    assert hot.any() and np.all(sci[hot & ~nan] > 900)
    assert abs(np.median(sci[~nan]) - 2.0) < 0.2
    assert np.nanmax(sci[~hot]) > 2.5  # sources stand out


def test_arrays_clean_defaults():
    """Without noise, gradient or defects the image is flat and DQ is clean."""
    sci, err, dq = make_exposure_arrays((32, 32), level=5.0, noise=0.0, gradient=0.0)
    np.testing.assert_array_equal(sci, np.full((32, 32), 5.0, dtype=np.float32))
    assert not dq.any() and not np.isnan(err).any()


def test_arrays_3d_independent_noise():
    """Integrations have independent noise but the same bad pixels."""
    sci, err, dq = make_exposure_arrays((3, 20, 24), seed=7, nan_fraction=0.02,
                                        dq_fraction=0.05)
    assert sci.shape == err.shape == dq.shape == (3, 20, 24)
    assert not np.array_equal(sci[0], sci[1], equal_nan=True)
    assert not np.array_equal(sci[1], sci[2], equal_nan=True)
    for k in (1, 2):  # bad pixels are static
        np.testing.assert_array_equal(dq[k], dq[0])
        np.testing.assert_array_equal(np.isnan(sci[k]), np.isnan(sci[0]))


def test_arrays_subarray_matches_full_frame_gradient():
    """A subarray's gradient matches the full frame."""
    kwargs = {"level": 3.0, "noise": 0.0, "gradient": 0.2, "detector_shape": (40, 50)}
    full, _, _ = make_exposure_arrays((40, 50), **kwargs)
    sub, _, _ = make_exposure_arrays((10, 12), origin=(21, 6), **kwargs)
    np.testing.assert_allclose(sub, full[5:15, 20:32], rtol=1e-6)
    assert full.max() > full.min()


def test_arrays_deterministic():
    """Equal seeds give identical bytes; a different seed differs."""
    kwargs = {"seed": 11, "nan_fraction": 0.01, "n_sources": 4, "dq_fraction": 0.01}
    first = make_exposure_arrays((2, 16, 16), **kwargs)
    second = make_exposure_arrays((2, 16, 16), **kwargs)
    other = make_exposure_arrays((2, 16, 16), **{**kwargs, "seed": 12})
    for a, b in zip(first, second):
        assert a.tobytes() == b.tobytes()
    assert first[0].tobytes() != other[0].tobytes()


def test_arrays_bad_shape():
    """Shapes other than 2-D or 3-D are refused."""
    with pytest.raises(ValueError):
        make_exposure_arrays((4,))


# ------------------------------------------------------------------------- presets


def test_presets_scale():
    """Presets scale down and windows stay inside the scaled frame."""
    assert full_frame("NIRCAM") == (2048, 2048)
    assert full_frame("NIRCAM", 1 / 32) == (64, 64)
    assert full_frame("MIRI", 1 / 8) == (128, 129)
    assert subarray_window("NIRCAM", "SUB640") == (1, 1, 640, 640)
    assert subarray_window("NIRCAM", "SUB640", 1 / 32) == (1, 1, 20, 20)
    for name in datasets.SUBARRAYS["MIRI"]:
        xs, ys, xn, yn = subarray_window("MIRI", name, 1 / 16)
        ny, nx = full_frame("MIRI", 1 / 16)
        assert xs >= 1 and ys >= 1 and xs - 1 + xn <= nx and ys - 1 + yn <= ny
    with pytest.raises(ValueError):
        full_frame("HST")


# ---------------------------------------------------------------------------- make_dataset


def _check_asn(ds: Dataset):
    """Check the association of ``ds`` and return it parsed."""
    text = ds.asn.read_text()
    asn = json.loads(text)
    for key in ("asn_type", "asn_id", "asn_pool", "program", "asn_rule", "version_id",
                "code_version", "target", "products"):
        assert key in asn
    assert asn["asn_type"] == "image2" and asn["program"] == "01234"
    assert len(asn["products"]) == len(ds.targets)
    for product, target in zip(asn["products"], ds.targets):
        members = product["members"]
        assert product["name"] == re.sub(r"_rate(ints)?\.fits$", "", target.name)
        assert [m["exptype"] for m in members] == ["science"] + ["background"] * len(
            ds.backgrounds)
        assert members[0]["expname"] == target.name
        assert [m["expname"] for m in members[1:]] == [b.name for b in ds.backgrounds]
        for m in members:
            assert not Path(m["expname"]).is_absolute()
            assert (ds.asn.parent / m["expname"]).is_file()
    return asn


def test_make_dataset_default(tmp_path):
    """Default dataset: names, keywords, NaNs, DQ bits, ASN, overwrite refusal."""
    ds = make_dataset(tmp_path / "demo")
    assert ds.asn == tmp_path / "demo" / "jw01234_image2_asn.json"
    assert len(ds.targets) == 1 and len(ds.backgrounds) == 3
    assert ds.targets[0].name == "jw01234001001_02101_00001_nrca1_rate.fits"
    assert [b.name for b in ds.backgrounds] == [
        f"jw01234002001_02101_0000{i}_nrca1_rate.fits" for i in (1, 2, 3)]
    _check_asn(ds)
    levels = []
    for path in ds.targets + ds.backgrounds:
        assert NAME_RE.match(path.name)
        hdr = _headers(path)[0]
        assert hdr["SUBARRAY"] == "FULL" and hdr["SUBSIZE1"] == 256
        sci, _ = _read(path, "SCI")
        dq, _ = _read(path, "DQ")
        assert sci.shape == (256, 256) and np.isnan(sci).any() and np.any(dq >= BIT31)
        levels.append(np.nanmedian(sci))
    assert len(set(np.round(levels[1:], 4))) == 3  # background levels differ
    with pytest.raises(FileExistsError):
        make_dataset(tmp_path / "demo")
    make_dataset(tmp_path / "demo", overwrite=True)
    assert len(list((tmp_path / "demo").iterdir())) == 5  # no temp files left


def test_make_dataset_rateints_subarray_miri(tmp_path):
    """MIRI rateints dataset with a target subarray window."""
    ds = make_dataset(tmp_path, instrument="MIRI", rateints=True, nints=2, n_targets=2,
                      n_backgrounds=2, frame_shape=(64, 72), target_subarray=(9, 17, 24, 16))
    _check_asn(ds)
    assert all(p.name.endswith("_mirimage_rateints.fits") for p in ds.targets + ds.backgrounds)
    hdr = _headers(ds.targets[1])[0]
    assert (hdr["SUBSTRT1"], hdr["SUBSTRT2"], hdr["SUBSIZE1"], hdr["SUBSIZE2"]) == (9, 17, 24, 16)
    assert hdr["NINTS"] == 2 and hdr["INSTRUME"] == "MIRI"
    sci, _ = _read(ds.targets[1], "SCI")
    assert sci.shape == (2, 16, 24)
    assert "INT_TIMES" in _names(ds.backgrounds[0])
    bkg_hdr = _headers(ds.backgrounds[0])[0]
    assert bkg_hdr["SUBARRAY"] == "FULL" and bkg_hdr["SUBSIZE1"] == 72
    with pytest.raises(ValueError):
        make_dataset(tmp_path / "bad", frame_shape=(32, 32), target_subarray=(20, 1, 16, 16))


def test_make_dataset_named_subarray_no_asn(tmp_path):
    """A named subarray preset is scaled; no ASN when not asked."""
    ds = make_dataset(tmp_path, frame_shape=(64, 64), target_subarray="SUB640",
                      n_backgrounds=1, write_asn=False)
    assert ds.asn is None and not list(tmp_path.glob("*.json"))
    hdr = _headers(ds.targets[0])[0]
    assert hdr["SUBARRAY"] == "SUB640" and (hdr["SUBSIZE1"], hdr["SUBSIZE2"]) == (20, 20)


def test_make_dataset_deterministic(tmp_path):
    """Same seed gives byte-identical files; another seed differs."""
    a = make_dataset(tmp_path / "a", rateints=True, frame_shape=(32, 40), seed=5)
    b = make_dataset(tmp_path / "b", rateints=True, frame_shape=(32, 40), seed=5)
    c = make_dataset(tmp_path / "c", rateints=True, frame_shape=(32, 40), seed=6)
    for pa, pb, pc in zip(a.targets + a.backgrounds, b.targets + b.backgrounds,
                          c.targets + c.backgrounds):
        for ext in ("SCI", "ERR", "DQ"):
            assert _read(pa, ext)[0].tobytes() == _read(pb, ext)[0].tobytes()
        assert _read(pa, "SCI")[0].tobytes() != _read(pc, "SCI")[0].tobytes()
        assert pa.read_bytes() == pb.read_bytes()  # headers are deterministic too
    assert a.asn.read_bytes() == b.asn.read_bytes()
