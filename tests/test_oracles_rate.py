"""Rate-mode oracles I1-I13 (imaging algorithm page A.13), end to end through the public API.

Every case writes tiny FITS exposures, runs ``subtract_background(...).compute()`` and
checks the float32 values, DQ, status and the combined background exactly.
"""

from __future__ import annotations

import dask
import numpy as np
import pytest
from helpers import Maker, f32

import daskbkg

SHAPE = (4, 5)


@pytest.fixture
def mk(tmp_path):
    """Exposure maker writing into ``tmp_path``."""
    return Maker(tmp_path)


def run(target, backgrounds, *args, **kwargs):
    """Compute one product and check the dtypes every product must have."""
    result = daskbkg.subtract_background(target, backgrounds, *args, **kwargs)
    out = result.compute()
    assert out.sci.dtype == np.float32 and out.err.dtype == np.float32
    assert out.dq.dtype == np.uint32
    assert out.status == result.status
    if out.combined is not None:
        assert set(out.combined) == {"SCI", "ERR", "DQ", "NBKG"}
        assert out.combined["SCI"].dtype == np.float32
        assert out.combined["ERR"].dtype == np.float32
        assert out.combined["DQ"].dtype == np.uint32
        assert out.combined["SCI"].shape == out.sci.shape[-2:]
    return out


def full(value, shape=SHAPE, dtype=np.float32):
    """Return an array of ``shape`` filled with ``value``."""
    return np.full(shape, value, dtype=dtype)


# --------------------------------------------------------------------------------- I1-I3


@pytest.fixture
def i1(mk):
    """I1 backgrounds: SCI 10..14, ERR 0.5..2.5, DQ 1, 2, 4, 8, 16."""

    def backgrounds(sci_overrides=None):
        paths = []
        for k, (v, e, q) in enumerate(zip([10, 11, 12, 13, 14], [0.5, 1.0, 1.5, 2.0, 2.5],
                                          [1, 2, 4, 8, 16])):
            sci = full(v)
            if sci_overrides and k in sci_overrides:
                (r, c), value = sci_overrides[k]
                sci[r, c] = value
            paths.append(mk(sci, err=e, dq=q))
        return paths

    return backgrounds


def test_i1_five_backgrounds(mk, i1):
    """I1: five backgrounds give 12.0, sqrt(13.75)/5 and DQ 31."""
    out = run(mk.const(SHAPE, 100.0), i1())
    bk = out.combined
    assert out.status == "COMPLETE"
    np.testing.assert_array_equal(bk["SCI"], full(12.0))
    np.testing.assert_array_equal(bk["ERR"], full(f32(np.sqrt(13.75) / 5)))
    assert f32(np.sqrt(13.75) / 5) == f32(0.7416198)
    np.testing.assert_array_equal(bk["DQ"], full(31, dtype=np.uint32))
    np.testing.assert_array_equal(bk["NBKG"], full(5, dtype=np.int32))
    np.testing.assert_array_equal(out.sci, full(88.0))
    np.testing.assert_array_equal(out.err, full(1.0))
    np.testing.assert_array_equal(out.dq, full(31, dtype=np.uint32))


def test_i1_combine_backgrounds_api(mk, i1):
    """``combine_backgrounds`` alone gives the same image (target = first background)."""
    comb = daskbkg.combine_backgrounds(i1(), 3.0, None)
    sci, err, dq, nbkg = dask.compute(comb.sci, comb.err, comb.dq, comb.nbkg)
    np.testing.assert_array_equal(sci, full(12.0))
    np.testing.assert_array_equal(err, full(f32(np.sqrt(13.75) / 5)))
    np.testing.assert_array_equal(dq, full(31, dtype=np.uint32))
    np.testing.assert_array_equal(nbkg, full(5, dtype=np.int32))
    assert isinstance(comb.key, str) and comb.key


def test_i2_outlier_not_rejected_with_five(mk, i1):
    """I2: one outlier among five is not rejected."""
    out = run(mk.const(SHAPE, 100.0), i1({4: ((1, 2), 1000.0)}))
    bk = out.combined
    expected = full(12.0)
    expected[1, 2] = f32(209.2)
    np.testing.assert_array_equal(bk["SCI"], expected)
    assert bk["NBKG"][1, 2] == 5
    np.testing.assert_array_equal(bk["ERR"], full(f32(np.sqrt(13.75) / 5)))
    assert out.sci[1, 2] == np.float32(100.0) - f32(209.2)
    assert out.sci[0, 0] == 88.0


