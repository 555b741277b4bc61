"""Reference kernels: the sigma clip and the tile combination, literal to the algorithm page.

This module is the executable form of algorithm page A.7-A.13. It is written for clarity,
not speed (it loops over pixels in Python), and serves as the oracle against which the
compiled kernels (:mod:`daskbkg.kernels.compiled`) are tested bit for bit.

All clipping arithmetic is IEEE float64 on Python floats; float32 steps use NumPy
float32 scalars so that every intermediate is rounded exactly where the algorithm page says.
"""

from __future__ import annotations

import math

import numpy as np

from ..options import UNLIMITED
from ._common import (
    MODE_MAD,
    MODE_REJECT,
    check_pass_limit,
    check_sigma,
    clip_mode,
    parse_options,
    prepare_tile,
)

__all__ = ["clip_lane_bounds", "clip_lane_mask", "clip_mask", "combine_tile_reference"]

_NAN = float("nan")


# --------------------------------------------------------------------------- clipping


def _select(buf: list[float], n: int, k: int) -> float:
    """Wirth's k-th smallest of ``buf[0:n]``, reordering ``buf`` in place (algorithm page A.10)."""
    lo_idx = 0
    hi_idx = n - 1
    while lo_idx < hi_idx:
        pivot = buf[k]
        i = lo_idx
        j = hi_idx
        while True:
            while buf[i] < pivot:
                i += 1
            while pivot < buf[j]:
                j -= 1
            if i <= j:
                buf[i], buf[j] = buf[j], buf[i]
                i += 1
                j -= 1
            if i > j:
                break
        if j < k:
            lo_idx = i
        if k < i:
            hi_idx = j
    return buf[k]


