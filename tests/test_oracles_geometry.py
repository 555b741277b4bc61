"""Geometry oracles G1-G9 (imaging algorithm page A.3) and the exception types of A.16."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from helpers import Maker, hashes

import daskbkg
from daskbkg.errors import DaskbkgError


@pytest.fixture
def mk(tmp_path):
    """Exposure maker writing into ``tmp_path``."""
    return Maker(tmp_path)


def ramp(shape, offset=0.0):
    """``100*y + x + offset`` over ``shape``."""
    y, x = np.indices(shape)
    return (100.0 * y + x + offset).astype(np.float32)


def combined(target, backgrounds, **kwargs):
    """Compute a product; return it and its combined background."""
    out = daskbkg.subtract_background(target, backgrounds, **kwargs).compute()
    return out, out.combined


# ------------------------------------------------------------------------------------ G1


def test_g1_subarray_target_in_full_frame_backgrounds(mk):
    """G1: a subarray target inside full frames is placed correctly."""
    bkgs = [mk(ramp((6, 8))), mk(ramp((6, 8), 1.0))]
    target = mk.const((3, 4), 1000.0, substrt=(3, 2))
    out, bk = combined(target, bkgs)
    expected = np.array([[102.5, 103.5, 104.5, 105.5],
                         [202.5, 203.5, 204.5, 205.5],
                         [302.5, 303.5, 304.5, 305.5]], dtype=np.float32)
    np.testing.assert_array_equal(bk["SCI"], expected)
    np.testing.assert_array_equal(bk["NBKG"], np.full((3, 4), 2, np.int32))
    np.testing.assert_array_equal(out.sci, np.float32(1000.0) - expected)


@pytest.mark.parametrize("placement", ["reference", "aligned"])
def test_g1_correct_with_either_placement(mk, placement):
    """A target inside a full-frame background is placed correctly by both rules."""
    bkgs = [mk(ramp((6, 8))), mk(ramp((6, 8), 1.0))]
    target = mk.const((3, 4), 0.0, substrt=(3, 2))
    _, bk = combined(target, bkgs, subarray_placement=placement)
    np.testing.assert_array_equal(bk["SCI"], ramp((6, 8), 0.5)[1:4, 2:6])


# ------------------------------------------------------------------------------------ G2


@pytest.fixture
def g2(mk):
    """G2 inputs: full-frame target, 3x4 background at SUBSTRT (3, 2)."""
    values = ramp((6, 8))[1:4, 2:6]
    bkg = mk(values, err=2.0, dq=8, substrt=(3, 2))
    target = mk.const((6, 8), 1000.0)
    return target, bkg, values


def test_g2_reference_misplaces_at_origin(g2):
    """G2: the reference copies the cutout to the origin."""
    target, bkg, values = g2
    out, bk = combined(target, [bkg])
    expected = np.zeros((6, 8), np.float32)
    expected[0:3, 0:4] = values
    np.testing.assert_array_equal(bk["SCI"], expected)
    np.testing.assert_array_equal(bk["SCI"][0], [102, 103, 104, 105, 0, 0, 0, 0])
    expected_err = np.zeros((6, 8), np.float32)
    expected_err[0:3, 0:4] = 2.0
    np.testing.assert_array_equal(bk["ERR"], expected_err)
    expected_dq = np.zeros((6, 8), np.uint32)
    expected_dq[0:3, 0:4] = 8
    np.testing.assert_array_equal(bk["DQ"], expected_dq)
    np.testing.assert_array_equal(out.dq, expected_dq)
    np.testing.assert_array_equal(out.sci, np.float32(1000.0) - expected)


def test_g2_aligned_placement(g2):
    """G2: ``aligned`` puts the cutout at its true offset."""
    target, bkg, values = g2
    out, bk = combined(target, [bkg], subarray_placement="aligned")
    expected = np.zeros((6, 8), np.float32)
    expected[1:4, 2:6] = values
    np.testing.assert_array_equal(bk["SCI"], expected)
    np.testing.assert_array_equal(bk["SCI"], np.where(expected > 0, ramp((6, 8)), 0))
    expected_dq = np.zeros((6, 8), np.uint32)
    expected_dq[1:4, 2:6] = 8
    np.testing.assert_array_equal(bk["DQ"], expected_dq)
    np.testing.assert_array_equal(out.sci, np.float32(1000.0) - expected)


# ------------------------------------------------------------------------------------ G3-G4


def test_g3_touching_edge_does_not_overlap(mk):
    """G3: windows touching at a column edge do not overlap."""
    target = mk.const((4, 4), 100.0)
    bkg = mk.const((4, 4), 7.0, dq=4, substrt=(5, 1))
    out, bk = combined(target, [bkg])
    np.testing.assert_array_equal(bk["SCI"], np.zeros((4, 4), np.float32))
    np.testing.assert_array_equal(bk["ERR"], np.zeros((4, 4), np.float32))
    np.testing.assert_array_equal(bk["DQ"], np.zeros((4, 4), np.uint32))
    np.testing.assert_array_equal(bk["NBKG"], np.zeros((4, 4), np.int32))
    np.testing.assert_array_equal(out.sci, np.full((4, 4), 100.0, np.float32))
    np.testing.assert_array_equal(out.dq, np.zeros((4, 4), np.uint32))


def test_g3_touching_edge_rows(mk):
    """G3 on the row axis."""
    target = mk.const((4, 4), 100.0)
    bkg = mk.const((4, 4), 7.0, dq=4, substrt=(1, 5))
    _, bk = combined(target, [bkg])
    np.testing.assert_array_equal(bk["DQ"], np.zeros((4, 4), np.uint32))
    np.testing.assert_array_equal(bk["SCI"], np.zeros((4, 4), np.float32))


@pytest.mark.parametrize("placement, column", [("reference", 0), ("aligned", 3)])
def test_g4_one_column_overlap(mk, placement, column):
    """G4: a one-column overlap lands at column 0 (reference) or 3 (aligned)."""
    target = mk.const((4, 4), 100.0)
    bkg = mk.const((4, 4), 7.0, dq=4, substrt=(4, 1))
    out, bk = combined(target, [bkg], subarray_placement=placement)
    expected = np.zeros((4, 4), np.float32)
    expected[:, column] = 7.0
    expected_dq = np.zeros((4, 4), np.uint32)
    expected_dq[:, column] = 4
    np.testing.assert_array_equal(bk["SCI"], expected)
    np.testing.assert_array_equal(bk["DQ"], expected_dq)
    np.testing.assert_array_equal(out.sci, np.float32(100.0) - expected)
    np.testing.assert_array_equal(out.dq, expected_dq)


# ------------------------------------------------------------------------------------ G5


@pytest.mark.parametrize("instrument, shape", [("MIRI", (1024, 1032)), ("NIRCAM", (2048, 2048))])
def test_g5_full_frame_fallback(mk, tmp_path, instrument, shape):
    """G5: full frames without window keywords work and gain them in the output."""
    small = {"var_arrays": False, "asdf_extension": False}
    target = mk.const(shape, 100.0, instrument=instrument, window_keywords=False, **small)
    bkg = mk.const(shape, 10.0, instrument=instrument, window_keywords=False, **small)
    before = hashes([target, bkg])
    result = daskbkg.subtract_background(target, [bkg], chunks=(512, -1))
    out = tmp_path / "out" / "g5_bkgsub.fits"
    out.parent.mkdir()
    result.to_fits(out)
    with fits.open(out) as hdul:
        header = hdul[0].header
        assert (header["SUBSTRT1"], header["SUBSTRT2"]) == (1, 1)
        assert (header["SUBSIZE1"], header["SUBSIZE2"]) == (shape[1], shape[0])
        assert header["S_BKDSUB"] == "COMPLETE"
        sci = hdul["SCI"].section[0:2, 0:3]
        assert (sci == 90.0).all()
        assert hdul["SCI"].section[shape[0] - 1, shape[1] - 1] == 90.0
    with fits.open(bkg) as hdul:
        assert "SUBSTRT1" not in hdul[0].header
    assert hashes([target, bkg]) == before


def test_g5_fallback_only_on_background_leaves_header(mk, tmp_path):
    """A background fallback does not touch the output header."""
    shape = (1024, 1032)
    small = {"var_arrays": False, "asdf_extension": False}
    target = mk.const((4, 5), 100.0, substrt=(10, 20), **small)
    bkg = mk.const(shape, 10.0, window_keywords=False, **small)
    out = tmp_path / "g5b.fits"
    daskbkg.subtract_background(target, [bkg]).to_fits(out)
    with fits.open(out) as hdul:
        header = hdul[0].header
        assert (header["SUBSTRT1"], header["SUBSTRT2"]) == (10, 20)
        assert (header["SUBSIZE1"], header["SUBSIZE2"]) == (5, 4)
        assert (hdul["SCI"].data == 90.0).all()


def test_g5_keywords_present_not_added(mk, tmp_path):
    """Existing window keywords are kept as they are."""
    target = mk.const((4, 5), 100.0)
    out = tmp_path / "g5c.fits"
    daskbkg.subtract_background(target, [mk.const((4, 5), 1.0)]).to_fits(out)
    with fits.open(target) as a, fits.open(out) as b:
        for key in ("SUBSTRT1", "SUBSTRT2", "SUBSIZE1", "SUBSIZE2"):
            assert b[0].header[key] == a[0].header[key]


# ------------------------------------------------------------------------------------ G6


def _big_without_window(mk, instrument, shape):
    return mk.const(shape, 1.0, instrument=instrument, window_keywords=False,
                    var_arrays=False, asdf_extension=False)


@pytest.mark.parametrize("instrument, shape", [("MIRI", (2048, 2048)), ("NIRCAM", (10, 10)),
                                               ("NIRCAM", (1024, 1032)), ("MIRI", (10, 10))])
@pytest.mark.parametrize("role", ["target", "background"])
def test_g6_missing_window_not_full_frame(mk, instrument, shape, role):
    """G6: missing keywords on a non-full-frame array raise ValueError."""
    odd = _big_without_window(mk, instrument, shape)
    other = mk.const((4, 5), 1.0, instrument=instrument)
    target, bkg = (odd, other) if role == "target" else (other, odd)
    with pytest.raises(ValueError) as info:
        daskbkg.subtract_background(target, [bkg])
    assert isinstance(info.value, DaskbkgError)


@pytest.mark.parametrize("missing", ["SUBSIZE1", "SUBSIZE2", "SUBSTRT1", "SUBSTRT2"])
def test_g6_one_keyword_missing(mk, missing):
    """G6: one missing keyword on a small array raises ValueError."""
    target = mk.const((4, 5), 100.0, extra_primary={missing: None})
    with fits.open(target) as hdul:
        assert missing not in hdul[0].header
    with pytest.raises(ValueError):
        daskbkg.subtract_background(target, [mk.const((4, 5), 1.0)])
    with pytest.raises(ValueError):
        daskbkg.subtract_background(mk.const((4, 5), 100.0), [target])


def test_g6_only_subsize1_missing_on_full_frame_uses_fallback(mk, tmp_path):
    """One missing keyword on a full frame uses the fallback."""
    shape = (1024, 1032)
    target = mk.const(shape, 100.0, extra_primary={"SUBSIZE1": None}, var_arrays=False,
                      asdf_extension=False)
    result = daskbkg.subtract_background(target, [mk.const((4, 5), 1.0)])
    assert result.product.primary_updates["SUBSIZE1"] == 1032


def test_g6_instrument_missing_attribute_error(mk):
    """Missing keywords and INSTRUME raise AttributeError."""
    target = mk.const((4, 5), 100.0, window_keywords=False, extra_primary={"INSTRUME": None})
    with pytest.raises(AttributeError):
        daskbkg.subtract_background(target, [mk.const((4, 5), 1.0)])


# ------------------------------------------------------------------------------------ G7-G8


def test_g7_subsize_smaller_than_array(mk):
    """G7: SUBSIZE smaller than the array limits the cutout."""
    target = mk.const((4, 4), 100.0)
    bkg = mk.const((4, 4), 9.0, subsize=(3, 3))
    out, bk = combined(target, [bkg])
    expected = np.zeros((4, 4), np.float32)
    expected[0:3, 0:3] = 9.0
    np.testing.assert_array_equal(bk["SCI"], expected)
    np.testing.assert_array_equal(out.sci, np.float32(100.0) - expected)


def test_g7_subsize_smaller_uses_first_pixels(mk):
    """Only the first SUBSIZE pixels of the array are used."""
    target = mk.const((4, 4), 0.0)
    bkg = mk(ramp((4, 4)), subsize=(3, 3))
    _, bk = combined(target, [bkg])
    expected = np.zeros((4, 4), np.float32)
    expected[0:3, 0:3] = ramp((4, 4))[0:3, 0:3]
    np.testing.assert_array_equal(bk["SCI"], expected)


def test_g8_subsize_larger_than_array(mk):
    """G8: SUBSIZE larger than the array is clamped."""
    target = mk.const((4, 4), 100.0)
    bkg = mk.const((4, 4), 9.0, subsize=(6, 6))
    out, bk = combined(target, [bkg])
    np.testing.assert_array_equal(bk["SCI"], np.full((4, 4), 9.0, np.float32))
    np.testing.assert_array_equal(out.sci, np.full((4, 4), 91.0, np.float32))


# ------------------------------------------------------------------------------------ G9


def test_g9_2d_target_3d_background(mk):
    """G9: 2-D target with 3-D background raises ValueError."""
    target = mk.const((4, 5), 100.0)
    bkg = mk.const((2, 4, 5), 1.0)
    with pytest.raises(ValueError) as info:
        daskbkg.subtract_background(target, [bkg])
    assert not isinstance(info.value, IndexError)


def test_g9_3d_target_2d_background(mk):
    """G9: 3-D target with 2-D background raises IndexError."""
    target = mk.const((2, 4, 5), 100.0)
    bkg = mk.const((4, 5), 1.0)
    with pytest.raises(IndexError) as info:
        daskbkg.subtract_background(target, [bkg])
    assert not isinstance(info.value, ValueError)


def test_g9_non_overlapping_other_dimensionality_is_ignored(mk):
    """A background that does not overlap is never read, whatever its shape."""
    target = mk.const((4, 5), 100.0)
    far = mk.const((2, 4, 5), 1.0, substrt=(100, 100))
    out, bk = combined(target, [far, mk.const((4, 5), 10.0)])
    np.testing.assert_array_equal(bk["SCI"], np.full((4, 5), 10.0, np.float32))
    np.testing.assert_array_equal(bk["NBKG"], np.ones((4, 5), np.int32))


def test_g9_first_failing_background_decides(mk):
    """Backgrounds are checked in list order; the first failure gives the exception."""
    target = mk.const((2, 4, 6), 100.0)
    flat = mk.const((4, 6), 1.0)                       # IndexError
    narrow = mk.const((2, 4, 3), 1.0, subsize=(3, 4))  # ValueError (width 3)
    with pytest.raises(IndexError):
        daskbkg.subtract_background(target, [flat, narrow])
    with pytest.raises(ValueError):
        daskbkg.subtract_background(target, [narrow, flat])


def test_g9_geometry_error_precedes_later_missing_file(mk, tmp_path):
    """Backgrounds are opened one by one: an earlier geometry error wins (algorithm page A.16)."""
    target = mk.const((4, 5), 100.0)
    bad = mk.const((2, 4, 5), 1.0)
    with pytest.raises(ValueError) as info:
        daskbkg.subtract_background(target, [bad, tmp_path / "missing_rate.fits"])
    assert not isinstance(info.value, FileNotFoundError)
    with pytest.raises(FileNotFoundError):
        daskbkg.subtract_background(target, [tmp_path / "missing_rate.fits", bad])


# ---------------------------------------------------------------- isinstance (algorithm page A.16)


def _raise(callable_, *args, **kwargs):
    try:
        callable_(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - the test inspects the type
        return exc
    raise AssertionError("no exception raised")


def test_exception_types_are_builtin_subclasses(mk, tmp_path):
    """Every error of A.16 is an instance of the reference's built-in type."""
    t2 = mk.const((4, 5), 1.0)
    t3 = mk.const((2, 4, 5), 1.0)
    text = tmp_path / "text_rate.fits"
    text.write_text("this is not a FITS file\n" * 200)
    cases = [
        (ValueError, (mk.const((10, 10), 1.0, instrument="NIRCAM", window_keywords=False), [t2])),
        (AttributeError, (mk.const((4, 5), 1.0, window_keywords=False,
                                   extra_primary={"INSTRUME": None}), [t2])),
        (ValueError, (t2, [t3])),
        (IndexError, (t3, [t2])),
        (ValueError, (t3, [mk.const((3, 4, 5), 1.0)])),
        (ValueError, (mk.const((2, 4, 6), 1.0), [mk.const((2, 4, 3), 1.0)])),
        (TypeError, (mk.const((4, 5), 1.0, instrument="NIRSPEC"),
                     [mk.const((4, 5), 1.0, instrument="NIRSPEC")])),
        (FileNotFoundError, (t2, [tmp_path / "nowhere_rate.fits"])),
        (FileNotFoundError, (tmp_path / "nowhere_rate.fits", [t2])),
        (OSError, (t2, [text])),
    ]
    for builtin, (target, bkgs) in cases:
        exc = _raise(daskbkg.subtract_background, target, bkgs)
        assert isinstance(exc, builtin), (builtin, type(exc), exc)
        assert str(exc)
    # The builtin identity also holds for the daskbkg classes themselves.
    from daskbkg import errors

    assert issubclass(errors.GeometryError, ValueError)
    assert issubclass(errors.DimensionError, IndexError)
    assert issubclass(errors.InputFileNotFoundError, FileNotFoundError)
    assert issubclass(errors.NotFitsError, OSError)
    assert issubclass(errors.OutputError, OSError)