def test_i3_nan_background_pixel(mk, i1):
    """I3: a NaN background pixel is left out of SCI and ERR."""
    out = run(mk.const(SHAPE, 100.0), i1({0: ((2, 3), np.nan)}))
    bk = out.combined
    assert bk["SCI"][2, 3] == f32(12.5)
    assert bk["ERR"][2, 3] == f32(0.91855866)
    assert bk["ERR"][2, 3] == f32(np.sqrt(13.5) / 4)
    assert bk["NBKG"][2, 3] == 4
    assert bk["DQ"][2, 3] == 31  # the NaN background's DQ still counts
    assert out.sci[2, 3] == f32(87.5)
    assert bk["SCI"][0, 0] == 12.0


# ------------------------------------------------------------------------------------ I4


@pytest.mark.parametrize("n, expected", [(3, 340.0), (5, 208.0), (7, 151.42857), (8, 10.0)])
def test_i4_single_outlier(mk, n, expected):
    """I4: a single outlier is rejected only from N = 8."""
    backgrounds = [mk.const((2, 3), 10.0) for _ in range(n - 1)] + [mk.const((2, 3), 1000.0)]
    out = run(mk.const((2, 3), 100.0), backgrounds)
    bk = out.combined
    np.testing.assert_array_equal(bk["SCI"], full(f32(expected), (2, 3)))
    kept = n - 1 if n == 8 else n
    np.testing.assert_array_equal(bk["NBKG"], full(kept, (2, 3), np.int32))
    np.testing.assert_array_equal(bk["ERR"], full(f32(np.sqrt(kept) / kept), (2, 3)))
    np.testing.assert_array_equal(out.sci, np.float32(100.0) - full(f32(expected), (2, 3)))


def test_i4_exact_means():
    """I4 expected values are the float32 means."""
    assert f32(1060 / 7) == f32(151.42857)
    assert f32(1020 / 3) == 340.0 and f32(1040 / 5) == 208.0


# ------------------------------------------------------------------------------------ I5


def test_i5_single_background_err_rounding(mk):
    """I5: the ERR square is rounded to float32."""
    e = np.float32(0.1)
    out = run(mk.const((2, 2), 100.0), [mk.const((2, 2), 5.0, err=e)])
    bk = out.combined
    expected_err = f32(np.sqrt(np.float64(np.float32(e * e))))
    np.testing.assert_array_equal(bk["SCI"], full(5.0, (2, 2)))
    np.testing.assert_array_equal(bk["ERR"], full(expected_err, (2, 2)))
    assert expected_err == f32(0.1)
    np.testing.assert_array_equal(out.sci, full(95.0, (2, 2)))


# ------------------------------------------------------------------------------------ I6


@pytest.fixture
def i6(mk):
    """I6 inputs: backgrounds 0 and 10 (ERR 3 and 4, DQ 2 and 1), target 100."""
    bkgs = [mk.const((1, 1), 0.0, err=3.0, dq=2), mk.const((1, 1), 10.0, err=4.0, dq=1)]
    return mk.const((1, 1), 100.0), bkgs


@pytest.mark.parametrize("maxiters, sci_bk, err_bk, nbkg", [
    (None, 5.0, 2.5, 2), (2, 5.0, 2.5, 2), (0, 5.0, 2.5, 2), (-1, 5.0, 2.5, 2),
    (1, 0.0, 0.0, 0), (-3, 0.0, 0.0, 0),
])
def test_i6_all_rejected_keep(i6, maxiters, sci_bk, err_bk, nbkg):
    """I6 with the astropy-6 policy for each maxiters."""
    target, bkgs = i6
    out = run(target, bkgs, sigma=0.5, maxiters=maxiters)
    bk = out.combined
    assert bk["SCI"][0, 0] == sci_bk and bk["ERR"][0, 0] == err_bk
    assert bk["DQ"][0, 0] == 3 and bk["NBKG"][0, 0] == nbkg
    assert out.sci[0, 0] == np.float32(100.0) - np.float32(sci_bk)
    assert out.dq[0, 0] == 3 and out.err[0, 0] == 1.0


