"""Tests of the sigma-clip kernels against spec oracles C1-C16 and astropy 8."""

from __future__ import annotations

import math
import os
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daskbkg.kernels import clip_lane_bounds, clip_lane_bounds_compiled, clip_lane_mask, clip_mask
from daskbkg.options import UNLIMITED, normalize_maxiters

NAN = float("nan")
BOUNDS_FUNCS = [
    pytest.param(clip_lane_bounds, id="reference"),
    pytest.param(clip_lane_bounds_compiled, id="compiled"),
]

# (id, lane, sigma, maxiters values, policy, mask, (lo, hi), exact bounds?)
C_ORACLES = [
    ("C1", [1, 2, 3, 100], 1, (None, 0, -1), "keep", [1, 0, 1, 1], (2, 2), True),
    ("C1r", [1, 2, 3, 100], 1, (None, 0, -1), "reject", [1, 0, 1, 1], (2, 2), True),
    ("C2", [1, 2, 3, 100], 1, (1, -3), "keep", [0, 0, 0, 1], (-39.94113571, 44.94113571), False),
    ("C2r", [1, 2, 3, 100], 1, (1, -3), "reject", [0, 0, 0, 1], (-39.94113571, 44.94113571), False),
    ("C3", [1, 2, 3, 100], 1, (2,), "keep", [1, 0, 1, 1], (1.18350342, 2.81649658), False),
    ("C4", [1, 2, 4, 100], 1.5, (None,), "keep", [0, 0, 1, 1], (0.75, 2.25), True),
    ("C5", [0, 10], 0.5, (None, 0, -1), "keep", [0, 0], (NAN, NAN), True),
    ("C5r", [0, 10], 0.5, (None, 0, -1), "reject", [1, 1], (2.5, 7.5), True),
    ("C6", [0, 10], 0.5, (1, -3), "keep", [1, 1], (2.5, 7.5), True),
    ("C6r", [0, 10], 0.5, (1, -3), "reject", [1, 1], (2.5, 7.5), True),
    ("C7", [-0.01, 0.22, -0.39], 1, (None,), "keep", [0, 0, 0], (NAN, NAN), True),
    ("C7r", [-0.01, 0.22, -0.39], 1, (None,), "reject", [1, 1, 1],
     (-0.009999999999999995, 0.21999999999999997), True),
    ("C8", [1, 2, 3, 4], 0, (None,), "keep", [0, 0, 0, 0], (NAN, NAN), True),
    ("C9", [1, 2, 2, 3], 0, (None,), "keep", [1, 0, 0, 1], (2, 2), True),
    ("C10", [NAN, math.inf, 5, 6], 3, (None,), "keep", [1, 1, 0, 0], (4, 7), True),
    ("C11", [NAN, NAN], 3, (None,), "keep", [1, 1], (NAN, NAN), True),
    ("C11r", [NAN, NAN], 3, (None,), "reject", [1, 1], (NAN, NAN), True),
    ("C12", [5], 3, (None,), "keep", [0], (5, 5), True),
    ("C13", [1, 2, 3, 4, 100], 2, (None,), "keep", [0, 0, 0, 0, 1],
     (0.26393202, 4.73606798), False),
    ("C14", [1, 2, 3, 4, 100], 3, (None,), "keep", [0] * 5, (-114.03845522, 120.03845522), False),
    ("C15", [10] * 7 + [1000], 3, (None,), "keep", [0] * 7 + [1], (10, 10), True),
    ("C16", [10] * 6 + [1000], 3, (None,), "keep", [0] * 7, (-1029.28350515, 1049.28350515), False),
]


