"""WFSS estimators: robust mean, pixel test, float32 subtraction and weighted fit.

Covers algorithm page W.5–W.7 and W.9 with the oracles W1–W7 and WA–WD of W.3, the parameters and the
DQ translation.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from daskbkg.errors import InputError
from daskbkg.wfss.errors import WfssEmptyMeanError, WfssParameterTypeError
from daskbkg.wfss.estimators import (
    apply_robust,
    apply_weighted,
    pixel_test,
    quartile_limits,
    robust_mean,
    robust_scale,
    weighted_scale,
    zero_nan,
)
from daskbkg.wfss.params import WfssParams
from daskbkg.wfss.reference import dq_map_from_table, translate_dq

F32 = np.float32


def f32(values):
    """Float32 array of ``values``."""
    return np.asarray(values, dtype=np.float32)


def bits(a):
    """Bit patterns of a float32 array (for exact comparisons, NaN included)."""
    return np.asarray(a, dtype=np.float32).view(np.uint32)


# ----------------------------------------------------------------------- W1-W6 robust mean
@pytest.mark.parametrize("values, limits, expected", [
    ([1, 2, 3, 4, 5, 6, 7, 8], (2.75, 6.25), 4.5),                    # W1
    ([1, 2, 3, 4, np.nan, 5, 6, 7, 8], (2.75, 6.25), 4.5),            # W2
    ([1, 2, 3, 4, 5], (2.0, 4.0), 3.0),                               # W3: inclusive limits
    ([1, 1, 1, 1, 5, 9, 9, 9], (1.0, 9.0), 4.5),                      # W4: all kept
    ([1, 2, 3, 4, 5, 6, 7, np.inf], (2.75, 6.25), 4.5),               # W5: +inf takes part
])
def test_robust_mean_oracles(values, limits, expected):
    """W1-W5: limits and means."""
    assert quartile_limits(f32(values)) == limits
    assert robust_mean(f32(values)) == expected


def test_robust_mean_all_nan_is_index_error():  # W6
    """W6: nothing but NaN raises IndexError."""
    with pytest.raises(IndexError) as info:
        robust_mean(f32([np.nan]))
    assert isinstance(info.value, WfssEmptyMeanError)
    assert isinstance(info.value, InputError)
    with pytest.raises(IndexError):
        robust_mean(f32([]))


def test_robust_mean_empty_keep_gives_nan_like_the_reference():
    """No value between the rounded limits gives NaN, as in the reference."""
    # n = 2: the limits 0.25 / 0.75 fall strictly between the two values.
    assert math.isnan(robust_mean(f32([0, 1])))


def _spec_percentile(s: np.ndarray, q: float) -> float:
    """Algorithm page W.6 step 2, written out on the sorted float32 values."""
    n = s.size
    h = (n - 1) * q / 100
    i = math.floor(h)
    g = h - i
    if i >= n - 1:
        return float(s[n - 1])
    d = float(np.float32(s[i + 1] - s[i]))
    return float(s[i]) + d * g if g < 0.5 else float(s[i + 1]) - d * (1 - g)


def _straightforward_robust_mean(x: np.ndarray, float32_limits: bool = True) -> float:
    v = x[~np.isnan(x)]
    lo, hi = np.percentile(v, [25, 75])
    if np.isfinite(v).all():  # the written-out formula ignores NumPy's inf - inf = NaN
        assert (lo, hi) == (_spec_percentile(np.sort(v), 25), _spec_percentile(np.sort(v), 75))
    if float32_limits:
        lo, hi = np.float32(lo), np.float32(hi)
    keep = v[(v >= lo) & (v <= hi)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # mean of an empty selection
        return float(np.mean(keep, dtype=np.float64))


float32_samples = hnp.arrays(
    np.float32, st.integers(1, 300),
    elements=st.one_of(
        st.floats(-1e6, 1e6, width=32),
        st.sampled_from([0.0, 1.0, np.nan, np.inf, -np.inf, 1e-30]),
    ),
)


@settings(max_examples=300, deadline=None)
@given(float32_samples)
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # inf - inf inside numpy.percentile
def test_robust_mean_matches_numpy_percentile_version_bitwise(x):
    """Bitwise equal to a plain numpy.percentile implementation."""
    if np.isnan(x).all():
        with pytest.raises(IndexError):
            robust_mean(x)
        return
    ours = robust_mean(x)
    theirs = _straightforward_robust_mean(x)
    assert np.float64(ours).tobytes() == np.float64(theirs).tobytes()


def test_float32_limits_matter():
    """Comparing with float64 limits (NumPy 2 default) changes some selections."""
    rng = np.random.default_rng(7)
    differ = 0
    ulp = np.float32(2.0 ** -23)
    for _ in range(2000):
        # Values a few ulp apart, as in a real image: float32(limit) may equal a sample.
        x = np.float32(1) + ulp * rng.integers(0, 6, int(rng.integers(4, 60))).astype(np.float32)
        ours = robust_mean(x)
        assert ours == _straightforward_robust_mean(x, float32_limits=True)
        differ += ours != _straightforward_robust_mean(x, float32_limits=False)
    assert differ > 0


# ------------------------------------------------------------------- W7 scale and float32
def _w7():
    row, col = np.mgrid[0:10, 0:11]
    ref = ((row * 11 + col) % 7 + 1).astype(np.float32)
    sci = (ref / 3).astype(np.float32)
    sci[0, 0] = 50
    return sci, ref


def test_w7_means_factor_and_float32_subtraction():
    """W7: means, factor and the float32 subtraction rule."""
    sci, ref = _w7()
    scale = robust_scale(sci, ref, np.ones(sci.shape, dtype=bool))
    assert scale.sci_mean == 1.3248945187918748
    assert scale.ref_mean == 3.9746835443037973
    assert scale.factor == 0.3333333343457265
    assert scale.factor32 == np.float32(0.33333334)
    assert scale.factor32.dtype == np.float32
    out = apply_robust(sci, zero_nan(ref), scale.factor32)
    assert out.dtype == np.float32
    expected_row0 = f32([49.666668, 0, 0, 0, -1.1920929e-07, 0, -2.3841858e-07, 0])
    assert np.array_equal(bits(out[0, :8]), bits(expected_row0))
    # Doing the multiply in float64 changes 109 of the 110 pixels at the ulp level.
    out64 = (sci.astype(np.float64) - scale.factor * ref.astype(np.float64)).astype(np.float32)
    assert int(np.count_nonzero(bits(out64) != bits(out))) == 109


def test_reference_nan_is_zeroed_for_means_and_subtraction():
    """Reference NaN becomes 0 (inf stays), so the pixel is not subtracted."""
    sci = f32([[1.0, 2.0], [3.0, 4.0]])
    ref = f32([[np.nan, 2.0], [np.inf, 4.0]])
    ref0 = zero_nan(ref)
    assert bits(ref0).tolist() == bits(f32([[0.0, 2.0], [np.inf, 4.0]])).tolist()
    out = apply_robust(sci, ref0, np.float32(0.5))
    assert out[0, 0] == 1.0  # unsubtracted where the reference was NaN
    assert out[1, 0] == -np.inf


def test_zero_reference_mean_means_no_subtraction():
    """A zero reference mean gives no factor."""
    scale = robust_scale(f32([[1, 2], [3, 4]]), np.zeros((2, 2), np.float32),
                         np.ones((2, 2), bool))
    assert scale.factor is None and not scale.subtract


# -------------------------------------------------------------------------- pixel test
def test_w9_pixel_test_precedence_bug():
    """W9: only DQ == 1 exactly is excluded by the 1.13 rule."""
    mask = np.zeros((20, 20), dtype=bool)
    mask.flat[:100] = True
    dq = np.zeros((20, 20), dtype=np.uint32)
    assert pixel_test(mask, dq).passed
    one = dq.copy()
    one.flat[5] = 1
    assert not pixel_test(mask, one).passed
    three = np.full((20, 20), 3, dtype=np.uint32)
    assert pixel_test(mask, three).passed  # only DQ == 1 exactly is excluded
    assert pixel_test(mask, np.full((20, 20), 1025, np.uint32)).passed


def test_pixel_test_modes():
    """The 1.12, fixed, jwst-3.0 and user-mask rules at their boundaries."""
    mask = np.zeros((20, 20), dtype=bool)
    mask.flat[:101] = True
    dq = np.zeros((20, 20), dtype=np.uint32)
    assert pixel_test(mask, dq, "fixed").passed  # 101 > 100
    dq.flat[0] = 1025  # DO_NOT_USE through another value
    assert not pixel_test(mask, dq, "fixed").passed  # 100 is not > 100
    assert pixel_test(mask, dq, "jwst-1.13").passed
    assert pixel_test(mask, np.ones((20, 20), np.uint32), "jwst-1.12").passed
    small = np.zeros((20, 20), dtype=bool)
    small.flat[:99] = True
    assert not pixel_test(small, np.zeros((20, 20), np.uint32), "jwst-1.12").passed
    # jwst-3.0: > int(0.05 * 400) = 20 pixels with nonzero reference and no DO_NOT_USE.
    ref = np.zeros((20, 20), np.float32)
    ref.flat[:21] = np.nan  # NaN counts as nonzero
    test = pixel_test(mask, np.zeros((20, 20), np.uint32), "jwst-3.0", ref=ref)
    assert (test.passed, test.count, test.threshold) == (True, 21, 20)
    ref.flat[20] = 0.0
    assert not pixel_test(mask, np.zeros((20, 20), np.uint32), "jwst-3.0", ref=ref).passed
    # user-mask rule of the weighted method: at least one usable pixel.
    assert pixel_test(mask, dq, "user-mask").passed
    assert not pixel_test(mask, np.ones((20, 20), np.uint32), "user-mask").passed
    with pytest.raises(ValueError):
        pixel_test(mask, dq, "nonsense")


# ----------------------------------------------------------------------- WA-WD weighted
def _wa():
    s = np.arange(100, dtype=np.float32)
    s[99] = 1000
    return s.reshape(10, 10), np.ones((10, 10), np.float32), np.ones((10, 10), np.float32)


@pytest.mark.parametrize("maxiter, factor, rejected", [
    (0, 58.51, 0), (1, 49.5, 2), (2, 49.5, 4), (5, 49.5, 10)])
def test_wa_iterations(maxiter, factor, rejected):
    """WA: iterations reject the two extremes per pass."""
    s, b, e = _wa()
    fit = weighted_scale(s, e, b, np.ones((10, 10), bool), maxiter=maxiter)
    assert fit.factor == factor
    assert fit.n_rejected == rejected
    assert fit.passes == maxiter


def test_wb_nan_science_stays_in_denominator():
    """WB: the NaN-science quirk and its correction."""
    s = np.full((2, 2), 2, np.float32)
    s[0, 0] = np.nan
    one = np.ones((2, 2), np.float32)
    mask = np.ones((2, 2), bool)
    assert weighted_scale(s, one, one, mask, maxiter=0).factor == 1.5
    assert weighted_scale(s, one, one, mask, maxiter=0, sci_nan="exclude").factor == 2.0


def test_wc_zero_variance_dropped():
    """WC: zero-variance pixels leave the fit."""
    s = f32([[2, 4], [6, 8]])
    b = f32([[1, 2], [3, 4]])
    err = f32([[1, 1], [0, 2]])  # V = [[1, 1], [0, 4]]
    assert weighted_scale(s, err, b, np.ones((2, 2), bool), maxiter=0).factor == 2.0


def test_wd_weights():
    """WD: inverse-variance weights."""
    s = f32([[1, 2], [3, 5]])
    err = f32([[1, 1], [1, 2]])
    fit = weighted_scale(s, err, np.ones((2, 2), np.float32), np.ones((2, 2), bool), maxiter=0)
    assert fit.factor == 2.230769230769231 == 7.25 / 3.25


def test_weighted_uses_only_the_mask_and_keeps_reference_nan():
    """Only mask pixels enter the fit; reference NaN propagates to the output."""
    s = f32([[2, 2], [100, 2]])
    b = f32([[1, 1], [1, np.nan]])
    mask = np.array([[True, True], [False, True]])
    fit = weighted_scale(s, np.ones((2, 2), np.float32), b, mask, maxiter=0)
    assert fit.factor == 2.0
    out = apply_weighted(s, b, fit.factor)
    assert out.dtype == np.float32
    assert out[0, 0] == 0.0 and np.isnan(out[1, 1])  # reference NaN propagates


def test_weighted_non_finite_factor():
    """All-zero variance gives a NaN factor."""
    s, b, _ = _wa()
    fit = weighted_scale(s, np.zeros((10, 10), np.float32), b, np.ones((10, 10), bool))
    assert not fit.finite and math.isnan(fit.factor)


def test_rms_stop_needs_dispaxis():
    """The RMS stop needs DISPAXIS 1 or 2; without it DISPAXIS is not needed."""
    s, b, e = _wa()
    with pytest.raises(ValueError, match="DISPAXIS"):
        weighted_scale(s, e, b, np.ones((10, 10), bool), rms_stop=1.0, dispaxis=None)
    fit = weighted_scale(s, e, b, np.ones((10, 10), bool), rms_stop=0.0, dispaxis=None)
    assert fit.factor == 49.5


def test_rms_stop_breaks_before_rejection():
    """The RMS rule breaks before that pass's rejection."""
    rng = np.random.default_rng(3)
    b = (1 + 0.1 * rng.random((30, 40))).astype(np.float32)
    s = (0.5 * b + rng.normal(0, 0.01, b.shape)).astype(np.float32)
    e = np.full(b.shape, 0.01, np.float32)
    mask = np.ones(b.shape, bool)
    fit = weighted_scale(s, e, b, mask, maxiter=5, rms_stop=50.0, dispaxis=1)
    # Pure noise: the second pass cannot improve the RMS by 50 %, so it stops there, and
    # the final factor is the one of a single rejection pass.
    assert fit.rms_stop_pass == 1 and fit.passes == 1 and len(fit.rms) == 2
    assert fit.factor == weighted_scale(s, e, b, mask, maxiter=1).factor


