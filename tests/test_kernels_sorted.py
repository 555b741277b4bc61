"""The sort-once kernel: its sorting network, its exactness guard and its fallback."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daskbkg.kernels import combine_tile_reference, combine_tile_sorted
from daskbkg.kernels.workspace import network
from daskbkg.options import normalize_maxiters


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13, 32, 33, 64])
def test_network_sorts(n):
    """Applying the comparators sorts random lanes (including +inf padding)."""
    npad, pairs = network(n)
    assert npad >= n and npad & (npad - 1) == 0
    rng = np.random.default_rng(n)
    for _ in range(50):
        lane = np.full(npad, np.inf)
        lane[:n] = rng.normal(size=n)
        lane[rng.random(npad) < 0.1] = np.inf
        for i, j in pairs:
            if lane[j] < lane[i]:
                lane[i], lane[j] = lane[j], lane[i]
        assert np.all(np.diff(lane[np.isfinite(lane)]) >= 0)
        assert np.all(np.isinf(lane[np.isfinite(lane).sum():]))


def _bitwise(a, b):
    for x, y in zip(a, b):
        assert x.dtype == y.dtype
        if x.dtype == np.float32:
            assert np.array_equal(x.view(np.uint32), y.view(np.uint32))
        else:
            assert np.array_equal(x, y)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
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
        kw = dict(rateints=rateints, all_rejected=policy)
        _bitwise(combine_tile_sorted(*args, **kw), combine_tile_reference(*args, **kw))


def test_large_stack_with_outliers_matches_reference():
    """A realistic N=40 stack with sources and NaNs: identical bits."""
    rng = np.random.default_rng(7)
    shape = (40, 9, 130)
    sci = rng.normal(1.0, 0.01, shape).astype(np.float32)
    sci[rng.random(shape) < 0.02] *= 40
    sci[rng.random(shape) < 0.01] = np.nan
    sci[:, 0, 0] = 5.0  # a constant lane
    err = np.abs(rng.normal(0.01, 0.001, shape)).astype(np.float32)
    dq = rng.integers(0, 2**32, shape, dtype=np.uint64).astype(np.uint32)
    overlaps = np.ones(40, bool)
    args = (sci, err, dq, overlaps, 3.0, normalize_maxiters(None))
    _bitwise(combine_tile_sorted(*args, rateints=False), combine_tile_reference(*args, rateints=False))


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
@pytest.mark.parametrize("limit", [0, 10**9], ids=["compiled-fallback", "numpy-fallback"])
def test_uncertain_pixels_recomputed_by_either_literal_kernel(monkeypatch, rateints, limit):
    """Uncertain pixels are flagged and recomputed; both recompute routes give the bits."""
    from daskbkg.kernels import sort_once as blocked

    calls = []
    for name in ("combine_tile_reference", "combine_tile_fast"):
        original = getattr(blocked, name)

        def spy(sci, *args, _original=original, _name=name, **kwargs):
            calls.append((_name, sci.shape[-1]))
            return _original(sci, *args, **kwargs)

        monkeypatch.setattr(blocked, name, spy)
    monkeypatch.setattr(blocked, "REFERENCE_RECOMPUTE_LIMIT", limit)
    sci, err, dq, overlaps = _tie_stack(rateints)
    args = (sci, err, dq, overlaps, 1.0, normalize_maxiters(None))
    got = combine_tile_sorted(*args, rateints=rateints)
    expected_route = "combine_tile_fast" if limit == 0 else "combine_tile_reference"
    assert [name for name, _ in calls] == [expected_route]
    n_pixels = sci.shape[-1] * sci.shape[-2]
    assert 0 < calls[0][1] < n_pixels  # only some pixels, not the whole tile
    _bitwise(got, combine_tile_reference(*args, rateints=rateints))


@pytest.mark.parametrize("rateints", [False, True])
def test_smooth_data_needs_no_recompute(monkeypatch, rateints):
    """Continuous data decide every sample with certainty: no literal kernel runs."""
    from daskbkg.kernels import sort_once as blocked

    def forbidden(*args, **kwargs):
        raise AssertionError("a literal kernel was called")

    monkeypatch.setattr(blocked, "combine_tile_reference", forbidden)
    monkeypatch.setattr(blocked, "combine_tile_fast", forbidden)
    rng = np.random.default_rng(11)
    shape = (12, 5, 6, 70) if rateints else (12, 6, 70)
    sci = rng.normal(3.0, 0.2, shape).astype(np.float32)
    sci[rng.random(shape) < 0.03] += 40.0
    err = np.abs(rng.normal(0.2, 0.01, shape)).astype(np.float32)
    dq = np.zeros(shape, np.uint32)
    got = combine_tile_sorted(sci, err, dq, np.ones(12, bool), 3.0, -1, rateints=rateints)
    monkeypatch.undo()
    _bitwise(got, combine_tile_reference(sci, err, dq, np.ones(12, bool), 3.0, -1,
                                         rateints=rateints))


@pytest.mark.parametrize("value", [0.0, 0.1, 3.7e5])
def test_constant_window_after_a_pass_is_exact_without_recompute(monkeypatch, value):
    """Zero-filled or flat lanes with one outlier need no literal recompute.

    The surviving window is constant, its bounds equal its value exactly and every
    survivor sits on them. The kernel knows the bounds are exact (sums of identical
    values).
    """
    from daskbkg.kernels import sort_once as blocked

    def forbidden(*args, **kwargs):
        raise AssertionError("a literal kernel was called")

    n = 23
    sci = np.full((n, 3, 64), value, np.float32)
    sci[5] += 1000.0  # one outlier per lane
    sci[:, 1, :] += np.linspace(0, 1, 64, dtype=np.float32)  # other rows: constant too
    err = np.ones_like(sci)
    dq = np.zeros(sci.shape, np.uint32)
    args = (sci, err, dq, np.ones(n, bool), 3.0, -1)
    monkeypatch.setattr(blocked, "combine_tile_reference", forbidden)
    monkeypatch.setattr(blocked, "combine_tile_fast", forbidden)
    got = combine_tile_sorted(*args, rateints=False)
    monkeypatch.undo()
    expected = combine_tile_reference(*args, rateints=False)
    _bitwise(got, expected)
    assert np.all(expected[3] == n - 1)  # the outlier rejected, every other sample kept