def _same_float(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def _check_bounds(got, expected, exact):
    for g, e in zip(got, expected):
        if math.isnan(e):
            assert math.isnan(g)
        elif exact:
            assert g == e
        else:
            assert abs(g - e) < 1e-8


@pytest.mark.parametrize("bounds_func", BOUNDS_FUNCS)
@pytest.mark.parametrize(
    "cid, lane, sigma, maxiters_list, policy, mask, bounds, exact",
    C_ORACLES, ids=[c[0] for c in C_ORACLES],
)
def test_clip_oracles(bounds_func, cid, lane, sigma, maxiters_list, policy, mask, bounds, exact):
    """Oracles C1-C16 (algorithm page A.9): bounds and mask, all maxiters spellings, both policies."""
    lane = np.array(lane, dtype=np.float64)
    for maxiters in maxiters_list:
        pass_limit = normalize_maxiters(maxiters)
        got = bounds_func(lane, sigma, pass_limit, policy)
        _check_bounds(got, bounds, exact)
        got_mask = clip_lane_mask(lane, sigma, pass_limit, policy)
        assert got_mask.dtype == bool
        assert got_mask.tolist() == [bool(m) for m in mask]


def test_c5_c7_keep_vs_reject_differ():
    """The policies differ exactly when a pass empties the buffer (algorithm page A.11)."""
    # The policies differ only when a pass empties the buffer before the pass limit.
    for lane, sigma in (([0, 10], 0.5), ([-0.01, 0.22, -0.39], 1), ([1, 2, 3, 4], 0)):
        keep = clip_lane_mask(np.array(lane), sigma, UNLIMITED, "keep")
        reject = clip_lane_mask(np.array(lane), sigma, UNLIMITED, "reject")
        assert not keep.any() and reject.all()


def test_float32_lane_is_converted_exactly():
    """Float32 lanes of either byte order give the bounds of their float64 copy."""
    lane32 = np.array([0.1, 0.2, 0.4, 7.0], dtype=np.float32)
    for func in (clip_lane_bounds, clip_lane_bounds_compiled):
        assert func(lane32, 1.0, UNLIMITED) == func(lane32.astype(np.float64), 1.0, UNLIMITED)
    big_endian = lane32.astype(">f4")
    assert clip_lane_bounds_compiled(big_endian, 1.0, 2) == clip_lane_bounds(lane32, 1.0, 2)


def test_final_bounds_reaccept_early_rejects():
    """The final bounds apply to every original sample (algorithm page A.9)."""
    # algorithm page A.9: the final bounds are applied to all original samples.
    lane = np.array([1, 2, 3, 100], dtype=np.float64)
    mask = clip_lane_mask(lane, 1, UNLIMITED)
    lo, hi = clip_lane_bounds(lane, 1, UNLIMITED)
    assert mask.tolist() == [bool(v < lo or v > hi) for v in lane]


def test_empty_lane():
    """An empty lane has NaN bounds and an empty mask."""
    for func in (clip_lane_bounds, clip_lane_bounds_compiled):
        lo, hi = func(np.array([], dtype=np.float32), 3.0, UNLIMITED)
        assert math.isnan(lo) and math.isnan(hi)
    assert clip_lane_mask(np.array([]), 3.0, UNLIMITED).shape == (0,)


def test_clip_mask_axis_and_shape():
    """clip_mask clips each lane along the given axis like clip_lane_mask."""
    rng = np.random.default_rng(1)
    stack = rng.normal(size=(9, 3, 4)).astype(np.float32)
    stack[8, 1, 2] = 1000
    mask0 = clip_mask(stack, 3.0, UNLIMITED)
    assert mask0.shape == stack.shape and mask0[8, 1, 2]
    mask2 = clip_mask(np.moveaxis(stack, 0, 2), 3.0, UNLIMITED, axis=2)
    assert np.array_equal(np.moveaxis(mask2, 2, 0), mask0)
    for y in range(3):
        for x in range(4):
            assert np.array_equal(mask0[:, y, x], clip_lane_mask(stack[:, y, x], 3.0, UNLIMITED))


@pytest.mark.parametrize("func", [clip_lane_bounds, clip_lane_bounds_compiled])
def test_argument_validation(func):
    """Invalid pass limits, policies, shapes and sigma are refused."""
    lane = np.array([1.0, 2.0])
    with pytest.raises(ValueError):
        func(lane, 3.0, 0)
    with pytest.raises(ValueError):
        func(lane, 3.0, -3)
    with pytest.raises(TypeError):
        func(lane, 3.0, None)
    with pytest.raises(ValueError):
        func(lane, 3.0, UNLIMITED, "drop")
    with pytest.raises(ValueError):
        func(np.ones((2, 2)), 3.0, UNLIMITED)
    with pytest.raises(ValueError):
        func(lane, NAN, UNLIMITED)


# ----------------------------------------------------------------------------- properties

# Raise for a soak run, e.g. DASKBKG_HYPOTHESIS_EXAMPLES=5000.
EXAMPLES = int(os.environ.get("DASKBKG_HYPOTHESIS_EXAMPLES", "200"))

SIGMAS = st.one_of(
    st.sampled_from([0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 5.0]),
    st.floats(0.0, 8.0, allow_nan=False),
)
MAXITERS = st.sampled_from([None, 0, -1, 1, 2, 3, -3])
SPECIAL = np.array(
    [0.0, -0.0, 1.0, 2.0, 10.0, 1000.0, -7.5, NAN, math.inf, -math.inf, 3e38, -3e38, 1e-45, 0.1]
)


@st.composite
def lanes(draw, max_n=12, float64_extremes=False):
    """Clustered values with ties, constant runs, non-finite samples and outliers."""
    n = draw(st.integers(0, max_n))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    scale = draw(st.sampled_from([0.0, 1e-3, 1.0, 50.0]))
    decimals = draw(st.sampled_from([0, 1, 3, None]))
    lane = rng.normal(draw(st.sampled_from([0.0, 10.0, -3.0])), scale, n)
    if decimals is not None:
        lane = np.round(lane, decimals)  # ties
    special = rng.random(n) < draw(st.sampled_from([0.0, 0.15, 0.5]))
    lane[special] = rng.choice(SPECIAL, special.sum())
    if float64_extremes and n and draw(st.booleans()):
        lane[rng.integers(n)] = rng.choice([1e308, -1e308, 1.7e308, 5e-324])
    return lane


def _astropy_clip(stack, sigma, maxiters):
    from astropy.stats import sigma_clip

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sigma_clip(stack, sigma=sigma, maxiters=maxiters, axis=0, return_bounds=True)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lane=lanes(float64_extremes=True), sigma=SIGMAS, maxiters=MAXITERS,
       policy=st.sampled_from(["keep", "reject"]), scale=st.sampled_from(["std", "mad_std"]))