# ------------------------------------------------------------------------- parameters
@pytest.mark.parametrize("bad", ["26", [26.0], True])
def test_mmag_type_error(bad):
    """A non-number magnitude cut raises TypeError."""
    with pytest.raises(TypeError) as info:
        WfssParams(mmag_extract=bad)
    assert isinstance(info.value, WfssParameterTypeError)


def test_params_accept_numbers_and_validate_ranges():
    """Numbers are accepted; out-of-range values raise ValueError."""
    assert WfssParams(mmag_extract=26).mmag_cut == 26.0
    assert WfssParams(mmag_extract=np.float64(25.5)).mmag_cut == 25.5
    assert WfssParams().mmag_cut == 999.0
    for kwargs in ({"maxiter": -1}, {"rms_stop": -1.0}, {"outlier_percent": 60.0},
                   {"outlier_percent": float("nan")}, {"method": "median"}):
        with pytest.raises(ValueError):
            WfssParams(**kwargs)
    with pytest.raises(TypeError):
        WfssParams(maxiter=2.5)


def test_method_resolution():
    """The method comes from the compat preset unless given."""
    from daskbkg.options import make_compat

    assert WfssParams().resolve_method(make_compat()) == "robust-mean"
    assert WfssParams().resolve_method(make_compat("jwst-3.0")) == "weighted"
    assert WfssParams(method="robust-mean").resolve_method(make_compat("jwst-3.0")) == \
        "robust-mean"


# ---------------------------------------------------------------------- DQ translation
def test_dq_def_translation_by_name():
    """DQ_DEF rows map file bits to standard bits by name."""
    dq_map = dq_map_from_table(["DO_NOT_USE", "WARM ", "HOT", "NOT_A_FLAG", "GOOD"],
                               [1, 2, 4, 8, 0])
    dq = np.array([0, 1, 2, 3, 4, 8, 15], dtype=np.uint32)
    out = translate_dq(dq, dq_map)
    assert out.tolist() == [0, 1, 4096, 4097, 2048, 0, 1 + 4096 + 2048]
    assert translate_dq(dq, None) is not None and translate_dq(dq, None).tolist() == dq.tolist()
