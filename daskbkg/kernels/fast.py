"""Fast kernels: numba versions of :mod:`daskbkg.kernels.clip`, bit-identical to it.

The compiled functions are serial (``nogil=True``, no ``parallel``) so that dask's
threaded scheduler provides the parallelism. Each pixel gathers its lane into a small
scratch buffer and runs the same Wirth selection, the same left-to-right sums and the
same float32/float64 roundings as the reference kernel, so masks and outputs agree bit
for bit. Options reach the compiled code as plain bools; the Python wrappers normalise
the inputs (native byte order, C order, fixed dtypes) so every compiled function has a
single specialisation and compiles once (cached on disk with ``cache=True``).
"""

from __future__ import annotations

import numba
import numpy as np

from ._common import check_pass_limit, check_sigma, clip_mode, run_tile_kernel
from .native import cache_root, source_digest

__all__ = ["clip_lane_bounds_fast", "combine_tile_fast"]


def _configure_cache() -> None:
    """Give the compiled kernels a cache folder keyed by the kernels' source code.

    numba invalidates a cached function only when its own file changes, not when a
    function it calls (in another module) changes, so a stale cache could run old code
    after an edit or a partial upgrade. A folder per source version, numba version and
    NumPy minor version (under :func:`~daskbkg.kernels.native.cache_root`:
    ``kernels-<hash>-numba<x.y.z>-numpy<x.y>``) rules that out, and also keeps a cache
    compiled in another environment (such as the build environment of
    ``daskbkg/_build``) from being used with a different NumPy.
    """
    numpy_abi = ".".join(np.__version__.split(".")[:2])
    numba.config.CACHE_DIR = str(
        cache_root() / f"kernels-{source_digest()}-numba{numba.__version__}-numpy{numpy_abi}")


_configure_cache()


def _jit(func):
    """Compile ``func`` serially, GIL released, cached on disk when a cache dir is writable.

    ``error_model="numpy"``: a division by zero gives inf/NaN instead of raising. The
    kernels never divide by zero, so no result changes, but the compiled code then has
    no exception path, which lets it run outside numba (:mod:`.native`).
    """
    try:
        return numba.njit(nogil=True, cache=True, error_model="numpy")(func)
    except RuntimeError:  # numba found no writable cache location: compile per process
        return numba.njit(nogil=True, error_model="numpy")(func)



@_jit
def _select(buf, n, k):
    """Wirth's k-th smallest of ``buf[0:n]``, reordering ``buf`` in place."""
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
                tmp = buf[i]
                buf[i] = buf[j]
                buf[j] = tmp
                i += 1
                j -= 1
            if i > j:
                break
        if j < k:
            lo_idx = i
        if k < i:
            hi_idx = j
    return buf[k]


