"""The exactness argument of docs/algorithm-exactness.md, checked in exact arithmetic.

Python floats are IEEE binary64 with rounding to nearest, like the C kernel's doubles;
``fractions.Fraction`` holds every binary64 value exactly, so the inequalities of the
derivation are checked without any rounding of their own.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daskbkg.kernels import _ckernels, clip_lane_bounds, combine_tile, combine_tile_reference
from daskbkg.kernels.compiled import literal_pixel_count

U = Fraction(1, 2**53)


def gamma(k: int) -> Fraction:
    """``γ_k = k·u / (1 - k·u)``, exactly."""
    return k * U / (1 - k * U)


def fsum_in(order):
    """Left-to-right binary64 sum of ``order`` (Python floats), starting at +0.0."""
    total = 0.0
    for x in order:
        total += x
    return total


def fsum_four(values):
    """The kernel's ``window_sum``: four interleaved accumulators."""
    acc = [0.0, 0.0, 0.0, 0.0]
    whole = len(values) - len(values) % 4  # the tail goes to the first accumulator
    for i, x in enumerate(values):
        acc[i % 4 if i < whole else 0] += x
    return (acc[0] + acc[1]) + (acc[2] + acc[3])


def pass_of(order, sigma):
    """One pass of the clip with the sums taken in ``order`` (algorithm page A.9): the floats of A.1."""
    m = len(order)
    ranked = sorted(order)
    half = m // 2
    med = ranked[half] if m % 2 else 0.5 * (ranked[half] + ranked[half - 1])
    mean = fsum_in(order) / m
    sq = fsum_in([(mean - x) * (mean - x) for x in order])
    std = math.sqrt(sq / m)
    return dict(med=med, mean=mean, sq=sq, std=std, lo=med - sigma * std, hi=med + sigma * std)


def orders(values, rng):
    """The same multiset in several summation orders: sorted, reversed, shuffled."""
    ranked = sorted(values)
    shuffled = list(values)
    rng.shuffle(shuffled)
    return [ranked, ranked[::-1], shuffled, list(values)]


@st.composite
def windows(draw):
    """Adversarial windows of float32 values: wide dynamic range, near-ties, extremes."""
    m = draw(st.integers(2, 100))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = draw(st.sampled_from(["wide", "near-equal", "extreme", "cancel"]))
    if kind == "wide":
        values = rng.normal(0, 1, m) * 10.0 ** rng.integers(-30, 30, m)
    elif kind == "near-equal":
        values = 1.0 + rng.integers(-3, 4, m) * 2.0**-23
    elif kind == "extreme":
        values = rng.choice([3.4e38, -3.4e38, 1.0, -1.0, 1e-45, 7e37], m)
    else:
        values = np.concatenate([[1e30, -1e30], rng.normal(5.0, 1.0, m - 2)])
    values = values.astype(np.float32).astype(np.float64)
    return [float(v) for v in values], rng


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=windows())
def test_summation_error_bound_holds_in_every_order(case):
    """(1): |fl(Σx) - Σx| ≤ γ_{m-1} Σ|x| for sequential and four-accumulator sums."""
    values, rng = case
    exact = sum(map(Fraction, values))
    bound = gamma(len(values) - 1) * sum(abs(Fraction(v)) for v in values)
    for order in orders(values, rng):
        assert abs(Fraction(fsum_in(order)) - exact) <= bound
        assert abs(Fraction(fsum_four(order)) - exact) <= bound


@pytest.mark.parametrize("m", [2, 3, 17, 100])
def test_summation_error_bound_is_attained(m):
    """1 + u + u + ...: every addition rounds back to 1 (ties to even); the error is the bound."""
    u = 2.0**-53
    values = [1.0] + [u] * (m - 1)
    error = Fraction(values[0]) + (m - 1) * U - Fraction(fsum_in(values))
    bound = gamma(m - 1) * sum(map(Fraction, values))
    assert fsum_in(values) == 1.0 and error == (m - 1) * U
    assert error <= bound and error / bound > 1 - Fraction(1, 10**12)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=windows())
