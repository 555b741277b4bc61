"""Tests of the tile-combination kernels: spec oracles I1-I10, R1-R4, properties, threads."""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import daskbkg.kernels as K
from daskbkg.kernels import BLOCK, combine_tile, combine_tile_literal, combine_tile_reference
from daskbkg.options import normalize_maxiters

F32 = np.float32
KERNELS = [
    pytest.param(combine_tile_reference, id="reference"),
    pytest.param(combine_tile_literal, id="literal"),
    pytest.param(combine_tile, id="compiled"),
]
COMPILED = [
    pytest.param(combine_tile_literal, id="literal"),
    pytest.param(combine_tile, id="compiled"),
]


def planes(values, shape, dtype=np.float32):
    """Stack of constant planes: values[k] (scalar or per-integration sequence) on ``shape``."""
    arr = np.asarray(values, dtype=dtype)
    return np.broadcast_to(arr.reshape(arr.shape + (1,) * len(shape)), arr.shape + shape).copy()


def run(kernel, sci, err, dq, overlaps=None, sigma=3.0, maxiters=None, rateints=False, **kw):
    """Call ``kernel`` with maxiters normalised and all backgrounds overlapping by default."""
    if overlaps is None:
        overlaps = np.ones(np.shape(sci)[0], dtype=bool)
    pass_limit = normalize_maxiters(maxiters)
    return kernel(sci, err, dq, overlaps, sigma, pass_limit, rateints=rateints, **kw)


def i1_stack(shape=(4, 5)):
    """Background stack of oracle I1."""
    sci = planes([10, 11, 12, 13, 14], shape)
    err = planes([0.5, 1.0, 1.5, 2.0, 2.5], shape)
    dq = planes([1, 2, 4, 8, 16], shape, np.uint32)
    return sci, err, dq


# ----------------------------------------------------------------------------- rate oracles


@pytest.mark.parametrize("kernel", KERNELS)
def test_i1(kernel):
    """I1: plain mean, ERR from float32 squares, DQ OR, output dtypes."""
    sci_bk, err_bk, dq_bk, n_good = run(kernel, *i1_stack())
    assert sci_bk.dtype == np.float32 and err_bk.dtype == np.float32
    assert dq_bk.dtype == np.uint32 and n_good.dtype == np.int32
    assert sci_bk.shape == (4, 5)
    assert (sci_bk == F32(12.0)).all()
    assert (err_bk == F32(np.sqrt(13.75) / 5)).all() and (err_bk == F32("0.7416198")).all()
    assert (dq_bk == 31).all() and (n_good == 5).all()
    assert (F32(100) - sci_bk == F32(88.0)).all()


@pytest.mark.parametrize("kernel", KERNELS)
def test_i2_i3(kernel):
    """I2 (N = 5 cannot reject an outlier) and I3 (NaN sample dropped)."""
    sci, err, dq = i1_stack()
    sci[4, 1, 2] = 1000  # I2
    sci[0, 2, 3] = np.nan  # I3
    sci_bk, err_bk, dq_bk, n_good = run(kernel, sci, err, dq)
    assert sci_bk[1, 2] == F32("209.2") and n_good[1, 2] == 5
    assert sci_bk[2, 3] == F32(12.5)
    assert err_bk[2, 3] == F32(np.sqrt(13.5) / 4) == F32("0.91855866")
    assert n_good[2, 3] == 4 and dq_bk[2, 3] == 31
    assert sci_bk[0, 0] == F32(12.0)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("n, expected", [(3, "340.0"), (5, "208.0"), (7, "151.42857"), (8, "10.0")])
def test_i4(kernel, n, expected):
    """I4: a single outlier is rejected only from N = 8 on."""
    sci = planes([10] * (n - 1) + [1000], (2, 2))
    sci_bk, _, _, n_good = run(kernel, sci, np.ones_like(sci), np.zeros(sci.shape, np.uint32))
    assert (sci_bk == F32(expected)).all()
    assert (n_good == (n - 1 if n == 8 else n)).all()