@pytest.mark.parametrize("chunks", [(1, 1), (2, 3), (4, -1), (1, -1)])
@pytest.mark.parametrize("placement", ["reference", "aligned"])
def test_geometry_oracles_for_any_tiling(mk, chunks, placement):
    """G1 and G2 hold for any tile shape."""
    values = ramp((6, 8))[1:4, 2:6]
    target = mk.const((6, 8), 1000.0)
    bkg = mk(values, dq=8, substrt=(3, 2))
    out, bk = combined(target, [bkg], chunks=chunks, subarray_placement=placement)
    expected = np.zeros((6, 8), np.float32)
    r, c = (1, 2) if placement == "aligned" else (0, 0)
    expected[r:r + 3, c:c + 4] = values
    np.testing.assert_array_equal(bk["SCI"], expected)
    np.testing.assert_array_equal(bk["DQ"], np.where(expected > 0, 8, 0).astype(np.uint32))
    # G1 with tiles
    bkgs = [mk(ramp((6, 8))), mk(ramp((6, 8), 1.0))]
    sub = mk.const((3, 4), 0.0, substrt=(3, 2))
    _, bk = combined(sub, bkgs, chunks=chunks, subarray_placement=placement)
    np.testing.assert_array_equal(bk["SCI"], ramp((6, 8), 0.5)[1:4, 2:6])