def test_sum_of_squares_bound(case):
    """The identity Σ(c-x)² = S + m(c-μ)², then (2) and (4) for every summation order."""
    values, rng = case
    m = len(values)
    exact = [Fraction(v) for v in values]
    mu = sum(exact) / m
    s_exact = sum((x - mu) ** 2 for x in exact)
    big = max(abs(x) for x in exact)
    for order in orders(values, rng):
        p = pass_of(order, 1.0)
        mean = Fraction(p["mean"])
        delta = abs(mean - mu)
        assert sum((mean - x) ** 2 for x in exact) == s_exact + m * delta**2
        assert delta <= Fraction(101, 100) * m * U * big
        g = gamma(m + 2)
        assert abs(Fraction(p["sq"]) - s_exact) <= g * s_exact + (1 + g) * m * delta**2
        assert g * s_exact <= (m + 3) * U * Fraction(p["sq"])  # the step from (5) to (6)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=windows(), sigma=st.sampled_from([0.0, 0.5, 1.0, 3.0, 7.5]))
def test_bounds_of_two_orders_differ_by_less_than_a_quarter_of_tol(case, sigma):
    """(8): tol is at least four times the distance between two orders' bounds.

    Every summation order is compared with the sorted one, the literal reference's
    (Wirth selection order) included.
    """
    values, rng = case
    ranked = sorted(values)
    s = pass_of(ranked, sigma)  # the sort-once computation
    big = max(abs(ranked[0]), abs(ranked[-1]))
    tol = Fraction(_ckernels.tolerance(len(values), s["sq"], big, s["med"], s["std"], sigma))
    literal = clip_lane_bounds(np.array(values), sigma, 1)  # the reference's first pass
    others = [pass_of(order, sigma) for order in orders(values, rng)]
    others.append(dict(lo=literal[0], hi=literal[1]))
    for other in others:
        for key in ("lo", "hi"):
            assert 4 * abs(Fraction(other[key]) - Fraction(s[key])) <= tol


def _one_lane_tile(lane):
    sci = np.asarray(lane, np.float32).reshape(-1, 1, 1)
    return sci, np.ones_like(sci), np.zeros(sci.shape, np.uint32), np.ones(len(lane), bool)


@pytest.mark.parametrize("lane, bound", [([0, 0, 2, 2], (0, 2)), ([0, 0, 0, 4, 4, 4], (0, 4)),
                                         ([-3, -3, 5, 5], (-3, 5))])
def test_samples_exactly_on_a_bound_are_recomputed(lane, bound):
    """Integer lanes whose bounds (σ = 1) are exactly samples: never decided by sort-once."""
    m = len(lane)
    mu = Fraction(sum(lane), m)
    variance = sum((Fraction(x) - mu) ** 2 for x in lane) / m
    std = Fraction(math.isqrt(variance.numerator), math.isqrt(variance.denominator))
    assert std**2 == variance  # a rational scale: the bounds are exact
    ranked = sorted(lane)
    med = Fraction(ranked[m // 2] + ranked[m // 2 - 1], 2)
    assert (med - std, med + std) == tuple(map(Fraction, bound))
    assert clip_lane_bounds(np.array(lane, float), 1.0, 1) == tuple(map(float, bound))
    tile = _one_lane_tile(lane)
    assert literal_pixel_count(*tile, 1.0, -1, rateints=False) == 1
    expected = combine_tile_reference(*tile, 1.0, -1, rateints=False)
    for got, exp in zip(combine_tile(*tile, 1.0, -1, rateints=False), expected):
        assert got.tobytes() == exp.tobytes()


def test_sample_one_float32_step_from_a_bound_is_recomputed():
    """A sample one float32 step from an exact bound is recomputed, with the same bits.

    [0, 0, 2, 2] has the exact lower bound 0 (σ = 1); moving one 0 up by the smallest
    float32 step leaves that sample within the margin.
    """
    tiny = float(np.nextafter(np.float32(0), np.float32(1)))
    lane = [tiny, 0.0, 2.0, 2.0]
    p = pass_of(sorted(lane), 1.0)
    tol = _ckernels.tolerance(4, p["sq"], 2.0, p["med"], p["std"], 1.0)
    assert 0 < abs(Fraction(tiny) - Fraction(p["lo"])) <= Fraction(tol)
    tile = _one_lane_tile(lane)
    assert literal_pixel_count(*tile, 1.0, -1, rateints=False) == 1
    expected = combine_tile_reference(*tile, 1.0, -1, rateints=False)
    for got, exp in zip(combine_tile(*tile, 1.0, -1, rateints=False), expected):
        assert got.tobytes() == exp.tobytes()