@pytest.mark.parametrize("kernel", KERNELS)
def test_i5(kernel):
    """I5: one background, ERR through the float32 square."""
    e = F32(0.1)
    sci_bk, err_bk, _, _ = run(kernel, planes([5], (3, 3)), planes([e], (3, 3)),
                               np.zeros((1, 3, 3), np.uint32))
    assert (sci_bk == F32(5.0)).all()
    assert (err_bk == F32(np.sqrt(np.float64(F32(e * e))))).all() and (err_bk == F32("0.1")).all()


I6_CASES = [
    # (maxiters, policy, sci_bk, err_bk, n_good)
    (None, "keep", 5.0, 2.5, 2), (0, "keep", 5.0, 2.5, 2), (-1, "keep", 5.0, 2.5, 2),
    (2, "keep", 5.0, 2.5, 2), (3, "keep", 5.0, 2.5, 2),
    (1, "keep", 0.0, 0.0, 0), (-3, "keep", 0.0, 0.0, 0),
] + [(m, "reject", 0.0, 0.0, 0) for m in (None, 0, -1, 1, 2, 3, -3)]


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("maxiters, policy, exp_sci, exp_err, exp_n", I6_CASES)
def test_i6(kernel, maxiters, policy, exp_sci, exp_err, exp_n):
    """I6: N = 2, sigma 0.5, every maxiters spelling, both policies and no_valid values."""
    sci, err = planes([0, 10], (1, 1)), planes([3, 4], (1, 1))
    dq = planes([2, 1], (1, 1), np.uint32)
    sci_bk, err_bk, dq_bk, n_good = run(kernel, sci, err, dq, sigma=0.5, maxiters=maxiters,
                                        all_rejected=policy)
    assert sci_bk[0, 0] == F32(exp_sci) and err_bk[0, 0] == F32(exp_err)
    assert dq_bk[0, 0] == 3 and n_good[0, 0] == exp_n
    assert F32(100) - sci_bk[0, 0] == F32(100 - exp_sci)
    nan_sci, nan_err, _, _ = run(kernel, sci, err, dq, sigma=0.5, maxiters=maxiters,
                                 all_rejected=policy, no_valid="nan")
    if exp_n == 0:
        assert np.isnan(nan_sci[0, 0]) and nan_err[0, 0] == 0.0
    else:
        assert nan_sci[0, 0] == F32(exp_sci)


@pytest.mark.parametrize("kernel", KERNELS)
def test_i7(kernel):
    """I7: no valid background gives 0 (or NaN with no_valid='nan') and ERR 0."""
    sci = planes([5, 7], (2, 3))
    sci[:, 0, 0] = np.nan
    args = (sci, np.ones_like(sci), np.zeros(sci.shape, np.uint32))
    sci_bk, err_bk, _, n_good = run(kernel, *args)
    assert sci_bk[0, 0] == 0.0 and err_bk[0, 0] == 0.0 and n_good[0, 0] == 0
    assert (sci_bk.ravel()[1:] == F32(6.0)).all()
    assert (err_bk.ravel()[1:] == F32("0.70710677")).all()
    nan_sci, nan_err, _, _ = run(kernel, *args, no_valid="nan")
    assert np.isnan(nan_sci[0, 0]) and nan_err[0, 0] == 0.0
    assert (nan_sci.ravel()[1:] == F32(6.0)).all()


@pytest.mark.parametrize("kernel", KERNELS)
def test_i8_i9(kernel):
    """I8/I9: NaN and inf ERR of a kept sample propagate; an inf SCI sample is dropped."""
    sci, err = planes([5, 7], (2, 2)), planes([1, 1], (2, 2))
    err[0, 0, 0] = np.nan
    sci[0, 1, 1] = np.inf
    sci_bk, err_bk, _, _ = run(kernel, sci, err, np.zeros(sci.shape, np.uint32))
    assert sci_bk.tolist() == [[6, 6], [6, 7]]
    assert np.isnan(err_bk[0, 0])
    assert err_bk[0, 1] == err_bk[1, 0] == F32("0.70710677") and err_bk[1, 1] == F32(1.0)
    err9 = planes([np.inf, 1], (1, 1))
    sci_bk, err_bk, _, _ = run(kernel, planes([5, 7], (1, 1)), err9, np.zeros((2, 1, 1), np.uint32))
    assert sci_bk[0, 0] == F32(6.0) and err_bk[0, 0] == np.inf


