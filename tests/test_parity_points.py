"""Small parity points with the reference, asserted bit for bit.

* Empty background list (jwst 1.13.2): the mean over zero planes is 0/0, the negative
  quiet NaN ``0xFFC00000``; ``T.SCI - NaN`` keeps that NaN for every finite target pixel.
* ``compat="jwst-3.0"`` with an empty list skips before any geometry: a target without
  window keywords (and without INSTRUME) is SKIPPED, not refused.
* Missing ERR/DQ extensions: jwst 1.13's data models fill ERR = 0 and DQ = 0; newer data
  models (jwst 3.0) leave them None and the step fails.
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from helpers import assert_bits_equal

import daskbkg
from daskbkg import errors as E

NEG_QNAN = np.uint32(0xFFC00000)


def _bits(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float32).view(np.uint32)


def test_empty_list_gives_the_negative_quiet_nan(inputs, tmp_path):
    """Every finite target pixel becomes 0xFFC00000, in memory and in the file."""
    sci = np.arange(12, dtype=np.float32).reshape(3, 4) - 5
    sci[0, 0] = -np.inf
    target = inputs(sci)
    result = daskbkg.subtract_background(target, [])
    out = result.compute()
    assert result.status == "COMPLETE"
    expected = np.subtract(sci, np.uint32(0xFFC00000).view(np.float32), dtype=np.float32)
    assert (_bits(expected) == NEG_QNAN).all()  # the oracle: numpy float32 T - (0/0)
    assert_bits_equal(_bits(out.sci), _bits(expected))
    assert_bits_equal(_bits(out.combined["SCI"]), np.full((3, 4), NEG_QNAN))
    path = tmp_path / "empty_bsub.fits"
    result.to_fits(path)
    with fits.open(path) as hdul:
        assert_bits_equal(hdul["SCI"].data.astype(np.float32).view(np.uint32),
                          np.full((3, 4), NEG_QNAN))
        assert hdul[0].header["S_BKDSUB"] == "COMPLETE"


def test_reference_zero_over_zero_is_that_nan():
    """The oracle itself: float32 0/0 on this machine is 0xFFC00000."""
    with np.errstate(invalid="ignore"):
        value = np.float32(0) / np.float32(0)
    assert _bits(value) == NEG_QNAN


def _windowless(inputs):
    return inputs(np.full((3, 4), 7.5, np.float32), name="nowin_rate.fits",
                  window_keywords=False, instrument="NOSUCH",
                  extra_primary={"INSTRUME": None, "SUBARRAY": None, "EXP_TYPE": "MIR_IMAGE"})


def test_jwst30_empty_list_skips_before_geometry(inputs, tmp_path):
    """Under jwst 3.0 an empty list + no window keywords and no INSTRUME -> SKIPPED, unchanged."""
    target = _windowless(inputs)
    result = daskbkg.subtract_background(target, [], compat="jwst-3.0")
    assert result.status == "SKIPPED"
    out = result.compute()
    assert_bits_equal(out.sci, np.full((3, 4), 7.5, np.float32))
    path = tmp_path / "skip_bsub.fits"
    result.to_fits(path)
    with fits.open(path) as hdul:
        assert hdul[0].header["S_BKDSUB"] == "SKIPPED"
        assert "SUBSTRT1" not in hdul[0].header  # no fallback window written


def test_jwst113_empty_list_still_needs_the_window(inputs):
    """Under jwst 1.13.2 the window comes first: the same target raises AttributeError."""
    target = _windowless(inputs)
    with pytest.raises(AttributeError) as info:
        daskbkg.subtract_background(target, [])
    assert isinstance(info.value, E.MissingKeywordError)
    assert "nowin_rate.fits" in str(info.value)


def _without(path, dest, *names):
    with fits.open(path) as hdul:
        fits.HDUList([h.copy() for h in hdul if h.name not in names]).writeto(dest)
    return dest


def test_jwst113_missing_background_err_and_dq_are_zeros(inputs, tmp_path):
    """A background without ERR/DQ gives the bits of one whose ERR and DQ are 0."""
    rng = np.random.default_rng(7)
    target = inputs(rng.normal(50, 3, (4, 5)).astype(np.float32),
                    dq=rng.integers(0, 2**32, (4, 5), dtype=np.uint32))
    values = [rng.normal(5, 1, (4, 5)).astype(np.float32) for _ in range(3)]
    zeros = [inputs(v, err=0.0, dq=0, name=f"z{i}_rate.fits") for i, v in enumerate(values)]
    bare = [_without(inputs(v, err=2.0, dq=9, name=f"f{i}_rate.fits"),
                     tmp_path / f"bare{i}_rate.fits", "ERR", "DQ")
            for i, v in enumerate(values)]
    expected = daskbkg.subtract_background(target, zeros).compute()
    actual = daskbkg.subtract_background(target, bare).compute()
    for key in ("sci", "err", "dq"):
        assert_bits_equal(getattr(actual, key), getattr(expected, key))
    assert_bits_equal(actual.combined["ERR"], expected.combined["ERR"])
    assert (expected.combined["ERR"] == 0).all()


def test_jwst113_target_without_dq_and_err(inputs, tmp_path):
    """Target lacking DQ and ERR: the output gains DQ (= background DQ) after SCI, no ERR."""
    target = _without(inputs(np.full((3, 4), 9.0, np.float32), name="t_rate.fits"),
                      tmp_path / "in" / "bare_rate.fits", "ERR", "DQ")
    bkg = inputs(np.full((3, 4), 2.0, np.float32), dq=np.uint32(2**31 + 5))
    result = daskbkg.subtract_background(target, [bkg])
    path = tmp_path / "bare_bsub.fits"
    result.to_fits(path)
    with fits.open(path) as hdul:
        names = [h.name for h in hdul]
        assert names[:3] == ["PRIMARY", "SCI", "DQ"] and "ERR" not in names
        assert_bits_equal(hdul["DQ"].data, np.full((3, 4), 2**31 + 5, np.uint32))
        assert_bits_equal(hdul["SCI"].data.astype(np.float32), np.full((3, 4), 7.0, np.float32))


def test_jwst30_refuses_a_background_without_err(inputs, tmp_path):
    """Under the jwst 3.0 preset the same background is refused in one line."""
    target = inputs(np.full((3, 4), 9.0, np.float32))
    bare = _without(inputs(np.ones((3, 4), np.float32), name="b_rate.fits"),
                    tmp_path / "in" / "noerr_rate.fits", "ERR")
    with pytest.raises(KeyError) as info:
        daskbkg.subtract_background(target, [bare], compat="jwst-3.0")
    assert isinstance(info.value, E.MissingExtensionError)
    assert "noerr_rate.fits: missing ERR image extension" in str(info.value)
    assert "\n" not in str(info.value)


def _asdf_table(meta: dict):
    """A one-row ``ASDF`` table holding an ASDF file with ``meta``, as JWST files do."""
    import io

    import asdf

    buffer = io.BytesIO()
    asdf.AsdfFile({"meta": meta}).write_to(buffer)
    raw = np.frombuffer(buffer.getvalue(), dtype=np.uint8)
    col = fits.Column(name="ASDF_METADATA", format=f"{raw.size}B", array=raw[np.newaxis, :])
    return fits.BinTableHDU.from_columns([col], name="ASDF")


def _reduced(path, dest, meta):
    """``path`` with the PRIMARY header reduced to DATAMODL and the tree holding ``meta``."""
    with fits.open(path) as hdul:
        primary = fits.PrimaryHDU()
        primary.header["DATAMODL"] = "ImageModel"
        rest = [h.copy() for h in hdul[1:] if h.name != "ASDF"]
        fits.HDUList([primary, *rest, _asdf_table(meta)]).writeto(dest)
    return dest


def test_metadata_from_the_asdf_tree(inputs, tmp_path):
    """Window and instrument held only in the ASDF tree are used, as the data models do."""
    pytest.importorskip("asdf")
    rng = np.random.default_rng(2)
    target = inputs(rng.normal(20, 1, (4, 6)).astype(np.float32), substrt=(3, 2),
                    name="sub_rate.fits")
    bkg = inputs(rng.normal(2, 0.1, (9, 12)).astype(np.float32), name="full_rate.fits")
    meta = {"exposure": {"type": "MIR_IMAGE", "nints": 1},
            "instrument": {"name": "MIRI"},
            "subarray": {"xstart": 3, "ystart": 2, "xsize": 6, "ysize": 4}}
    reduced = _reduced(target, tmp_path / "in" / "reduced_rate.fits", meta)
    exp = daskbkg.read_exposure(reduced)
    assert (exp.meta.substrt1, exp.meta.substrt2, exp.meta.subsize1, exp.meta.subsize2) == \
        (3, 2, 6, 4)
    assert exp.meta.instrument == "MIRI" and exp.meta.exp_type == "MIR_IMAGE"
    expected = daskbkg.subtract_background(target, [bkg]).compute()
    actual = daskbkg.subtract_background(reduced, [bkg]).compute()
    for key in ("sci", "err", "dq"):
        assert_bits_equal(getattr(actual, key), getattr(expected, key))
    bare = _reduced(target, tmp_path / "in" / "bare_rate.fits", {})
    with pytest.raises(AttributeError):  # without the tree: no window, no INSTRUME
        daskbkg.subtract_background(bare, [bkg])


def test_header_keyword_wins_over_the_tree(inputs, tmp_path):
    """A keyword present in the header overrides the tree's stale value."""
    pytest.importorskip("asdf")
    target = inputs(np.ones((4, 6), np.float32), substrt=(3, 2), name="s_rate.fits")
    dest = tmp_path / "in" / "stale_rate.fits"
    with fits.open(target) as hdul:
        hdus = [h.copy() for h in hdul if h.name != "ASDF"]
        hdus[0].header.remove("INSTRUME")
        hdus.append(_asdf_table({"instrument": {"name": "NIRCAM"},
                                 "subarray": {"xstart": 99}}))
        fits.HDUList(hdus).writeto(dest)
    meta = daskbkg.read_exposure(dest).meta
    assert meta.instrument == "NIRCAM" and meta.substrt1 == 3