@_jit
def _median(buf, n):
    """Median of ``buf[0:n]`` by selection (even n: k = n/2 first), reordering ``buf``."""
    if n % 2 == 1:
        return _select(buf, n, (n - 1) // 2)
    upper = _select(buf, n, n // 2)
    lower = _select(buf, n, n // 2 - 1)
    return 0.5 * (upper + lower)


#: astropy's ``mad_std`` factor, 1 / Phi^-1(3/4).
MAD_FACTOR = 1.482602218505602


@_jit
def _mad_std(buf, n, med):
    """``MAD_FACTOR`` × the median of ``|buf[i] - med|`` (astropy's ``mad_std``)."""
    deviations = np.empty(n, dtype=np.float64)
    for i in range(n):
        deviations[i] = abs(buf[i] - med)
    return _median(deviations, n) * MAD_FACTOR


@_jit
def _bounds(buf, n, sigma, pass_limit, mode):
    """Pass loop of spec §6.2 on the ``n`` finite float64 values at the front of ``buf``.

    ``mode`` bit 0: stop when a pass rejects everything (astropy 8); bit 1: scale by
    the median absolute deviation instead of the standard deviation.
    """
    reject = (mode & 1) != 0
    mad = (mode & 2) != 0
    passes = 0
    while True:
        if n == 0:
            return np.nan, np.nan
        med = _median(buf, n)
        if mad:
            std = _mad_std(buf, n, med)
        else:
            total = 0.0
            for i in range(n):
                total += buf[i]
            mean = total / n
            acc = 0.0
            for i in range(n):
                d = mean - buf[i]
                acc += d * d
            std = np.sqrt(acc / n)
        lo = med - sigma * std
        hi = med + sigma * std
        kept = 0
        for i in range(n):
            v = buf[i]
            if lo <= v and v <= hi:
                buf[kept] = v
                kept += 1
        if kept == n:
            return lo, hi
        if kept == 0 and reject:
            return lo, hi
        n = kept
        passes += 1
        if pass_limit != -1 and passes >= pass_limit:
            return lo, hi


@_jit
def _lane_bounds(values, sigma, pass_limit, reject):
    """Bounds of one float64 lane (non-finite values dropped)."""
    buf = np.empty(values.size, dtype=np.float64)
    n = 0
    for i in range(values.size):
        x = values[i]
        if np.isfinite(x):
            buf[n] = x
            n += 1
    return _bounds(buf, n, sigma, pass_limit, reject)


@_jit
def _intmean(a, k, p, square, buf, sigma, pass_limit, reject, empty_nan):
    """Clipped integration mean of ``a[k, :, p]`` (squared in float32 if ``square``)."""
    n_int = a.shape[1]
    n = 0
    for t in range(n_int):
        x = a[k, t, p]
        if square:
            x = x * x
        xd = np.float64(x)
        if np.isfinite(xd):
            buf[n] = xd
            n += 1
    lo, hi = _bounds(buf, n, sigma, pass_limit, reject)
    s = np.float32(0.0)
    count = 0
    for t in range(n_int):
        x = a[k, t, p]
        if square:
            x = x * x
        xd = np.float64(x)
        if np.isfinite(xd) and not (xd < lo) and not (xd > hi):
            s = s + x
            count += 1
    if count == 0:
        return np.nan if empty_nan else 0.0
    return np.float64(s) / count


@_jit
def _finish(d, e, buf, sigma, pass_limit, reject, none_nan):
    """Cross-exposure clip and mean of one pixel (spec §7): (sci, err, n_good) in float64."""
    n = 0
    for k in range(d.size):
        if np.isfinite(d[k]):
            buf[n] = d[k]
            n += 1
    lo, hi = _bounds(buf, n, sigma, pass_limit, reject)
    total = 0.0
    var_total = 0.0
    count = 0
    for k in range(d.size):
        x = d[k]
        if np.isfinite(x) and not (x < lo) and not (x > hi):
            total += x
            var_total += e[k]
            count += 1
    if count == 0:
        return (np.nan if none_nan else 0.0), 0.0, 0
    return total / count, np.sqrt(var_total) / count, count


@_jit
def _combine_rate(sci, err, dq, overlaps, sigma, pass_limit, reject, none_nan,
                  out_sci, out_err, out_dq, out_n):
    """Rate-mode tile: inputs (N, P), outputs (P,)."""
    n_bkg, n_pix = sci.shape
    d = np.empty(n_bkg, dtype=np.float64)
    e = np.empty(n_bkg, dtype=np.float64)
    buf = np.empty(n_bkg, dtype=np.float64)
    for p in range(n_pix):
        q = np.uint64(0)
        for k in range(n_bkg):
            if overlaps[k]:
                d[k] = np.float64(sci[k, p])
                v = err[k, p]
                e[k] = np.float64(v * v)
                q |= np.uint64(dq[k, p])
            else:
                d[k] = np.nan
                e[k] = np.nan
        s_bk, e_bk, count = _finish(d, e, buf, sigma, pass_limit, reject, none_nan)
        out_sci[p] = np.float32(s_bk)
        out_err[p] = np.float32(e_bk)
        out_dq[p] = np.uint32(q)
        out_n[p] = count


@_jit
def _combine_rateints(sci, err, dq, overlaps, sigma, pass_limit, reject, empty_nan, none_nan,
                      out_sci, out_err, out_dq, out_n):
    """Rateints tile: inputs (N, T, P), outputs (P,)."""
    n_bkg, n_int, n_pix = sci.shape
    d = np.empty(n_bkg, dtype=np.float64)
    e = np.empty(n_bkg, dtype=np.float64)
    buf = np.empty(max(n_bkg, n_int), dtype=np.float64)
    for p in range(n_pix):
        q = np.uint64(0)
        for k in range(n_bkg):
            if overlaps[k]:
                d[k] = _intmean(sci, k, p, False, buf, sigma, pass_limit, reject, empty_nan)
                e[k] = _intmean(err, k, p, True, buf, sigma, pass_limit, reject, empty_nan)
                for t in range(n_int):
                    q |= np.uint64(dq[k, t, p])
            else:
                d[k] = np.nan
                e[k] = np.nan
        s_bk, e_bk, count = _finish(d, e, buf, sigma, pass_limit, reject, none_nan)
        out_sci[p] = np.float32(s_bk)
        out_err[p] = np.float32(e_bk)
        out_dq[p] = np.uint32(q)
        out_n[p] = count


def clip_lane_bounds_fast(lane, sigma: float, pass_limit: int, all_rejected: str = "keep",
                          scale: str = "std"):
    """Compiled equivalent of :func:`daskbkg.kernels.clip_lane_bounds`.

    Parameters
    ----------
    lane : array_like, 1-D
        Samples in stack order, any real dtype (converted to float64).
    sigma : float
        Clip threshold.
    pass_limit : int
        ``UNLIMITED`` (-1) or a positive number of passes.
    all_rejected : {"keep", "reject"}
        Policy of spec §6.4.

    Returns
    -------
    lo, hi : float
        Final bounds, bit-identical to the reference.
    """
    mode = clip_mode(all_rejected, scale)
    pass_limit = check_pass_limit(pass_limit)
    sigma = check_sigma(sigma)
    values = np.asarray(lane)
    if values.ndim != 1:
        raise ValueError(f"a lane must be one-dimensional, got shape {values.shape}")
    if values.dtype.kind not in "fiub":
        raise TypeError(f"a lane must be real numeric, not {values.dtype}")
    values = np.ascontiguousarray(values, dtype=np.float64)
    lo, hi = _lane_bounds(values, sigma, pass_limit, mode)
    return float(lo), float(hi)


def combine_tile_fast(
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
    """Combine the backgrounds of one tile: compiled, bit-identical to the reference.

    Same contract as :func:`daskbkg.kernels.combine_tile_reference`; releases the GIL
    while it runs.

    Parameters
    ----------
    sci, err : array_like
        float32 background stacks, (N, ty, tx) in rate mode or (N, T, ty, tx) in
        rateints mode. Any byte order and memory layout is accepted (converted first).
    dq : array_like
        uint32 DQ stack of the same shape.
    overlaps : array_like of bool, shape (N,)
        False for non-overlapping backgrounds (D = E = NaN, DQ ignored).
    sigma : float
        Clip threshold.
    pass_limit : int
        ``UNLIMITED`` (-1) or a positive number of passes.
    rateints : bool
        Rate (spec §5.2) or rateints (§5.3) per-background planes.
    all_rejected : {"keep", "reject"}
        Clip policy of spec §6.4.
    empty_lane : {"zero", "nan"}
        Rateints integration mean without valid integration.
    no_valid : {"zero", "nan"}
        SCI_bk where no background sample survives.

    Returns
    -------
    sci_bk, err_bk : numpy.ndarray of float32, shape (ty, tx)
    dq_bk : numpy.ndarray of uint32, shape (ty, tx)
    n_good : numpy.ndarray of int32, shape (ty, tx)

    Notes
    -----
    For N == 0 every pixel has n_good == 0 (``no_valid`` value, ERR_bk 0, DQ 0).
    """
    return run_tile_kernel(_combine_rate, _combine_rateints, sci, err, dq, overlaps, sigma,
                           pass_limit, rateints=rateints, all_rejected=all_rejected,
                           empty_lane=empty_lane, no_valid=no_valid, scale=scale)