def test_compiled_bounds_equal_reference(lane, sigma, maxiters, policy, scale):
    """The compiled literal clip's bounds equal the reference bounds bit for bit."""
    pass_limit = normalize_maxiters(maxiters)
    ref = clip_lane_bounds(lane, sigma, pass_limit, policy, scale)
    got = clip_lane_bounds_compiled(lane, sigma, pass_limit, policy, scale)
    assert np.array_equal(np.array(ref).view(np.uint64), np.array(got).view(np.uint64))
    with np.errstate(over="ignore"):
        f32 = lane.astype(np.float32)
    assert np.array_equal(
        np.array(clip_lane_bounds(f32, sigma, pass_limit, policy, scale)).view(np.uint64),
        np.array(clip_lane_bounds_compiled(f32, sigma, pass_limit, policy, scale)).view(np.uint64),
    )


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), sigma=SIGMAS, maxiters=MAXITERS, as_float32=st.booleans())
def test_reference_mask_matches_astropy8(data, sigma, maxiters, as_float32):
    """With ``all_rejected="reject"`` the kernel is astropy 8.0.2's sigma_clip, exactly."""
    n = data.draw(st.integers(1, 12))
    n_lanes = data.draw(st.integers(1, 4))
    cols = [data.draw(lanes(max_n=n, float64_extremes=True)) for _ in range(n_lanes)]
    stack = np.full((n, n_lanes), np.nan)
    for j, col in enumerate(cols):
        stack[: col.size, j] = col
    if as_float32:
        with np.errstate(over="ignore"):
            stack = stack.astype(np.float32)
    pass_limit = normalize_maxiters(maxiters)
    clipped, lo, hi = _astropy_clip(stack, sigma, maxiters)
    expected = np.ma.getmaskarray(clipped) | ~np.isfinite(stack)
    got = clip_mask(stack, sigma, pass_limit, "reject", axis=0)
    assert np.array_equal(got, expected)
    for j in range(n_lanes):
        bounds = clip_lane_bounds(stack[:, j], sigma, pass_limit, "reject")
        assert _same_float(bounds[0], float(lo[j])) and _same_float(bounds[1], float(hi[j]))


def test_astropy8_is_the_reject_policy_on_c5_c7():
    """Astropy 8.0.2 rejects everything on C5/C7, like the reject policy."""
    for lane, sigma in (([0.0, 10.0], 0.5), ([-0.01, 0.22, -0.39], 1.0)):
        clipped, lo, hi = _astropy_clip(np.array(lane)[:, None], sigma, None)
        assert np.ma.getmaskarray(clipped).all()
        expected = clip_lane_bounds(np.array(lane), sigma, UNLIMITED, "reject")
        assert (float(lo[0]), float(hi[0])) == expected