def test_skipped_product_is_written_in_the_reference_types(inputs, tmp_path):
    """A skipped target stored as float64/uint8 is written as float32/float32/uint32."""
    target = inputs(np.zeros((3, 4), np.float32), name="w_rate.fits")
    wide = tmp_path / "in" / "wide_rate.fits"
    sci = np.linspace(0, 1, 12).reshape(3, 4) + 2.0**-40
    with fits.open(target) as hdul:
        hdus = [h.copy() for h in hdul]
        for h in hdus:
            if h.name == "SCI":
                h.data = sci
            elif h.name == "ERR":
                h.data = np.full((3, 4), 0.5)
            elif h.name == "DQ":
                for key in ("BZERO", "BSCALE"):
                    h.header.remove(key, ignore_missing=True)
                h.data = np.arange(12, dtype=np.uint8).reshape(3, 4)
        fits.HDUList(hdus).writeto(wide)
    out = tmp_path / "wide_bsub.fits"
    with pytest.warns(RuntimeWarning, match="wide_rate.fits: SCI extension"):
        daskbkg.subtract_background(wide, [], compat="jwst-3.0").to_fits(out)
    with fits.open(out) as hdul:
        assert hdul[0].header["S_BKDSUB"] == "SKIPPED"
        assert_bits_equal(hdul["SCI"].data.astype(np.float32), sci.astype(np.float32))
        assert hdul["SCI"].header["BITPIX"] == -32 and hdul["ERR"].header["BITPIX"] == -32
        assert_bits_equal(hdul["DQ"].data, np.arange(12, dtype=np.uint32).reshape(3, 4))
        assert hdul["DQ"].header["BZERO"] == 2**31
