"""Compiled block-wise combine kernels built on the sort-once clip (:mod:`.sortclip`).

Lanes are processed ``BLOCK`` pixels at a time: the stack of one block is gathered into
a small array (one lane per column; float32 for rate tiles, float64 for the clipped
means of rateints tiles), all its lanes are clipped together, and the means are then
accumulated from the original samples in stack order, exactly as the reference does.
Pixels with an uncertain lane (see :mod:`.sortclip`) are flagged for the caller
(:mod:`.sort_once`) to recompute with a literal kernel. The functions here allocate
nothing; their memory comes from :mod:`.workspace`.
"""

from __future__ import annotations

import numba
import numpy as np

from .fast import _jit
from .sortclip import block_bounds
from .workspace import BLOCK

__all__ = ["rate_kernel", "rateints_kernel"]


@numba.njit(inline="always")
def _mean_of_kept(lanes, col, variances, overlaps, lo, hi, q, none_nan, p0, total,
                  var_total, count, out_sci, out_err, out_dq, out_n):
    """Combine a block's lanes into pixels ``p0:p0+BLOCK`` of the outputs (spec §7).

    The lanes are ``lanes[k, col:col+BLOCK]`` and their variances ``variances[k, :]``
    (``BLOCK`` wide); backgrounds without ``overlaps[k]`` contribute nothing. The kept
    samples of each lane (finite, within ``lo``/``hi``) are averaged and their variances
    summed in quadrature, in ascending background order for every pixel and vectorised
    across pixels: adding +0.0 for a rejected sample leaves the +0.0-started sums
    unchanged. ``total``, ``var_total`` and ``count`` are the caller's scratch.
    """
    total[:] = 0.0
    var_total[:] = 0.0
    count[:] = 0
    # Row views indexed by the range variable ``b``: an index NumPy-style wraparound
    # cannot apply to, so the loads stay contiguous vector loads instead of gathers.
    for k in range(lanes.shape[0]):
        if not overlaps[k]:  # a NaN lane is never kept
            continue
        lane = lanes[k, col:col + BLOCK]
        for b in range(BLOCK):
            x = np.float64(lane[b])
            keep = (x >= lo[b]) & (x <= hi[b]) & (abs(x) < np.inf)
            total[b] += x if keep else 0.0
            var_total[b] += np.float64(variances[k, b]) if keep else 0.0
            count[b] += 1 if keep else 0
    sci = out_sci[p0:p0 + BLOCK]
    err = out_err[p0:p0 + BLOCK]
    dq = out_dq[p0:p0 + BLOCK]
    n = out_n[p0:p0 + BLOCK]
    for b in range(BLOCK):
        if count[b] == 0:
            sci[b] = np.nan if none_nan else np.float32(0.0)
            err[b] = np.float32(0.0)
        else:
            sci[b] = np.float32(total[b] / count[b])
            err[b] = np.float32(np.sqrt(var_total[b]) / count[b])
        dq[b] = q[b]
        n[b] = count[b]


@_jit
def rate_kernel(sci, err, dq, overlaps, sigma, pass_limit, reject, none_nan, scratch, work,
          out_sci, out_err, out_dq, out_n, uncertain):
    """Rate-mode tile: fills the outputs and flags uncertain pixels.

    Inputs are (N, P) with P a multiple of BLOCK. The lanes are sorted as float32, the
    samples' own type; ``work`` comes from
    :func:`~daskbkg.kernels.workspace.block_workspace`.
    """
    buf = scratch[0]
    n_bkg, n_pix = sci.shape
    sums, q, count, squares = work
    lo, hi, total, var_total = sums[0], sums[1], sums[2], sums[3]
    for p0 in range(0, n_pix - BLOCK + 1, BLOCK):
        q[:] = 0
        # One pass over the inputs: SCI lanes to sort, float32 ERR², DQ ORed.
        for k in range(n_bkg):
            if overlaps[k]:
                for b in range(BLOCK):
                    x = sci[k, p0 + b]
                    buf[k, b] = x if np.isfinite(x) else np.float32(np.inf)
                    v = err[k, p0 + b]
                    squares[k, b] = v * v
                    q[b] |= dq[k, p0 + b]
            else:  # a NaN lane is never kept
                for b in range(BLOCK):
                    buf[k, b] = np.float32(np.inf)
        if block_bounds(sigma, pass_limit, reject, scratch, lo, hi):
            for b in range(BLOCK):
                uncertain[p0 + b] = np.isnan(lo[b])
        _mean_of_kept(sci, p0, squares, overlaps, lo, hi, q, none_nan, p0, total,
                      var_total, count, out_sci, out_err, out_dq, out_n)


