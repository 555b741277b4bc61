"""Block-wise combine kernels built on the sort-once clip (:mod:`.sortclip`).

Lanes are processed ``BLOCK`` pixels at a time: the stack of one block is gathered into
a small float64 array (one lane per column), all its lanes are clipped together, and the
means are then accumulated from the original samples in stack order, exactly as the
reference does. Same inputs, outputs and bits as :mod:`.fast` and :mod:`.clip`.
"""

from __future__ import annotations

import numpy as np

from ._common import run_tile_kernel
from .fast import _jit
from .sortclip import BLOCK, block_bounds, kept, network

__all__ = ["combine_tile_sorted"]


@_jit
def _rate(sci, err, dq, overlaps, sigma, pass_limit, reject, none_nan, pairs, npad,
          out_sci, out_err, out_dq, out_n):
    n_bkg, n_pix = sci.shape
    vals = np.empty((n_bkg, BLOCK), dtype=np.float64)
    buf = np.empty((npad, BLOCK), dtype=np.float64)
    lane = np.empty(n_bkg, dtype=np.float64)
    lo = np.empty(BLOCK, dtype=np.float64)
    hi = np.empty(BLOCK, dtype=np.float64)
    total = np.empty(BLOCK, dtype=np.float64)
    var_total = np.empty(BLOCK, dtype=np.float64)
    count = np.empty(BLOCK, dtype=np.int32)
    q = np.empty(BLOCK, dtype=np.uint32)
    for p0 in range(0, n_pix, BLOCK):
        m = min(BLOCK, n_pix - p0)
        for k in range(n_bkg):
            if overlaps[k]:
                for b in range(m):
                    vals[k, b] = np.float64(sci[k, p0 + b])
            else:
                for b in range(m):
                    vals[k, b] = np.nan
        block_bounds(vals, m, buf, pairs, lane, sigma, pass_limit, reject, lo, hi)
        total[:] = 0.0
        var_total[:] = 0.0
        count[:] = 0
        q[:] = 0
        # Ascending k for every pixel (spec §7), vectorised across the block's pixels.
        for k in range(n_bkg):
            if not overlaps[k]:
                continue
            for b in range(m):
                x = vals[k, b]
                v = err[k, p0 + b]
                keep = kept(x, lo[b], hi[b])
                total[b] += x if keep else 0.0
                var_total[b] += np.float64(v * v) if keep else 0.0
                count[b] += 1 if keep else 0
                q[b] |= dq[k, p0 + b]
        for b in range(m):
            _store(p0 + b, total[b], var_total[b], count[b], q[b], none_nan, out_sci, out_err,
                   out_dq, out_n)


@_jit
def _store(p, total, var_total, count, q, none_nan, out_sci, out_err, out_dq, out_n):
    """Write one pixel's combined values (spec §7), rounding to float32."""
    if count == 0:
        out_sci[p] = np.nan if none_nan else np.float32(0.0)
        out_err[p] = np.float32(0.0)
    else:
        out_sci[p] = np.float32(total / count)
        out_err[p] = np.float32(np.sqrt(var_total) / count)
    out_dq[p] = q
    out_n[p] = count


@_jit
def _intmeans(a, k, p0, m, square, tvals, buf, pairs, lane, sigma, pass_limit, reject,
              empty_nan, lo, hi, acc, count, out):
    """Clipped integration means of ``a[k, :, p0:p0+m]`` into ``out[k, 0:m]`` (spec §5.3)."""
    n_int = a.shape[1]
    for t in range(n_int):
        for b in range(m):
            x = a[k, t, p0 + b]
            if square:
                x = x * x
            tvals[t, b] = np.float64(x)
    block_bounds(tvals, m, buf, pairs, lane, sigma, pass_limit, reject, lo, hi)
    acc[:] = 0.0
    count[:] = 0
    for t in range(n_int):  # float32 accumulation in integration order, per pixel
        for b in range(m):
            x = a[k, t, p0 + b]
            if square:
                x = x * x
            keep = kept(np.float64(x), lo[b], hi[b])
            acc[b] = acc[b] + (x if keep else np.float32(0.0))
            count[b] += 1 if keep else 0
    for b in range(m):
        if count[b] == 0:
            out[k, b] = np.nan if empty_nan else 0.0
        else:
            out[k, b] = np.float64(acc[b]) / count[b]