@pytest.mark.parametrize("kernel", KERNELS)
def test_i10(kernel):
    """I10: float64 cross-exposure sum of float32 values."""
    vals = np.array([0.1, 0.2, 0.4], np.float32)
    sci_bk, _, _, _ = run(kernel, planes(vals, (2, 2)), planes([1, 1, 1], (2, 2)),
                          np.zeros((3, 2, 2), np.uint32))
    assert (sci_bk == F32("0.23333333")).all()
    assert (sci_bk == F32(vals.astype(np.float64).sum() / 3)).all()


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("rateints", [False, True])
def test_non_overlapping_backgrounds(kernel, rateints):
    """Non-overlapping backgrounds add NaN planes and no DQ (algorithm page A.7, G3)."""
    shape = (4, 4) if not rateints else (2, 4, 4)
    sci = planes([10, 10, 999], shape)
    dq = planes([1, 2, 4], shape, np.uint32)
    overlaps = np.array([True, True, False])
    sci_bk, err_bk, dq_bk, n_good = run(kernel, sci, np.ones_like(sci), dq, overlaps,
                                        rateints=rateints)
    # The NaN plane goes straight into the cross-exposure stack (not 0 via intmean).
    assert (sci_bk == F32(10.0)).all() and (err_bk == F32("0.70710677")).all()
    assert (dq_bk == 3).all() and (n_good == 2).all()
    none = run(kernel, sci, np.ones_like(sci), dq, np.zeros(3, bool), rateints=rateints)
    assert (none[0] == 0).all() and (none[1] == 0).all() and (none[2] == 0).all()  # G3
    assert (none[3] == 0).all()


# ----------------------------------------------------------------------------- rateints oracles


def r1_stack():
    """Background stack of oracle R1."""
    sci = np.stack([planes([1, 2, 30], (2, 2)), planes([5, 6, 7], (2, 2))])
    err = np.stack([planes([1, 2, 3], (2, 2)), planes([2, 2, 2], (2, 2))])
    dq = np.stack([planes([1, 0, 4], (2, 2), np.uint32), planes([0, 8, 0], (2, 2), np.uint32)])
    return sci, err, dq


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("sigma, exp_sci, exp_err", [
    (3.0, F32(8.5), F32(np.sqrt(14 / 3 + 4) / 2)),
    (1.0, F32(3.75), F32("1.2747549")),
])
def test_r1(kernel, sigma, exp_sci, exp_err):
    """R1: independent SCI and ERR² clips over integrations, DQ of all integrations."""
    sci_bk, err_bk, dq_bk, n_good = run(kernel, *r1_stack(), sigma=sigma, rateints=True)
    assert sci_bk.shape == (2, 2)
    assert (sci_bk == exp_sci).all() and (err_bk == exp_err).all()
    assert (dq_bk == 13).all() and (n_good == 2).all()
    assert (F32(100) - sci_bk == F32(100) - exp_sci).all()
    if sigma == 3.0:
        assert (err_bk == F32("1.4719602")).all() and (F32(100) - sci_bk == F32(91.5)).all()


@pytest.mark.parametrize("kernel", KERNELS)
def test_r2(kernel):
    """R2: float32 accumulation of the integration mean."""
    sci = planes([0.1, 0.2, 0.4], (2, 2))[None]
    sci_bk, _, _, _ = run(kernel, sci, np.ones_like(sci), np.zeros(sci.shape, np.uint32),
                          rateints=True)
    assert (sci_bk == F32("0.23333335")).all() and F32("0.23333335") != F32("0.23333333")