@_jit
def rateints_kernel(sci, err, dq, overlaps, sigma, pass_limit, reject, empty_nan, none_nan,
              scratch_t, scratch_k, work, means, out_sci, out_err, out_dq, out_n, uncertain):
    """Rateints tile: fills the outputs and flags uncertain pixels.

    Inputs are (N, T, P) with P a multiple of BLOCK.
    Each block of pixels runs ``2 N + 1`` clips: for every background the clip over
    integrations of SCI and of float32 ERR² (whose clipped means, spec §5.3, become the
    lanes ``d`` and ``e``), then the cross-exposure clip of ``d`` (spec §7). They share
    one call of the clip so that it is compiled once (for float64 lanes, as ``d`` needs).
    ``work`` and ``means`` come from :func:`~daskbkg.kernels.workspace.block_workspace`
    and :func:`~daskbkg.kernels.workspace.rateints_workspace`.
    """
    n_bkg, n_int, n_pix = sci.shape
    sums, q, count, _ = work
    lo, hi, total, var_total = sums[0], sums[1], sums[2], sums[3]
    d, e, int_sum = means
    n_clips = 2 * n_bkg + 1
    for p0 in range(0, n_pix - BLOCK + 1, BLOCK):
        q[:] = 0
        for clip in range(n_clips):
            final = clip == n_clips - 1
            k = clip // 2
            plane = clip % 2  # 0: SCI, 1: ERR squared in float32
            a = sci if plane == 0 else err
            out = d if plane == 0 else e
            scratch = scratch_k if final else scratch_t
            buf = scratch[0]
            if final:
                for j in range(n_bkg):
                    for b in range(BLOCK):
                        x = d[j, b]
                        buf[j, b] = x if np.isfinite(x) else np.inf
            else:
                if not overlaps[k]:
                    for b in range(BLOCK):
                        out[k, b] = np.nan
                    continue
                for t in range(n_int):
                    for b in range(BLOCK):
                        x = a[k, t, p0 + b]
                        x = x * x if plane else x
                        buf[t, b] = np.float64(x) if np.isfinite(x) else np.inf
                if plane == 0:
                    for t in range(n_int):
                        for b in range(BLOCK):
                            q[b] |= dq[k, t, p0 + b]
            if block_bounds(sigma, pass_limit, reject, scratch, lo, hi):
                for b in range(BLOCK):
                    uncertain[p0 + b] |= np.isnan(lo[b])
            if final:
                break
            int_sum[:] = 0.0
            count[:] = 0
            for t in range(n_int):  # float32 sums in integration order, per pixel
                for b in range(BLOCK):
                    x = a[k, t, p0 + b]
                    x = x * x if plane else x
                    xd = np.float64(x)
                    keep = (xd >= lo[b]) & (xd <= hi[b]) & (abs(xd) < np.inf)
                    int_sum[b] = int_sum[b] + (x if keep else np.float32(0.0))
                    count[b] += 1 if keep else 0
            for b in range(BLOCK):
                if count[b] == 0:
                    out[k, b] = np.nan if empty_nan else 0.0
                else:
                    out[k, b] = np.float64(int_sum[b]) / count[b]
        _mean_of_kept(d, 0, e, overlaps, lo, hi, q, none_nan, p0, total, var_total,
                      count, out_sci, out_err, out_dq, out_n)