@pytest.mark.parametrize("maxiters", [None, 2, 1, 0, -1])
@pytest.mark.parametrize("how", ["option", "compat"])
def test_i6_all_rejected_reject(i6, maxiters, how):
    """I6 with ``clip_all_rejected='reject'`` rejects everything."""
    target, bkgs = i6
    kwargs = {"clip_all_rejected": "reject"} if how == "option" else {"compat": "jwst-3.0"}
    out = run(target, bkgs, sigma=0.5, maxiters=maxiters, **kwargs)
    bk = out.combined
    assert bk["SCI"][0, 0] == 0.0 and bk["ERR"][0, 0] == 0.0
    assert bk["DQ"][0, 0] == 3 and bk["NBKG"][0, 0] == 0
    assert out.sci[0, 0] == 100.0 and out.dq[0, 0] == 3


def test_i6_no_valid_background_nan(i6):
    """I6, maxiters 1, ``no_valid_background='nan'``."""
    target, bkgs = i6
    out = run(target, bkgs, sigma=0.5, maxiters=1, no_valid_background="nan")
    assert np.isnan(out.combined["SCI"][0, 0])
    assert np.isnan(out.sci[0, 0])
    assert out.dq[0, 0] == 3


# ------------------------------------------------------------------------------------ I7


def test_i7_no_valid_background_pixel(mk):
    """I7: no valid background at a pixel leaves the target unchanged."""
    a, b = full(5.0), full(7.0)
    a[3, 4] = b[3, 4] = np.nan
    target = full(100.0)
    target[0, 0] = 50.0
    out = run(mk(target, err=2.0, dq=4), [mk(a), mk(b)])
    bk = out.combined
    assert bk["SCI"][3, 4] == 0.0 and bk["ERR"][3, 4] == 0.0 and bk["NBKG"][3, 4] == 0
    assert out.sci[3, 4] == 100.0  # target unchanged there
    expected_sci = full(6.0)
    expected_sci[3, 4] = 0.0
    expected_err = full(f32(0.70710677))
    expected_err[3, 4] = 0.0
    np.testing.assert_array_equal(bk["SCI"], expected_sci)
    np.testing.assert_array_equal(bk["ERR"], expected_err)
    assert f32(np.sqrt(2) / 2) == f32(0.70710677)
    assert out.sci[0, 0] == 44.0 and out.sci[1, 1] == 94.0
    np.testing.assert_array_equal(out.err, full(2.0))
    np.testing.assert_array_equal(out.dq, full(4, dtype=np.uint32))


def test_i7_option_nan(mk):
    """I7 with ``no_valid_background='nan'``."""
    a, b = full(5.0), full(7.0)
    a[3, 4] = b[3, 4] = np.nan
    out = run(mk.const(SHAPE, 100.0), [mk(a), mk(b)], no_valid_background="nan")
    assert np.isnan(out.combined["SCI"][3, 4]) and np.isnan(out.sci[3, 4])
    assert out.combined["SCI"][0, 0] == 6.0 and out.sci[0, 0] == 94.0


# ------------------------------------------------------------------------------------ I8-I9


def test_i8_nan_err_and_inf_sci(mk):
    """I8: NaN ERR propagates, +inf SCI is clipped."""
    a_sci, a_err = full(5.0, (2, 2)), full(1.0, (2, 2))
    a_err[0, 0] = np.nan
    a_sci[1, 1] = np.inf
    out = run(mk.const((2, 2), 100.0), [mk(a_sci, err=a_err), mk.const((2, 2), 7.0)])
    bk = out.combined
    np.testing.assert_array_equal(bk["SCI"], np.array([[6, 6], [6, 7]], dtype=np.float32))
    np.testing.assert_array_equal(
        bk["ERR"], np.array([[np.nan, 0.70710677], [0.70710677, 1.0]], dtype=np.float32))
    np.testing.assert_array_equal(bk["NBKG"], np.array([[2, 2], [2, 1]], dtype=np.int32))
    np.testing.assert_array_equal(out.sci, np.array([[94, 94], [94, 93]], dtype=np.float32))


