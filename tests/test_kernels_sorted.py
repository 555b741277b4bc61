"""The sort-once path of the compiled kernel: its exactness guard and its literal fallback.

:func:`daskbkg.kernels.compiled.literal_pixel_count` tells how many pixels of a tile the
extension recomputed with the literal (Wirth) algorithm because the sort-once path could
not decide them with certainty; every test also checks the bits against the reference.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daskbkg.kernels import combine_tile, combine_tile_reference
from daskbkg.kernels.compiled import literal_pixel_count
from daskbkg.options import normalize_maxiters


def _bitwise(a, b):
    for x, y in zip(a, b):
        assert x.dtype == y.dtype
        if x.dtype == np.float32:
            assert np.array_equal(x.view(np.uint32), y.view(np.uint32))
        else:
            assert np.array_equal(x, y)


def _check(args, expected_literal=None, **kw):
    """Compare with the reference; return how many pixels went the literal way."""
    _bitwise(combine_tile(*args, **kw), combine_tile_reference(*args, **kw))
    count = literal_pixel_count(*args, **kw)
    if expected_literal is not None:
        assert count == expected_literal
    return count


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 40),
    sigma=st.sampled_from([0.0, 0.5, 1.0, 1.5, 2.0, 3.0]),
    maxiters=st.sampled_from([None, 1, 2, -3]),
    seed=st.integers(0, 2**32 - 1),
    rateints=st.booleans(),
)
def test_ties_and_bound_hits_match_reference(n, sigma, maxiters, seed, rateints):
    """Small-integer data put samples exactly on clip bounds: the guard must fall back."""
    rng = np.random.default_rng(seed)
    shape = (n, 3, 4, 5) if rateints else (n, 6, 7)
    sci = rng.integers(0, 4, shape).astype(np.float32)
    sci[rng.random(shape) < 0.05] = 100.0
    sci[rng.random(shape) < 0.05] = np.nan
    err = rng.integers(1, 3, shape).astype(np.float32)
    dq = rng.integers(0, 3, shape).astype(np.uint32)
    overlaps = rng.random(n) < 0.9
    args = (sci, err, dq, overlaps, sigma, normalize_maxiters(maxiters))
    for policy in ("keep", "reject"):
        _check(args, rateints=rateints, all_rejected=policy)


def test_large_stack_with_outliers_matches_reference():
    """A realistic N=40 stack with sources and NaNs: identical bits, no literal pixel."""
    rng = np.random.default_rng(7)
    shape = (40, 9, 130)
    sci = rng.normal(1.0, 0.01, shape).astype(np.float32)
    sci[rng.random(shape) < 0.02] *= 40
    sci[rng.random(shape) < 0.01] = np.nan
    sci[:, 0, 0] = 5.0  # a constant lane
    err = np.abs(rng.normal(0.01, 0.001, shape)).astype(np.float32)
    dq = rng.integers(0, 2**32, shape, dtype=np.uint64).astype(np.uint32)
    args = (sci, err, dq, np.ones(40, bool), 3.0, normalize_maxiters(None))
    _check(args, 0, rateints=False)


def _tie_stack(rateints, seed=3):
    """Small-integer stacks: many samples sit exactly on a clip bound."""
    rng = np.random.default_rng(seed)
    shape = (9, 4, 8, 40) if rateints else (9, 8, 40)
    sci = rng.integers(0, 3, shape).astype(np.float32)
    sci[rng.random(shape) < 0.05] = 50.0
    err = rng.integers(1, 4, shape).astype(np.float32)
    dq = rng.integers(0, 5, shape).astype(np.uint32)
    return sci, err, dq, np.ones(shape[0], bool)


@pytest.mark.parametrize("rateints", [False, True])
def test_uncertain_pixels_recomputed_literally(rateints):
    """Pixels too close to call are recomputed (some, not all), with the reference's bits."""
    sci, err, dq, overlaps = _tie_stack(rateints)
    count = _check((sci, err, dq, overlaps, 1.0, -1), rateints=rateints)
    assert 0 < count < sci.shape[-1] * sci.shape[-2]


@pytest.mark.parametrize("rateints", [False, True])
def test_smooth_data_needs_no_recompute(rateints):
    """Continuous data decide every sample with certainty: no literal pixel."""
    rng = np.random.default_rng(11)
    shape = (12, 5, 6, 70) if rateints else (12, 6, 70)
    sci = rng.normal(3.0, 0.2, shape).astype(np.float32)
    sci[rng.random(shape) < 0.03] += 40.0
    err = np.abs(rng.normal(0.2, 0.01, shape)).astype(np.float32)
    dq = np.zeros(shape, np.uint32)
    _check((sci, err, dq, np.ones(12, bool), 3.0, -1), 0, rateints=rateints)


@pytest.mark.parametrize("value", [0.0, 0.1, 3.7e5])
def test_constant_window_after_a_pass_is_exact_without_recompute(value):
    """Zero-filled or flat lanes with one outlier need no literal recompute.

    The surviving window is constant, its bounds equal its value exactly and every
    survivor sits on them. The kernel knows the bounds are exact (sums of identical
    values).
    """
    n = 23
    sci = np.full((n, 3, 64), value, np.float32)
    sci[5] += 1000.0  # one outlier per lane
    sci[:, 1, :] += np.linspace(0, 1, 64, dtype=np.float32)  # other rows: constant too
    args = (sci, np.ones_like(sci), np.zeros(sci.shape, np.uint32), np.ones(n, bool), 3.0, -1)
    _check(args, 0, rateints=False)
    assert np.all(combine_tile(*args, rateints=False)[3] == n - 1)  # the outlier rejected


@pytest.mark.parametrize("sigma, scale", [(3.0, "mad_std"), (-1.0, "std"), (np.inf, "std")])
@pytest.mark.parametrize("rateints", [False, True])
def test_outside_the_sort_once_domain_everything_is_literal(sigma, scale, rateints):
    """MAD scale, negative or infinite sigma: every pixel by the literal algorithm."""
    sci, err, dq, overlaps = _tie_stack(rateints, seed=5)
    sci[0, ..., :3] = 7.0  # and some constant lanes
    sci[:, ..., :3] = 7.0
    n_pix = sci.shape[-1] * sci.shape[-2]
    _check((sci, err, dq, overlaps, sigma, -1), n_pix, rateints=rateints, scale=scale)


def test_empty_tile_and_empty_stack():
    """No pixel, and N = 0 backgrounds: valid calls with the reference's results."""
    for shape in ((3, 0, 5), (0, 4, 5)):
        sci = np.zeros(shape, np.float32)
        args = (sci, sci, np.zeros(shape, np.uint32), np.ones(shape[0], bool), 3.0, -1)
        _check(args, 0, rateints=False, no_valid="nan")
