"""Opt-in correction of the small-N clipping quirk: ``clip_scale="mad_std"``.

With the reference's scale (standard deviation about the mean) one outlier among N-1
equal values can be rejected at sigma 3 only when N >= 8. The MAD scale rejects it at any
N >= 3. The default stays the reference's behaviour.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import daskbkg
from daskbkg.kernels import (
    clip_lane_bounds,
    clip_lane_bounds_compiled,
    clip_lane_mask,
    combine_tile,
    combine_tile_literal,
    combine_tile_reference,
)
from daskbkg.options import normalize_maxiters
from tests.helpers import write


def test_single_outlier_oracle():
    lane = [10.0, 10.0, 10.0, 10.0, 1000.0]
    assert not clip_lane_mask(lane, 3.0, -1).any()  # reference: N = 5 cannot reject
    mask = clip_lane_mask(lane, 3.0, -1, scale="mad_std")
    assert mask.tolist() == [False, False, False, False, True]
    assert clip_lane_bounds(lane, 3.0, -1, scale="mad_std") == (10.0, 10.0)
    assert clip_lane_bounds_compiled(lane, 3.0, -1, scale="mad_std") == (10.0, 10.0)


def test_mad_value_oracle():
    """Median 3, absolute deviations (2, 1, 0, 1, 97) -> MAD 1 -> scale 1.482602218505602."""
    lo, hi = clip_lane_bounds([1.0, 2.0, 3.0, 4.0, 100.0], 2.0, 1, scale="mad_std")
    assert (lo, hi) == (3.0 - 2.0 * 1.482602218505602, 3.0 + 2.0 * 1.482602218505602)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 15),
    sigma=st.sampled_from([0.5, 1.0, 2.0, 3.0, 4.5]),
    maxiters=st.sampled_from([None, 1, 2, 3]),
    seed=st.integers(0, 2**32 - 1),
)
def test_mask_matches_astropy_mad_std(n, sigma, maxiters, seed):
    """The reference kernel's MAD clip equals astropy 8 ``sigma_clip(stdfunc="mad_std")``."""
    from astropy.stats import sigma_clip

    rng = np.random.default_rng(seed)
    stack = rng.normal(5.0, 1.0, (n, 6)).astype(np.float32)
    stack[rng.random(stack.shape) < 0.1] = 80.0
    stack[rng.random(stack.shape) < 0.05] = np.nan
    stack[:, 0] = 2.0  # a constant lane
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = np.ma.getmaskarray(sigma_clip(stack, sigma=sigma, maxiters=maxiters, axis=0,
                                                 stdfunc="mad_std")) | ~np.isfinite(stack)
    limit = normalize_maxiters(maxiters)
    for p in range(stack.shape[1]):
        got = clip_lane_mask(stack[:, p], sigma, limit, all_rejected="reject", scale="mad_std")
        assert got.tolist() == expected[:, p].tolist()


@pytest.mark.parametrize("rateints", [False, True])
def test_compiled_kernels_match_reference(rateints):
    rng = np.random.default_rng(3)
    shape = (5, 4, 6, 7) if rateints else (5, 6, 7)
    sci = rng.normal(10.0, 1.0, shape).astype(np.float32)
    sci[rng.random(shape) < 0.1] = 1000.0
    err = np.abs(rng.normal(1.0, 0.2, shape)).astype(np.float32)
    dq = rng.integers(0, 8, shape).astype(np.uint32)
    args = (sci, err, dq, np.ones(5, bool), 3.0, -1)
    expected = combine_tile_reference(*args, rateints=rateints, scale="mad_std")
    for kernel in (combine_tile_literal, combine_tile):
        got = kernel(*args, rateints=rateints, scale="mad_std")
        for g, e in zip(got, expected):
            assert g.tobytes() == e.tobytes()


def test_end_to_end_small_stack(tmp_path):
    """I4 with N = 3 (two backgrounds at 10, one at 1000): 340.0 by default, 10.0 with MAD."""
    shape = (3, 4)
    target = write(tmp_path, np.full(shape, 100.0))
    bkgs = [write(tmp_path, np.full(shape, v)) for v in (10.0, 10.0, 1000.0)]
    default = daskbkg.subtract_background(target, bkgs).compute()
    assert default.combined["SCI"][0, 0] == np.float32(340.0)
    fixed = daskbkg.subtract_background(target, bkgs, clip_scale="mad_std").compute()
    assert fixed.combined["SCI"][0, 0] == np.float32(10.0)
    assert fixed.sci[0, 0] == np.float32(90.0) and fixed.combined["NBKG"][0, 0] == 2