def test_i9_inf_err(mk):
    """I9: +inf ERR gives +inf ERR_bk."""
    out = run(mk.const((2, 2), 100.0),
              [mk.const((2, 2), 5.0, err=np.inf), mk.const((2, 2), 7.0)])
    bk = out.combined
    np.testing.assert_array_equal(bk["SCI"], full(6.0, (2, 2)))
    np.testing.assert_array_equal(bk["ERR"], full(np.inf, (2, 2)))
    np.testing.assert_array_equal(out.sci, full(94.0, (2, 2)))
    np.testing.assert_array_equal(out.err, full(1.0, (2, 2)))


# ----------------------------------------------------------------------------------- I10-I11


def test_i10_float64_mean_of_float32(mk):
    """I10: the mean is float64 over float32 values."""
    out = run(mk.const((2, 2), 1.0), [mk.const((2, 2), v) for v in (0.1, 0.2, 0.4)])
    values = [np.float64(np.float32(v)) for v in (0.1, 0.2, 0.4)]
    expected = f32((values[0] + values[1] + values[2]) / 3)
    assert expected == f32(0.23333333)
    np.testing.assert_array_equal(out.combined["SCI"], full(expected, (2, 2)))
    np.testing.assert_array_equal(out.sci, np.float32(1.0) - full(expected, (2, 2)))


def test_i11_nan_target_pixel(mk):
    """I11: NaN in the target stays NaN."""
    target = np.array([[np.nan, 100.0]], dtype=np.float32)
    out = run(mk(target), [mk.const((1, 2), 1.0)])
    np.testing.assert_array_equal(out.sci, np.array([[np.nan, 99.0]], dtype=np.float32))


def test_i11_inf_target_pixel_stays(mk):
    """Infinities in the target stay infinite."""
    target = np.array([[np.inf, -np.inf, 100.0]], dtype=np.float32)
    out = run(mk(target), [mk.const((1, 3), 1.0)])
    np.testing.assert_array_equal(out.sci, np.array([[np.inf, -np.inf, 99.0]], dtype=np.float32))


# ----------------------------------------------------------------------------------- I12


@pytest.fixture
def i12_target(mk):
    """Target with non-trivial ERR and DQ (bit 31 included)."""
    err = full(2.0)
    err[0, 1] = 0.5
    dq = full(5, dtype=np.uint32)
    dq[2, 2] = (1 << 31) | 1
    return mk(full(100.0), err=err, dq=dq), err, dq


def test_i12_empty_list_reference(i12_target):
    """I12: empty list gives all-NaN SCI and COMPLETE."""
    target, err, dq = i12_target
    result = daskbkg.subtract_background(target, [])
    out = run(target, [])
    assert result.status == "COMPLETE" and out.status == "COMPLETE"
    assert np.isnan(out.sci).all()
    np.testing.assert_array_equal(out.err, err)
    np.testing.assert_array_equal(out.dq, dq)
    bk = out.combined
    assert np.isnan(bk["SCI"]).all()
    np.testing.assert_array_equal(bk["ERR"], full(0.0))
    np.testing.assert_array_equal(bk["DQ"], full(0, dtype=np.uint32))


@pytest.mark.parametrize("kwargs", [{"empty_bkg_list": "skip"}, {"compat": "jwst-3.0"}])
def test_i12_empty_list_skip(i12_target, kwargs):
    """I12 with the skip option: unchanged copy, SKIPPED."""
    target, err, dq = i12_target
    result = daskbkg.subtract_background(target, [], **kwargs)
    assert result.status == "SKIPPED"
    assert result.combined_background is None
    out = run(target, [], **kwargs)
    assert out.status == "SKIPPED" and out.combined is None
    np.testing.assert_array_equal(out.sci, full(100.0))
    np.testing.assert_array_equal(out.err, err)
    np.testing.assert_array_equal(out.dq, dq)


# ----------------------------------------------------------------------------------- I13

TILT = 1e-4