def _median(buf: list[float], n: int) -> float:
    """Median of ``buf[0:n]`` by selection; even n selects k = n/2 first (algorithm page A.10)."""
    if n % 2 == 1:
        return _select(buf, n, (n - 1) // 2)
    upper = _select(buf, n, n // 2)
    lower = _select(buf, n, n // 2 - 1)
    return 0.5 * (upper + lower)


def _lane_as_float64(lane) -> np.ndarray:
    lane = np.asarray(lane)
    if lane.ndim != 1:
        raise ValueError(f"a lane must be one-dimensional, got shape {lane.shape}")
    if lane.dtype.kind not in "fiub":
        raise TypeError(f"a lane must be real numeric, not {lane.dtype}")
    return lane.astype(np.float64)


#: astropy's ``mad_std`` factor, 1 / Phi^-1(3/4).
MAD_FACTOR = 1.482602218505602


def _bounds_of_buffer(
    buf: list[float], sigma: float, pass_limit: int, reject: bool, mad: bool = False
) -> tuple[float, float]:
    """Run the pass loop of algorithm page A.9 on the finite values ``buf`` (modified in place).

    With ``mad`` the scale is ``MAD_FACTOR`` times the median absolute deviation from
    the median (option ``clip_scale="mad_std"``) instead of the standard deviation.
    """
    n = len(buf)
    passes = 0
    while True:
        if n == 0:
            return _NAN, _NAN
        med = _median(buf, n)
        if mad:
            deviations = [abs(buf[i] - med) for i in range(n)]
            std = _median(deviations, n) * MAD_FACTOR
        else:
            total = 0.0
            for i in range(n):
                total += buf[i]
            mean = total / n
            acc = 0.0
            for i in range(n):
                d = mean - buf[i]
                acc += d * d
            std = math.sqrt(acc / n)
        lo = med - sigma * std
        hi = med + sigma * std
        kept = 0
        for i in range(n):
            v = buf[i]
            if lo <= v and v <= hi:
                buf[kept] = v
                kept += 1
        if kept == n:  # converged: nothing removed
            return lo, hi
        if kept == 0 and reject:  # astropy >= 8: stop on an empty buffer
            return lo, hi
        n = kept
        passes += 1
        if pass_limit != UNLIMITED and passes >= pass_limit:
            return lo, hi


def clip_lane_bounds(lane, sigma: float, pass_limit: int, all_rejected: str = "keep",
                     scale: str = "std"):
    """Compute the final clipping bounds of one lane (algorithm page A.9-A.11).

    Parameters
    ----------
    lane : array_like, 1-D
        Samples in stack order, any real dtype (converted to float64, exactly for
        float16/float32/float64 data). Non-finite samples are ignored.
    sigma : float
        Clip threshold in standard deviations (both sides).
    pass_limit : int
        ``daskbkg.options.UNLIMITED`` (-1) or a positive number of passes; see
        :func:`daskbkg.options.normalize_maxiters`.
    all_rejected : {"keep", "reject"}
        When a pass rejects every remaining value before the pass limit: ``"keep"``
        (astropy 6, reference) continues to a pass with no data, whose bounds are NaN;
        ``"reject"`` (astropy 8) stops and keeps the bounds of the emptying pass.
    scale : {"std", "mad_std"}
        The reference's standard deviation, or astropy's ``mad_std`` (opt-in
        ``clip_scale``, able to reject a single outlier among few values).

    Returns
    -------
    lo, hi : float
        The last bounds computed; NaN when the lane has no finite value or per
        ``all_rejected="keep"``.
    """
    mode = clip_mode(all_rejected, scale)
    pass_limit = check_pass_limit(pass_limit)
    sigma = check_sigma(sigma)
    values = _lane_as_float64(lane)
    buf = [float(v) for v in values if math.isfinite(v)]
    return _bounds_of_buffer(buf, sigma, pass_limit, bool(mode & MODE_REJECT),
                             bool(mode & MODE_MAD))


def _mask_from_bounds(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Algorithm page A.9 FINAL: rejected iff not finite, or below ``lo``, or above ``hi``."""
    with np.errstate(invalid="ignore"):
        return ~np.isfinite(values) | (values < lo) | (values > hi)


def clip_lane_mask(
    lane, sigma: float, pass_limit: int, all_rejected: str = "keep", scale: str = "std"
) -> np.ndarray:
    """Clip mask of one lane (True = rejected).

    Parameters
    ----------
    lane : array_like, 1-D
        Samples in stack order (see :func:`clip_lane_bounds`).
    sigma : float
        Clip threshold.
    pass_limit : int
        ``UNLIMITED`` (-1) or a positive number of passes.
    all_rejected : {"keep", "reject"}
        Policy of algorithm page A.11, see :func:`clip_lane_bounds`.

    Returns
    -------
    numpy.ndarray of bool
        True where the sample is not finite or lies outside the final bounds. The final
        bounds apply to every original sample, so a sample rejected in an early pass is
        accepted again when it lies inside them.
    """
    values = _lane_as_float64(lane)
    lo, hi = clip_lane_bounds(values, sigma, pass_limit, all_rejected, scale)
    return _mask_from_bounds(values, lo, hi)


def clip_mask(stack, sigma: float, pass_limit: int, all_rejected: str = "keep", axis: int = 0,
              scale: str = "std"):
    """Clip every lane of an N-D array independently (True = rejected).

    Equivalent to ``astropy.stats.sigma_clip(stack, sigma, maxiters, axis=axis).mask``
    combined with ``~isfinite(stack)``, with the astropy version chosen by
    ``all_rejected``.

    Parameters
    ----------
    stack : array_like
        Data, any real dtype.
    sigma : float
        Clip threshold.
    pass_limit : int
        ``UNLIMITED`` (-1) or a positive number of passes.
    all_rejected : {"keep", "reject"}
        Policy of algorithm page A.11, see :func:`clip_lane_bounds`.
    axis : int
        The stack axis along which lanes run.

    Returns
    -------
    numpy.ndarray of bool
        Same shape as ``stack``.
    """
    stack = np.asarray(stack)
    moved = np.moveaxis(stack, axis, -1)
    mask = np.empty(moved.shape, dtype=bool)
    for index in np.ndindex(moved.shape[:-1]):
        mask[index] = clip_lane_mask(moved[index], sigma, pass_limit, all_rejected, scale)
    return np.moveaxis(mask, -1, axis)


# --------------------------------------------------------------------------- combine


def _intmean(values: np.ndarray, rejected: np.ndarray, empty_nan: bool) -> float:
    """Clipped mean over integrations with float32 accumulation (algorithm page A.8)."""
    s = np.float32(0.0)
    count = 0
    with np.errstate(over="ignore"):
        for x, bad in zip(values, rejected):
            if not bad:
                s = np.float32(s + x)  # float32 + float32, rounded to float32
                count += 1
    if count == 0:
        return _NAN if empty_nan else 0.0
    return float(s) / count  # float64 division


def _background_planes(
    sci, err, dq, overlaps, sigma, pass_limit, all_rejected, rateints, empty_nan, scale
):
    """Per-background planes D, E (float64, (N, P)) and the DQ accumulator Q (algorithm page A.7)."""
    n_bkg = sci.shape[0]
    n_pix = sci.shape[-1]
    d_planes = np.full((n_bkg, n_pix), np.nan)
    e_planes = np.full((n_bkg, n_pix), np.nan)
    q_acc = np.zeros(n_pix, dtype=np.uint32)
    for k in range(n_bkg):
        if not overlaps[k]:
            continue  # D = E = NaN, DQ ignored (algorithm page A.7)
        if not rateints:
            d_planes[k] = sci[k].astype(np.float64)
            with np.errstate(over="ignore"):
                square = err[k] * err[k]  # square in float32
            e_planes[k] = square.astype(np.float64)
            q_acc |= dq[k]
            continue
        with np.errstate(over="ignore"):
            var = err[k] * err[k]  # V = float32(err * err), shape (T, P)
        s_mask = clip_mask(sci[k], sigma, pass_limit, all_rejected, axis=0, scale=scale)
        v_mask = clip_mask(var, sigma, pass_limit, all_rejected, axis=0, scale=scale)
        for p in range(n_pix):
            d_planes[k, p] = _intmean(sci[k, :, p], s_mask[:, p], empty_nan)
            e_planes[k, p] = _intmean(var[:, p], v_mask[:, p], empty_nan)
        for t in range(sci.shape[1]):
            q_acc |= dq[k, t]
    return d_planes, e_planes, q_acc


def combine_tile_reference(
    sci,
    err,
    dq,
    overlaps,
    sigma: float,
    pass_limit: int,
    *,
    rateints: bool,
    all_rejected: str = "keep",
    empty_lane: str = "zero",
    no_valid: str = "zero",
    scale: str = "std",
):
    """Combine the backgrounds of one tile: pure NumPy/Python reference (algorithm page A.7-A.13).

    Parameters
    ----------
    sci, err : array_like
        Placed background SCI and ERR, float32. Rate mode: (N, ty, tx). Rateints mode:
        (N, T, ty, tx); absent integrations are NaN-padded (with DQ 0), which is
        harmless because NaN is always rejected. Other float dtypes are converted to
        float32, any byte order and memory layout is accepted.
    dq : array_like
        Placed DQ, same shape, converted to uint32.
    overlaps : array_like of bool, shape (N,)
        False for a background that does not overlap the target: it contributes
        D = E = NaN directly to the cross-exposure stack and its DQ is ignored.
    sigma : float
        Clip threshold, used for every clip.
    pass_limit : int
        ``UNLIMITED`` (-1) or a positive number of passes
        (:func:`daskbkg.options.normalize_maxiters`).
    rateints : bool
        Layout and per-background planes: rate (algorithm page A.7) or rateints (A.8).
    all_rejected : {"keep", "reject"}
        Clip policy of algorithm page A.11 (``clip_all_rejected``).
    empty_lane : {"zero", "nan"}
        Rateints integration mean without valid integration: 0.0 (reference quirk) or
        NaN (``rateints_empty_lane``).
    no_valid : {"zero", "nan"}
        SCI_bk where no background sample survives: 0.0 (reference) or NaN
        (``no_valid_background``). ERR_bk is 0.0 there in both cases.
    scale : {"std", "mad_std"}
        Clip scale (``clip_scale``): the reference's standard deviation, or astropy's
        ``mad_std`` for every clip.

    Returns
    -------
    sci_bk, err_bk : numpy.ndarray of float32, shape (ty, tx)
    dq_bk : numpy.ndarray of uint32, shape (ty, tx)
        OR of the DQ of every overlapping background (all integrations).
    n_good : numpy.ndarray of int32, shape (ty, tx)
        Number of background samples kept by the cross-exposure clip.

    Notes
    -----
    N == 0 is handled by the caller (algorithm page A.15). The kernel does not fail on it: every
    pixel then has n_good == 0 and gets the ``no_valid`` value, ERR_bk 0 and DQ 0.
    T == 0 (rateints) makes every integration mean an empty lane.

    Sums start at +0.0 and add the kept values in stack order, as the algorithm page states and as
    NumPy's masked ``sum``/``mean`` over the outer axis of an image with at least two
    pixels does (so SCI_bk is never -0.0). For a one-pixel image NumPy would instead sum
    pairwise once 8 or more values are reduced; the kernels do not reproduce that corner.
    """
    opts = parse_options(all_rejected, empty_lane, no_valid, scale)
    pass_limit = check_pass_limit(pass_limit)
    sigma = check_sigma(sigma)
    tile = prepare_tile(sci, err, dq, overlaps, rateints=rateints)
    d_planes, e_planes, q_acc = _background_planes(
        tile.sci, tile.err, tile.dq, tile.overlaps, sigma, pass_limit, all_rejected,
        rateints, opts.empty_nan, scale,
    )
    n_pix = q_acc.size
    sci_bk = np.empty(n_pix, dtype=np.float32)
    err_bk = np.empty(n_pix, dtype=np.float32)
    n_good = np.empty(n_pix, dtype=np.int32)
    m_mask = clip_mask(d_planes, sigma, pass_limit, all_rejected, axis=0, scale=scale)
    for p in range(n_pix):
        total = 0.0
        var_total = 0.0
        count = 0
        for k in range(d_planes.shape[0]):  # ascending k
            if not m_mask[k, p]:
                total += float(d_planes[k, p])
                var_total += float(e_planes[k, p])
                count += 1
        n_good[p] = count
        if count == 0:
            sci_bk[p] = _NAN if opts.none_nan else 0.0
            err_bk[p] = 0.0
        else:
            sci_bk[p] = np.float32(total / count)
            err_bk[p] = np.float32(math.sqrt(var_total) / count)
    shape = tile.out_shape
    return sci_bk.reshape(shape), err_bk.reshape(shape), q_acc.reshape(shape), n_good.reshape(shape)