@_jit
def _rateints(sci, err, dq, overlaps, sigma, pass_limit, reject, empty_nan, none_nan,
              pairs_t, npad_t, pairs_k, npad_k, out_sci, out_err, out_dq, out_n):
    n_bkg, n_int, n_pix = sci.shape
    d = np.empty((n_bkg, BLOCK), dtype=np.float64)
    e = np.empty((n_bkg, BLOCK), dtype=np.float64)
    tvals = np.empty((n_int, BLOCK), dtype=np.float64)
    buf_t = np.empty((npad_t, BLOCK), dtype=np.float64)
    buf_k = np.empty((npad_k, BLOCK), dtype=np.float64)
    lane_t = np.empty(n_int, dtype=np.float64)
    lane_k = np.empty(n_bkg, dtype=np.float64)
    lo = np.empty(BLOCK, dtype=np.float64)
    hi = np.empty(BLOCK, dtype=np.float64)
    q = np.empty(BLOCK, dtype=np.uint32)
    total = np.empty(BLOCK, dtype=np.float64)
    var_total = np.empty(BLOCK, dtype=np.float64)
    count = np.empty(BLOCK, dtype=np.int32)
    acc = np.empty(BLOCK, dtype=np.float32)  # scratch of _intmeans
    count_t = np.empty(BLOCK, dtype=np.int64)
    for p0 in range(0, n_pix, BLOCK):
        m = min(BLOCK, n_pix - p0)
        q[:m] = 0
        for k in range(n_bkg):
            if not overlaps[k]:
                for b in range(m):
                    d[k, b] = np.nan
                    e[k, b] = np.nan
                continue
            _intmeans(sci, k, p0, m, False, tvals, buf_t, pairs_t, lane_t, sigma, pass_limit,
                      reject, empty_nan, lo, hi, acc, count_t, d)
            _intmeans(err, k, p0, m, True, tvals, buf_t, pairs_t, lane_t, sigma, pass_limit,
                      reject, empty_nan, lo, hi, acc, count_t, e)
            for t in range(n_int):
                for b in range(m):
                    q[b] |= dq[k, t, p0 + b]
        block_bounds(d, m, buf_k, pairs_k, lane_k, sigma, pass_limit, reject, lo, hi)
        total[:] = 0.0
        var_total[:] = 0.0
        count[:] = 0
        for k in range(n_bkg):  # ascending k for every pixel (spec §7)
            for b in range(m):
                x = d[k, b]
                keep = kept(x, lo[b], hi[b])
                total[b] += x if keep else 0.0
                var_total[b] += e[k, b] if keep else 0.0
                count[b] += 1 if keep else 0
        for b in range(m):
            _store(p0 + b, total[b], var_total[b], count[b], q[b], none_nan, out_sci, out_err,
                   out_dq, out_n)


def combine_rate_blocked(sci, err, dq, overlaps, sigma, pass_limit, reject, none_nan,
                         out_sci, out_err, out_dq, out_n):
    """Rate-mode tile, inputs (N, P) prepared by ``prepare_tile``; outputs filled in place."""
    npad, pairs = network(sci.shape[0])
    _rate(sci, err, dq, overlaps, sigma, pass_limit, reject, none_nan, pairs, npad,
          out_sci, out_err, out_dq, out_n)


def combine_rateints_blocked(sci, err, dq, overlaps, sigma, pass_limit, reject, empty_nan,
                             none_nan, out_sci, out_err, out_dq, out_n):
    """Rateints tile, inputs (N, T, P) prepared by ``prepare_tile``; outputs filled in place."""
    npad_t, pairs_t = network(sci.shape[1])
    npad_k, pairs_k = network(sci.shape[0])
    _rateints(sci, err, dq, overlaps, sigma, pass_limit, reject, empty_nan, none_nan,
              pairs_t, npad_t, pairs_k, npad_k, out_sci, out_err, out_dq, out_n)


def combine_tile_sorted(sci, err, dq, overlaps, sigma: float, pass_limit: int, *,
                        rateints: bool, all_rejected: str = "keep", empty_lane: str = "zero",
                        no_valid: str = "zero", scale: str = "std"):
    """Combine one tile with the sort-once kernel (the default, fastest kernel).

    Same contract and bit-identical results as
    :func:`daskbkg.kernels.combine_tile_reference` and
    :func:`daskbkg.kernels.combine_tile_fast`; releases the GIL while it runs.
    """
    if scale != "std":  # the MAD scale is order-independent: the literal kernel is exact
        from .fast import combine_tile_fast

        return combine_tile_fast(sci, err, dq, overlaps, sigma, pass_limit, rateints=rateints,
                                 all_rejected=all_rejected, empty_lane=empty_lane,
                                 no_valid=no_valid, scale=scale)
    return run_tile_kernel(combine_rate_blocked, combine_rateints_blocked, sci, err, dq,
                           overlaps, sigma, pass_limit, rateints=rateints,
                           all_rejected=all_rejected, empty_lane=empty_lane, no_valid=no_valid)