@pytest.fixture
def nirspec(mk):
    """NIRSpec 10x10 exposure maker with GWA tilt keywords."""
    def make(value, xtil=TILT, ytil=TILT):
        extra = {}
        if xtil is not None:
            extra["GWA_XTIL"] = xtil
        if ytil is not None:
            extra["GWA_YTIL"] = ytil
        return mk.const((10, 10), value, instrument="NIRSPEC", extra_primary=extra)

    return make


def test_i13_tilts_match(nirspec):
    """I13: equal tilts: subtraction runs."""
    out = run(nirspec(100.0), [nirspec(10.0)])
    assert out.status == "COMPLETE"
    np.testing.assert_array_equal(out.sci, full(90.0, (10, 10)))
    np.testing.assert_array_equal(out.combined["SCI"], full(10.0, (10, 10)))


def test_i13_tiny_difference_matches(nirspec):
    """Differences within the absolute 1e-8 tolerance still match."""
    out = run(nirspec(100.0), [nirspec(10.0, xtil=TILT + 5e-9, ytil=TILT - 5e-9)])
    assert out.status == "COMPLETE"
    np.testing.assert_array_equal(out.sci, full(90.0, (10, 10)))


@pytest.mark.parametrize("axis", ["x", "y"])
@pytest.mark.parametrize("delta", [1e-5, 2e-8])
def test_i13_tilt_mismatch_skips(nirspec, axis, delta):
    """I13: a tilt off by more than 1e-8 skips the step."""
    tilts = {"xtil": TILT + delta} if axis == "x" else {"ytil": TILT + delta}
    target = nirspec(100.0, **tilts)
    result = daskbkg.subtract_background(target, [nirspec(10.0)])
    assert result.status == "SKIPPED"
    assert result.combined_background is None
    out = run(target, [nirspec(10.0)])
    assert out.status == "SKIPPED" and out.combined is None
    np.testing.assert_array_equal(out.sci, full(100.0, (10, 10)))
    np.testing.assert_array_equal(out.err, full(1.0, (10, 10)))
    np.testing.assert_array_equal(out.dq, full(0, (10, 10), np.uint32))


def test_i13_mismatch_in_second_background(nirspec):
    """A mismatch in any background skips the step."""
    out = run(nirspec(100.0), [nirspec(10.0), nirspec(10.0, xtil=TILT + 1e-5)])
    assert out.status == "SKIPPED"
    np.testing.assert_array_equal(out.sci, full(100.0, (10, 10)))


def test_i13_walk_stops_at_first_mismatch(nirspec):
    """A background with a missing tilt after the first mismatch is never looked at."""
    out = run(nirspec(100.0), [nirspec(10.0, ytil=TILT + 1e-5), nirspec(10.0, xtil=None)])
    assert out.status == "SKIPPED"


@pytest.mark.parametrize("who, which", [("target", "x"), ("target", "y"),
                                        ("background", "x"), ("background", "y")])
def test_i13_missing_tilt_type_error(nirspec, who, which):
    """A missing tilt raises TypeError."""
    missing = {"xtil": None} if which == "x" else {"ytil": None}
    target = nirspec(100.0, **(missing if who == "target" else {}))
    bkg = nirspec(10.0, **(missing if who == "background" else {}))
    with pytest.raises(TypeError):
        daskbkg.subtract_background(target, [bkg])


def test_i13_tilt_ignored_for_other_instruments(mk):
    """Tilts are not compared for other instruments."""
    target = mk.const((3, 3), 100.0, extra_primary={"GWA_XTIL": 1.0, "GWA_YTIL": 1.0})
    bkg = mk.const((3, 3), 10.0, extra_primary={"GWA_XTIL": 2.0})
    out = run(target, [bkg])
    assert out.status == "COMPLETE"
    np.testing.assert_array_equal(out.sci, full(90.0, (3, 3)))


def test_i13_missing_file_after_mismatch_is_never_opened(nirspec, tmp_path):
    """The walk stops at the first mismatch, before a later (missing) file is opened."""
    target = nirspec(100.0)
    result = daskbkg.subtract_background(
        target, [nirspec(10.0, xtil=TILT + 1e-5), tmp_path / "missing_rate.fits"])
    assert result.status == "SKIPPED"