@pytest.mark.parametrize("kernel", KERNELS)
def test_r3(kernel):
    """R3: the ERR² clip and the SCI clip drop different integrations."""
    sci, err = planes([1, 2, 30], (1, 2))[None], planes([3, 1, 1], (1, 2))[None]
    sci_bk, err_bk, _, _ = run(kernel, sci, err, np.zeros(sci.shape, np.uint32), sigma=1.0,
                               rateints=True)
    assert (sci_bk == F32(1.5)).all() and (err_bk == F32(1.0)).all()


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("empty_lane, exp_sci, exp_err", [
    ("zero", F32("6.6666665"), F32("0.57735026")),
    ("nan", F32(10.0), F32("0.70710677")),
])
def test_r4(kernel, empty_lane, exp_sci, exp_err):
    """R4: an empty integration lane gives 0.0 (quirk) or NaN."""
    sci = np.full((3, 2, 2, 2), 10, np.float32)
    sci[2, :, 0, 0] = np.nan
    sci_bk, err_bk, _, n_good = run(kernel, sci, np.ones_like(sci), np.zeros(sci.shape, np.uint32),
                                    rateints=True, empty_lane=empty_lane)
    assert sci_bk[0, 0] == exp_sci and err_bk[0, 0] == exp_err
    assert n_good[0, 0] == (3 if empty_lane == "zero" else 2)
    assert (sci_bk.ravel()[1:] == F32(10.0)).all()
    assert (err_bk.ravel()[1:] == F32(np.sqrt(3) / 3)).all()


# ----------------------------------------------------------------------------- edge cases


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("no_valid", ["zero", "nan"])
def test_no_backgrounds_and_no_integrations(kernel, no_valid):
    """N == 0 and T == 0 do not fail and follow the empty rules."""
    for shape, rateints in (((0, 2, 3), False), ((0, 4, 2, 3), True)):
        out = run(kernel, np.zeros(shape, F32), np.zeros(shape, F32), np.zeros(shape, np.uint32),
                  rateints=rateints, no_valid=no_valid)
        assert [o.shape for o in out] == [(2, 3)] * 4
        assert (np.isnan(out[0]) if no_valid == "nan" else out[0] == 0).all()
        assert (out[1] == 0).all() and (out[2] == 0).all() and (out[3] == 0).all()
    # T == 0: every integration mean is an empty lane.
    shape = (2, 0, 2, 3)
    zeros = (np.zeros(shape, F32), np.zeros(shape, F32), np.zeros(shape, np.uint32))
    sci_bk, _, _, n_good = run(kernel, *zeros, rateints=True, no_valid=no_valid)
    assert (sci_bk == 0).all() and (n_good == 2).all()
    _, _, _, n_good = run(kernel, *zeros, rateints=True, empty_lane="nan")
    assert (n_good == 0).all()


@pytest.mark.parametrize("kernel", KERNELS)
def test_argument_validation(kernel):
    """Invalid pass limits, policies, shapes and sigma are refused."""
    sci, err, dq = i1_stack()
    with pytest.raises(ValueError):
        run(kernel, sci, err[:4], dq)
    with pytest.raises(ValueError):
        run(kernel, sci, err, dq, overlaps=np.ones(4, bool))
    with pytest.raises(ValueError):
        run(kernel, sci, err, dq, all_rejected="all")
    with pytest.raises(ValueError):
        run(kernel, sci, err, dq, empty_lane="none")
    with pytest.raises(ValueError):
        run(kernel, sci, err, dq, no_valid="none")
    with pytest.raises(ValueError):
        kernel(sci, err, dq, np.ones(5, bool), 3.0, 0, rateints=False)
    with pytest.raises(TypeError):
        run(kernel, sci, err, dq.astype(np.float32))


def test_default_kernel_is_the_extension():
    """combine_tile is the C extension's kernel, loaded from the package itself."""
    from pathlib import Path

    from daskbkg.kernels import _ckernels, compiled

    assert K.combine_tile is compiled.combine_tile
    path = Path(_ckernels.__file__)
    assert path.parent == Path(K.__file__).parent and path.suffix in (".so", ".pyd")
    assert K.BLOCK == _ckernels.BLOCK == 256


