"""Sort-once clip kernel: the fast path, bit-identical to the literal kernels.

Why it is exact
---------------
The outputs of a clip depend only on *which* samples are rejected, never on the bounds
themselves. This kernel sorts each lane once (a branch-free sorting network run on a
block of lanes at a time, which vectorises across pixels), after which every clip pass
is cheap: the median of the survivors is read off the sorted window, and the survivors
of a pass are a contiguous window of the sorted lane.

Its mean and standard deviation are summed in sorted order, while the reference sums in
the order left by Wirth's selection, so the bounds may differ from the reference's by a
few units in the last place. A rigorous bound ``tol`` on that difference is computed at
every pass (from the usual error bounds of recursive summation). If any sample lies
within ``tol`` of a bound, the lane is *uncertain*: its bounds come back as NaN and the
caller recomputes the pixel with a literal kernel. Otherwise every keep/reject decision
is provably the same as the reference's, so the masks, and therefore every output bit,
are identical. On real data uncertain lanes are very rare; hand-made ties produce them.

Compile time
------------
numba compiles every jitted function separately (about 0.1 s each on top of its
size), and LLVM optimises a callee again inside each caller. So the clip is one compiled
function whose small helpers are inlined (``inline="always"``), each combine kernel calls
it from a single place, and the literal fallback is not called from compiled code: it is
compiled only if a tile has many uncertain pixels.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .fast import _jit
from .workspace import BLOCK

__all__ = ["block_bounds"]

_U = 2.0**-53


@numba.njit(inline="always")
def _at(buf, i, b):
    """``buf[i, b]`` as float64: all arithmetic on samples is done in float64."""
    return np.float64(buf[i, b])


@numba.njit(inline="always")
def _tolerance(m, acc, big, med, std, sigma):
    """Bound on how far a pass's bounds can be from the literal algorithm's.

    Sums of the same ``m`` values in two orders differ by at most ``(m-1)·u·Σ|x|``; the
    mean, the squared deviations and the square root propagate that difference (see the
    module docstring). A factor 4 of safety is applied.
    """
    d_acc = 2.0 * (m + 3) * _U * acc + 12.0 * m * m * m * _U * _U * big * big
    d_std = math.sqrt(d_acc / m)
    if std > 0.0:
        d_std = min(d_std, d_acc / (m * std))
    return 4.0 * (sigma * d_std + 4.0 * _U * (abs(med) + sigma * std))


@numba.njit(inline="always")
def _window_sum(buf, b, start, stop, center, square):
    """Sum of ``buf[start:stop, b]`` (or of squared deviations from ``center``).

    Four interleaved accumulators break the addition dependency chain; any summation
    order obeys the error bound used for the tolerance.
    """
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    i = start
    while i + 4 <= stop:
        x0 = _at(buf, i, b)
        x1 = _at(buf, i + 1, b)
        x2 = _at(buf, i + 2, b)
        x3 = _at(buf, i + 3, b)
        if square:
            x0 = (center - x0) * (center - x0)
            x1 = (center - x1) * (center - x1)
            x2 = (center - x2) * (center - x2)
            x3 = (center - x3) * (center - x3)
        s0 += x0
        s1 += x1
        s2 += x2
        s3 += x3
        i += 4
    while i < stop:
        x0 = _at(buf, i, b)
        if square:
            x0 = (center - x0) * (center - x0)
        s0 += x0
        i += 1
    return (s0 + s1) + (s2 + s3)


@numba.njit(inline="always")
def _median(buf, b, start, stop):
    """Median of the sorted window ``buf[start:stop, b]`` (mean of the middle two if even)."""
    half = (stop - start) // 2
    if (stop - start) % 2 == 1:
        return _at(buf, start + half, b)
    return 0.5 * (_at(buf, start + half, b) + _at(buf, start + half - 1, b))


@numba.njit(inline="always")
def _first_bounds(buf, b, n, sq, sigma):
    """Bounds and tolerance of the first pass of sorted lane ``b``.

    The lane has ``n`` finite samples; ``sq`` is the sum of their squared deviations
    from the mean.
    """
    med = _median(buf, b, 0, n)
    std = math.sqrt(sq / n)
    big = max(abs(_at(buf, 0, b)), abs(_at(buf, n - 1, b)))
    return med - sigma * std, med + sigma * std, _tolerance(n, sq, big, med, std, sigma)


@_jit
def block_bounds(sigma, pass_limit, reject, scratch, lo, hi):
    """Clip bounds of the ``BLOCK`` lanes held in ``scratch``.

    ``scratch`` comes from :func:`~daskbkg.kernels.workspace.block_scratch`.
    The caller fills the first ``n_rows`` rows of the scratch buffer with the lanes in
    stack order, one lane per column and every non-finite sample replaced by +inf
    (a caller with fewer lanes fills the others with +inf). Every loop over lanes runs
    over all ``BLOCK`` of them: a trip count known at compile time is what lets LLVM
    vectorise them. Results go to ``lo`` and ``hi`` (float64, ``BLOCK`` long) and give
    exactly the reference's keep/reject decisions through ``lo <= x <= hi`` for finite
    ``x``. NaN bounds of the clip (nothing finite rejected) are returned as
    ``(-inf, inf)``; NaN in ``lo`` therefore only marks an *uncertain* lane, which the
    caller must recompute. Returns the number of uncertain lanes.
    """
    buf, pairs, n_vals, stats, counts = scratch
    tol = stats[0]
    total = stats[1]
    acc = stats[2]
    done = stats[3]  # 1.0 for a lane decided by the first pass
    # Sort every lane (+inf, the non-finite samples, last).
    for c in range(pairs.shape[0]):
        i = pairs[c, 0]
        j = pairs[c, 1]
        for b in range(BLOCK):
            x = buf[i, b]
            y = buf[j, b]
            small = x < y
            buf[i, b] = x if small else y
            buf[j, b] = y if small else x
    # First pass of every lane at once (vectorised across lanes): finite count and mean,
    # then the sum of squared deviations, in sorted order.
    for b in range(BLOCK):
        total[b] = 0.0
        acc[b] = 0.0
    for k in range(n_vals):
        for b in range(BLOCK):
            x = np.float64(buf[k, b])
            finite = x < np.inf
            total[b] += x if finite else 0.0
            acc[b] += 1.0 if finite else 0.0
    for b in range(BLOCK):
        counts[b] = np.int64(acc[b])
        total[b] = total[b] / max(acc[b], 1.0)
        acc[b] = 0.0
    for k in range(n_vals):
        for b in range(BLOCK):
            x = np.float64(buf[k, b])
            d = total[b] - x
            acc[b] += d * d if x < np.inf else 0.0
    full = n_vals > 0
    for b in range(BLOCK):
        full &= counts[b] == n_vals
    if full:  # the usual block, no NaN: one sample count for all lanes, so this vectorises
        for b in range(BLOCK):
            lo[b], hi[b], tol[b] = _first_bounds(buf, b, n_vals, acc[b], sigma)
    else:
        for b in range(BLOCK):
            if counts[b] > 0:
                lo[b], hi[b], tol[b] = _first_bounds(buf, b, counts[b], acc[b], sigma)
    # Lanes with nothing outside the bounds and certain extremes converge at once;
    # ``total`` is reused as the count of samples outside the bounds.
    for b in range(BLOCK):
        total[b] = 0.0
    for k in range(n_vals):
        for b in range(BLOCK):
            x = np.float64(buf[k, b])
            outside = (x < lo[b]) | ((x > hi[b]) & (x < np.inf))
            total[b] += 1.0 if outside else 0.0
    for b in range(BLOCK):
        n = counts[b]
        done[b] = 0.0
        if n > 0 and sigma >= 0.0 and total[b] == 0.0:
            low_end = _at(buf, 0, b)
            high_end = _at(buf, n - 1, b)
            if low_end == high_end or not (abs(low_end - lo[b]) <= tol[b]
                                           or abs(high_end - hi[b]) <= tol[b]):
                done[b] = 1.0
    # The remaining lanes, one at a time: shrink the sorted window pass by pass.
    n_uncertain = 0
    for b in range(BLOCK):
        if done[b] != 0.0:
            continue
        n = counts[b]
        if n == 0:
            lo[b] = -np.inf
            hi[b] = np.inf
            continue
        if sigma < 0.0:
            lo[b] = np.nan
            n_uncertain += 1
            continue
        if buf[0, b] == buf[n - 1, b]:
            # A constant lane: every order of summing identical values gives the same
            # sums, so the first pass's bounds are exactly the literal algorithm's.
            continue
        low = lo[b]
        high = hi[b]
        eps = tol[b]
        start = 0
        stop = n
        passes = 0
        final = False  # True once the last bounds are known: check the whole lane
        while True:
            first = 0 if final else start
            last = n if final else stop
            new_start = first
            while new_start < last and _at(buf, new_start, b) < low:
                new_start += 1
            new_stop = last
            while new_stop > new_start and _at(buf, new_stop - 1, b) > high:
                new_stop -= 1
            if ((new_start > first and abs(_at(buf, new_start - 1, b) - low) <= eps)
                    or (new_start < last and abs(_at(buf, new_start, b) - low) <= eps)
                    or (new_stop > new_start and abs(_at(buf, new_stop - 1, b) - high) <= eps)
                    or (new_stop < last and abs(_at(buf, new_stop, b) - high) <= eps)):
                low = np.nan  # a decision too close to call
                break
            if final or (new_start == start and new_stop == stop):
                if final:
                    break
                final = True
                continue
            start = new_start
            stop = new_stop
            passes += 1
            if start == stop and reject:
                final = True
                continue
            if pass_limit != -1 and passes >= pass_limit:
                final = True
                continue
            if start == stop:  # everything rejected: NaN bounds keep nothing finite
                low = -np.inf
                high = np.inf
                break
            w = stop - start
            med = _median(buf, b, start, stop)
            constant = buf[start, b] == buf[stop - 1, b]
            if constant:
                # A constant window: left-to-right sums of identical values are the
                # literal algorithm's sums, so the bounds are exact (no tolerance).
                v = _at(buf, start, b)
                mean = 0.0
                for i in range(w):
                    mean += v
                mean = mean / w
                sq = 0.0
                for i in range(w):
                    sq += (mean - v) * (mean - v)
            else:
                mean = _window_sum(buf, b, start, stop, 0.0, False) / w
                sq = _window_sum(buf, b, start, stop, mean, True)
            std = math.sqrt(sq / w)
            big = max(abs(_at(buf, start, b)), abs(_at(buf, stop - 1, b)))
            low = med - sigma * std
            high = med + sigma * std
            eps = -1.0 if constant else _tolerance(w, sq, big, med, std, sigma)
        if np.isnan(low):
            n_uncertain += 1
        lo[b] = low
        hi[b] = high
    return n_uncertain
