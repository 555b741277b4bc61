"""Block-wise combine kernels built on the sort-once clip (:mod:`.sortclip`).

Lanes are processed ``BLOCK`` pixels at a time: the stack of one block is gathered into
a small float64 array (one lane per column), all its lanes are clipped together, and the
means are then accumulated from the original samples in stack order, exactly as the
reference does. Pixels with an uncertain lane (see :mod:`.sortclip`) are flagged by the
compiled code and recomputed afterwards by a literal kernel, so the result has the same
bits as :mod:`.fast` and :mod:`.clip` everywhere.
"""

from __future__ import annotations

import numba
import numpy as np

from ._common import run_tile_kernel
from .clip import combine_tile_reference
from .fast import _jit, combine_tile_fast
from .sortclip import BLOCK, block_bounds, block_scratch

__all__ = ["combine_tile_sorted"]

#: Up to this many uncertain pixels per tile are recomputed by the NumPy reference
#: kernel (no compilation); more go to the compiled literal kernel of :mod:`.fast`.
REFERENCE_RECOMPUTE_LIMIT = 256


@numba.njit(inline="always")
def _block_arrays():
    """Per-block working arrays of the combine kernels, allocated in the kernel itself.

    Returns ``(lo, hi, q, total, var_total, count)``: clip bounds, DQ accumulator and
    the sums of :func:`_mean_of_kept`, each ``BLOCK`` long.
    """
    return (np.empty(BLOCK, dtype=np.float64), np.empty(BLOCK, dtype=np.float64),
            np.empty(BLOCK, dtype=np.uint32), np.empty(BLOCK, dtype=np.float64),
            np.empty(BLOCK, dtype=np.float64), np.empty(BLOCK, dtype=np.int32))


@numba.njit(inline="always")
def _mean_of_kept(p0, m, lanes, variances, lo, hi, q, none_nan, total, var_total, count,
                  out_sci, out_err, out_dq, out_n):
    """Combine the ``m`` lanes of a block into pixels ``p0:p0+m`` of the outputs (spec §7).

    The kept samples of each lane (finite, within ``lo``/``hi``) are averaged and their
    variances summed in quadrature, in ascending background order for every pixel and
    vectorised across pixels: adding +0.0 for a rejected sample leaves the +0.0-started
    sums unchanged. ``total``, ``var_total`` and ``count`` are the caller's scratch.
    """
    total[:] = 0.0
    var_total[:] = 0.0
    count[:] = 0
    for k in range(lanes.shape[0]):
        for b in range(m):
            x = lanes[k, b]
            keep = (x >= lo[b]) & (x <= hi[b]) & (abs(x) < np.inf)
            total[b] += x if keep else 0.0
            var_total[b] += variances[k, b] if keep else 0.0
            count[b] += 1 if keep else 0
    for b in range(m):
        p = p0 + b
        if count[b] == 0:
            out_sci[p] = np.nan if none_nan else np.float32(0.0)
            out_err[p] = np.float32(0.0)
        else:
            out_sci[p] = np.float32(total[b] / count[b])
            out_err[p] = np.float32(np.sqrt(var_total[b]) / count[b])
        out_dq[p] = q[b]
        out_n[p] = count[b]


@_jit
def _rate(sci, err, dq, overlaps, sigma, pass_limit, reject, none_nan, scratch,
          out_sci, out_err, out_dq, out_n, uncertain):
    """Rate-mode tile, inputs (N, P): fills the outputs, flags uncertain pixels."""
    vals = scratch[0]
    n_bkg, n_pix = sci.shape
    squares = np.empty((n_bkg, BLOCK), dtype=np.float64)
    lo, hi, q, total, var_total, count = _block_arrays()
    for p0 in range(0, n_pix, BLOCK):
        m = min(BLOCK, n_pix - p0)
        q[:] = 0
        # One pass over the inputs: SCI and float32 ERR² as float64 lanes, DQ ORed.
        for k in range(n_bkg):
            if overlaps[k]:
                for b in range(m):
                    vals[k, b] = np.float64(sci[k, p0 + b])
                    v = err[k, p0 + b]
                    squares[k, b] = np.float64(v * v)
                    q[b] |= dq[k, p0 + b]
            else:  # a NaN lane is never kept
                for b in range(m):
                    vals[k, b] = np.nan
                    squares[k, b] = 0.0
        if block_bounds(m, sigma, pass_limit, reject, scratch, lo, hi):
            for b in range(m):
                uncertain[p0 + b] = np.isnan(lo[b])
        _mean_of_kept(p0, m, vals, squares, lo, hi, q, none_nan, total, var_total, count,
                      out_sci, out_err, out_dq, out_n)