# ----------------------------------------------------------------------------- properties

# Raise for a soak run, e.g. DASKBKG_HYPOTHESIS_EXAMPLES=5000.
EXAMPLES = int(os.environ.get("DASKBKG_HYPOTHESIS_EXAMPLES", "200"))

SIGMAS = st.one_of(
    st.sampled_from([0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 5.0]),
    st.floats(0.0, 8.0, allow_nan=False),
)
MAXITERS = st.sampled_from([None, 0, -1, 1, 2, 3, -3])
SPECIAL = np.array([0.0, -0.0, 1.0, 10.0, 1000.0, -7.5, np.nan, np.inf, -np.inf, 3e38, -3e38,
                    1e-45, 0.1], np.float32)
ERR_SPECIAL = np.array([0.0, np.nan, np.inf, 1e-30, 3e20, 0.1], np.float32)


@st.composite
def tiles(draw, rateints, min_pixels=1, max_n=12, widths=None):
    """Random background tiles: clustered values, ties, constant lanes, NaN/inf, outliers.

    ``widths``: a strategy for the number of pixels of a one-row tile (default: small
    tiles of 1 to 3 rows and columns).
    """
    n = draw(st.integers(1, max_n))
    if widths is None:
        ty = draw(st.integers(1, 3))
        tx = draw(st.integers(-(-min_pixels // ty), 3))  # at least min_pixels pixels
    else:
        ty, tx = 1, draw(widths)
    shape = (n, draw(st.integers(1, 5)), ty, tx) if rateints else (n, ty, tx)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    centre = draw(st.sampled_from([0.0, 10.0]))
    sci = rng.normal(centre, draw(st.sampled_from([0.0, 1e-3, 1.0, 50.0])), shape)
    decimals = draw(st.sampled_from([0, 1, 3, None]))
    if decimals is not None:
        sci = np.round(sci, decimals)
    if draw(st.booleans()):  # constant lanes along the background axis
        sci[:] = sci[:1]
    sci = sci.astype(np.float32)
    special = rng.random(shape) < draw(st.sampled_from([0.0, 0.1, 0.4]))
    sci[special] = rng.choice(SPECIAL, special.sum())
    err = np.abs(rng.normal(1.0, 0.5, shape)).astype(np.float32)
    special = rng.random(shape) < draw(st.sampled_from([0.0, 0.1, 0.3]))
    err[special] = rng.choice(ERR_SPECIAL, special.sum())
    dq = np.where(rng.random(shape) < 0.3, rng.integers(0, 2**32, shape), 0).astype(np.uint32)
    if rateints and draw(st.booleans()):  # NaN-padded integrations of a shorter background
        k, t0 = rng.integers(n), rng.integers(shape[1])
        sci[k, t0:], err[k, t0:], dq[k, t0:] = np.nan, np.nan, 0
    overlaps = rng.random(n) < draw(st.sampled_from([1.0, 0.7, 0.3]))
    return sci, err, dq, overlaps


def assert_bitwise_equal(got, expected):
    """Assert equal dtypes, shapes and bits (float32 compared as uint32)."""
    for g, e in zip(got, expected):
        assert g.dtype == e.dtype and g.shape == e.shape
        assert np.array_equal(g.view(np.uint32) if g.dtype == np.float32 else g,
                              e.view(np.uint32) if e.dtype == np.float32 else e)
        if g.dtype == np.float32:
            assert np.array_equal(g, e, equal_nan=True)


OPTIONS = dict(
    sigma=SIGMAS, maxiters=MAXITERS, all_rejected=st.sampled_from(["keep", "reject"]),
    empty_lane=st.sampled_from(["zero", "nan"]), no_valid=st.sampled_from(["zero", "nan"]),
    scale=st.sampled_from(["std", "mad_std"]),
)


@pytest.mark.parametrize("kernel", COMPILED)
@pytest.mark.parametrize("rateints", [False, True], ids=["rate", "rateints"])
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), **OPTIONS)
def test_compiled_equals_reference(kernel, rateints, data, sigma, maxiters, all_rejected,
                                   empty_lane, no_valid, scale):
    """Each compiled path equals the reference bit for bit for every option and scale."""
    sci, err, dq, overlaps = data.draw(tiles(rateints))
    args = (sci, err, dq, overlaps, sigma, normalize_maxiters(maxiters))
    kw = dict(rateints=rateints, all_rejected=all_rejected, empty_lane=empty_lane,
              no_valid=no_valid, scale=scale)
    assert_bitwise_equal(kernel(*args, **kw), combine_tile_reference(*args, **kw))


#: Tile widths around the compiled kernel's block of lanes (whole blocks and tails).
WIDTHS = st.sampled_from([BLOCK - 1, BLOCK, BLOCK + 1, 2 * BLOCK, 2 * BLOCK + 37])


@pytest.mark.parametrize("rateints", [False, True], ids=["rate", "rateints"])
@settings(max_examples=max(EXAMPLES // 20, 4), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data(), **OPTIONS)
def test_wide_deep_tiles_equal_reference(rateints, data, sigma, maxiters, all_rejected,
                                         empty_lane, no_valid, scale):
    """Stacks of up to 100 backgrounds over whole and partial blocks: the same bits."""
    sci, err, dq, overlaps = data.draw(tiles(rateints, max_n=40 if rateints else 100,
                                             widths=WIDTHS))
    args = (sci, err, dq, overlaps, sigma, normalize_maxiters(maxiters))
    kw = dict(rateints=rateints, all_rejected=all_rejected, empty_lane=empty_lane,
              no_valid=no_valid, scale=scale)
    assert_bitwise_equal(combine_tile(*args, **kw), combine_tile_reference(*args, **kw))


def _astropy_mask(stack, sigma, maxiters):
    from astropy.stats import sigma_clip

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clipped = sigma_clip(stack, sigma=sigma, maxiters=maxiters, axis=0)
    return np.ma.getmaskarray(clipped) | ~np.isfinite(stack)


def numpy_astropy_oracle(sci, err, overlaps, sigma, maxiters, rateints):
    """Compute the reference's result with NumPy masked arrays and astropy 8's sigma_clip."""
    n = sci.shape[0]
    d_planes = np.full((n,) + sci.shape[-2:], np.nan)
    e_planes = np.full((n,) + sci.shape[-2:], np.nan)
    with np.errstate(all="ignore"):
        for k in np.flatnonzero(overlaps):
            if not rateints:
                d_planes[k], e_planes[k] = sci[k], err[k] * err[k]
                continue
            for plane, src in ((d_planes, sci[k]), (e_planes, err[k] * err[k])):
                int_mask = _astropy_mask(src, sigma, maxiters)
                mean = np.ma.masked_array(src, int_mask).mean(axis=0)
                assert mean.dtype == np.float64  # float32 sum, float64 division
                plane[k] = np.where(int_mask.all(axis=0), 0.0, np.ma.getdata(mean))
        mask = _astropy_mask(d_planes, sigma, maxiters)
        count = (~mask).sum(axis=0)
        sci_bk = np.ma.getdata(np.ma.masked_array(d_planes, mask).mean(axis=0))
        var_sum = np.ma.masked_array(e_planes, mask).filled(0.0).sum(axis=0)
        err_bk = np.sqrt(var_sum) / count
    sci_bk = np.where(count > 0, sci_bk, 0.0).astype(np.float32)
    err_bk = np.where(count > 0, err_bk, 0.0).astype(np.float32)
    return sci_bk, err_bk, count.astype(np.int32)


@pytest.mark.parametrize("rateints", [False, True], ids=["rate", "rateints"])
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), sigma=SIGMAS, maxiters=MAXITERS)
def test_matches_numpy_astropy8_pipeline(rateints, data, sigma, maxiters):
    """SCI_bk/ERR_bk equal np.ma.mean over astropy-8-clipped stacks (``all_rejected="reject"``).

    Tiles have at least 2 pixels: NumPy sums a reduction over the outer axis plane by plane
    (ascending k), but for a one-pixel image it would use pairwise summation when N >= 9.
    """
    sci, err, dq, overlaps = data.draw(tiles(rateints, min_pixels=2))
    expected = numpy_astropy_oracle(sci, err, overlaps, sigma, maxiters, rateints)
    for kernel in (combine_tile_reference, combine_tile_literal, combine_tile):
        pass_limit = normalize_maxiters(maxiters)
        sci_bk, err_bk, _, n_good = kernel(sci, err, dq, overlaps, sigma, pass_limit,
                                           rateints=rateints, all_rejected="reject")
        assert_bitwise_equal((sci_bk, err_bk, n_good), expected)


# ----------------------------------------------------------------------------- layout, threads


def _random_tile(seed, shape):
    rng = np.random.default_rng(seed)
    sci = rng.normal(10.0, 1.0, shape).astype(np.float32)
    sci[rng.random(shape) < 0.02] = 1000.0
    sci[rng.random(shape) < 0.02] = np.nan
    err = np.abs(rng.normal(1.0, 0.2, shape)).astype(np.float32)
    flagged = rng.random(shape) < 0.05
    dq = np.where(flagged, rng.integers(1, 2**32, shape), 0).astype(np.uint32)
    return sci, err, dq, rng.random(shape[0]) < 0.9


@pytest.mark.parametrize("kernel", COMPILED)
@pytest.mark.parametrize("rateints", [False, True], ids=["rate", "rateints"])
def test_compiled_kernel_thread_safe(kernel, rateints):
    """The compiled kernel on 8 threads gives the serial results (and the reference's)."""
    shape = (9, 3, 48, 40) if rateints else (9, 64, 48)
    tiles_in = [_random_tile(seed, shape) for seed in range(16)]

    def work(tile):
        return kernel(*tile, 2.5, normalize_maxiters(None), rateints=rateints)

    serial = [work(tile) for tile in tiles_in]
    with ThreadPoolExecutor(max_workers=8) as pool:
        threaded = list(pool.map(work, tiles_in))
    for got, expected in zip(threaded, serial):
        assert_bitwise_equal(got, expected)
    assert_bitwise_equal(serial[0], combine_tile_reference(*tiles_in[0], 2.5, -1,
                                                           rateints=rateints))


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("rateints", [False, True], ids=["rate", "rateints"])
def test_byte_order_and_layout(kernel, rateints):
    """Big-endian, strided, Fortran-ordered and float64 inputs give the same bits."""
    shape = (5, 2, 6, 7) if rateints else (5, 6, 7)
    sci, err, dq, overlaps = _random_tile(3, shape)
    expected = kernel(sci, err, dq, overlaps, 3.0, -1, rateints=rateints)
    big = kernel(sci.astype(">f4"), err.astype(">f4"), dq.astype(">u4"), overlaps, 3.0, -1,
                 rateints=rateints)
    assert_bitwise_equal(big, expected)
    # Non-contiguous views: every other column of a wider array, and Fortran order.
    wide = [np.repeat(a, 2, axis=-1) for a in (sci, err, dq)]
    strided = kernel(*(a[..., ::2] for a in wide), overlaps, 3.0, -1, rateints=rateints)
    assert not wide[0][..., ::2].flags.c_contiguous
    assert_bitwise_equal(strided, expected)
    fortran = kernel(*(np.asfortranarray(a) for a in (sci, err, dq)), overlaps.tolist(), 3.0, -1,
                     rateints=rateints)
    assert_bitwise_equal(fortran, expected)
    # float64 input is rounded to float32 first (as the reference's data models do).
    f64 = kernel(sci.astype(np.float64), err.astype(np.float64), dq.astype(np.int64), overlaps, 3.0,
                 -1, rateints=rateints)
    assert_bitwise_equal(f64, expected)