@_jit
def _rateints(sci, err, dq, overlaps, sigma, pass_limit, reject, empty_nan, none_nan,
              scratch_t, scratch_k, out_sci, out_err, out_dq, out_n, uncertain):
    """Rateints tile, inputs (N, T, P): fills the outputs, flags uncertain pixels.

    Each block of pixels runs ``2 N + 1`` clips: for every background the clip over
    integrations of SCI and of float32 ERR² (whose clipped means, spec §5.3, become the
    lanes ``d`` and ``e``), then the cross-exposure clip of ``d`` (spec §7). They share
    one call of the clip so that it is compiled once.
    """
    n_bkg, n_int, n_pix = sci.shape
    tvals = scratch_t[0]
    d = scratch_k[0]
    e = np.empty((n_bkg, BLOCK), dtype=np.float64)
    lo, hi, q, total, var_total, count = _block_arrays()
    int_sum = np.empty(BLOCK, dtype=np.float32)
    n_clips = 2 * n_bkg + 1
    for p0 in range(0, n_pix, BLOCK):
        m = min(BLOCK, n_pix - p0)
        q[:] = 0
        for clip in range(n_clips):
            final = clip == n_clips - 1
            k = clip // 2
            plane = clip % 2  # 0: SCI, 1: ERR squared in float32
            a = sci if plane == 0 else err
            out = d if plane == 0 else e
            if not final:
                if not overlaps[k]:
                    for b in range(m):
                        out[k, b] = np.nan
                    continue
                for t in range(n_int):
                    for b in range(m):
                        x = a[k, t, p0 + b]
                        tvals[t, b] = np.float64(x * x if plane else x)
                if plane == 0:
                    for t in range(n_int):
                        for b in range(m):
                            q[b] |= dq[k, t, p0 + b]
            if block_bounds(m, sigma, pass_limit, reject, scratch_k if final else scratch_t,
                            lo, hi):
                for b in range(m):
                    uncertain[p0 + b] |= np.isnan(lo[b])
            if final:
                break
            int_sum[:] = 0.0
            count[:] = 0
            for t in range(n_int):  # float32 sums in integration order, per pixel
                for b in range(m):
                    x = a[k, t, p0 + b]
                    x = x * x if plane else x
                    xd = np.float64(x)
                    keep = (xd >= lo[b]) & (xd <= hi[b]) & (abs(xd) < np.inf)
                    int_sum[b] = int_sum[b] + (x if keep else np.float32(0.0))
                    count[b] += 1 if keep else 0
            for b in range(m):
                if count[b] == 0:
                    out[k, b] = np.nan if empty_nan else 0.0
                else:
                    out[k, b] = np.float64(int_sum[b]) / count[b]
        _mean_of_kept(p0, m, d, e, lo, hi, q, none_nan, total, var_total, count, out_sci,
                      out_err, out_dq, out_n)


def _recompute_uncertain(uncertain, sci, err, dq, overlaps, sigma, pass_limit, reject,
                         empty_nan, none_nan, outputs, rateints):
    """Overwrite the flagged pixels of ``outputs`` with a literal kernel's results.

    A few pixels go through the NumPy reference (nothing to compile); many, as in
    hand-made data full of ties, through the compiled Wirth kernel. Both are
    bit-identical to the sort-once kernel's exact result.
    """
    index = np.flatnonzero(uncertain)
    if index.size == 0:
        return
    kernel = (combine_tile_reference if index.size <= REFERENCE_RECOMPUTE_LIMIT
              else combine_tile_fast)
    results = kernel(sci[..., index], err[..., index], dq[..., index], overlaps, sigma,
                     pass_limit, rateints=rateints,
                     all_rejected="reject" if reject else "keep",
                     empty_lane="nan" if empty_nan else "zero",
                     no_valid="nan" if none_nan else "zero")
    for out, values in zip(outputs, results):
        out[index] = values


def combine_rate_blocked(sci, err, dq, overlaps, sigma, pass_limit, reject, none_nan,
                         *outputs):
    """Rate-mode tile, inputs (N, P) prepared by ``prepare_tile``; outputs filled in place."""
    uncertain = np.zeros(sci.shape[-1], dtype=np.bool_)
    _rate(sci, err, dq, overlaps, sigma, pass_limit, reject, none_nan,
          block_scratch(sci.shape[0]), *outputs, uncertain)
    _recompute_uncertain(uncertain, sci, err, dq, overlaps, sigma, pass_limit, reject,
                         False, none_nan, outputs, rateints=False)


def combine_rateints_blocked(sci, err, dq, overlaps, sigma, pass_limit, reject, empty_nan,
                             none_nan, *outputs):
    """Rateints tile, inputs (N, T, P) prepared by ``prepare_tile``; outputs filled in place."""
    uncertain = np.zeros(sci.shape[-1], dtype=np.bool_)
    _rateints(sci, err, dq, overlaps, sigma, pass_limit, reject, empty_nan, none_nan,
              block_scratch(sci.shape[1]), block_scratch(sci.shape[0]), *outputs, uncertain)
    _recompute_uncertain(uncertain, sci, err, dq, overlaps, sigma, pass_limit, reject,
                         empty_nan, none_nan, outputs, rateints=True)


def combine_tile_sorted(sci, err, dq, overlaps, sigma: float, pass_limit: int, *,
                        rateints: bool, all_rejected: str = "keep", empty_lane: str = "zero",
                        no_valid: str = "zero", scale: str = "std"):
    """Combine one tile with the sort-once kernel (the default, fastest kernel).

    Same contract and bit-identical results as
    :func:`daskbkg.kernels.combine_tile_reference` and
    :func:`daskbkg.kernels.combine_tile_fast`; releases the GIL while it runs.
    """
    if scale != "std":  # the MAD scale is order-independent: the literal kernel is exact
        return combine_tile_fast(sci, err, dq, overlaps, sigma, pass_limit, rateints=rateints,
                                 all_rejected=all_rejected, empty_lane=empty_lane,
                                 no_valid=no_valid, scale=scale)
    return run_tile_kernel(combine_rate_blocked, combine_rateints_blocked, sci, err, dq,
                           overlaps, sigma, pass_limit, rateints=rateints,
                           all_rejected=all_rejected, empty_lane=empty_lane, no_valid=no_valid)
