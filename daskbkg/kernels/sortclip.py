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
within ``tol`` of a bound, the kernel abandons the lane and recomputes its bounds with
the literal Wirth-order algorithm (:func:`daskbkg.kernels.fast.lane_bounds_exact`).
Otherwise every keep/reject decision is provably the same as the reference's, so the
masks, and therefore every output bit, are identical. On real data the fallback is
very rare; constant lanes and hand-made ties take it.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from .fast import _jit, lane_bounds_exact

__all__ = ["BLOCK", "network", "block_bounds"]

#: Lanes sorted together (the vector width of the sorting network loop).
BLOCK = 64
_U = 2.0**-53


@functools.lru_cache(maxsize=None)
def network(n: int) -> tuple[int, np.ndarray]:
    """Batcher odd-even merge-sort comparators for ``n`` values.

    Returns
    -------
    npad : int
        ``n`` rounded up to a power of two (the lanes are padded with +inf).
    pairs : numpy.ndarray of int32, shape (n_comparators, 2)
        Compare-exchange index pairs ``(i, j)`` with ``i < j``.
    """
    npad = 1
    while npad < max(n, 1):
        npad *= 2
    pairs = []
    p = 1
    while p < npad:
        k = p
        while k >= 1:
            for j in range(k % p, npad - k, 2 * k):
                for i in range(min(k, npad - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return npad, np.array(pairs, dtype=np.int32).reshape(-1, 2)


@_jit
def _sort_block(buf, pairs, m):
    """Sort the first ``m`` columns of ``buf`` (one lane per column) with the network."""
    for c in range(pairs.shape[0]):
        i = pairs[c, 0]
        j = pairs[c, 1]
        for b in range(m):
            x = buf[i, b]
            y = buf[j, b]
            small = x < y
            buf[i, b] = x if small else y
            buf[j, b] = y if small else x


@_jit
def _sum4(buf, b, start, stop, center, square):
    """Sum of ``buf[start:stop, b]`` (or of squared deviations from ``center``).

    Four interleaved accumulators break the addition dependency chain; any summation
    order obeys the error bound used for ``tol``.
    """
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    i = start
    while i + 4 <= stop:
        x0 = buf[i, b]
        x1 = buf[i + 1, b]
        x2 = buf[i + 2, b]
        x3 = buf[i + 3, b]
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
        x0 = buf[i, b]
        if square:
            x0 = (center - x0) * (center - x0)
        s0 += x0
        i += 1
    return (s0 + s1) + (s2 + s3)


@_jit
def _near(x, bound, tol):
    """True if ``x`` is within ``tol`` of ``bound`` (then the decision is not certain)."""
    return abs(x - bound) <= tol


@_jit
def _sorted_bounds(buf, b, n, sigma, pass_limit, reject):
    """Clip bounds of the sorted lane ``buf[0:n, b]``; ``ok`` False means "not certain"."""
    if n == 0:
        return np.nan, np.nan, True
    if sigma < 0.0:
        return np.nan, np.nan, False
    start = 0
    stop = n
    passes = 0
    while True:
        m = stop - start
        if m == 0:
            return np.nan, np.nan, True
        half = m // 2
        if m % 2 == 1:
            med = buf[start + half, b]
        else:
            med = 0.5 * (buf[start + half, b] + buf[start + half - 1, b])
        mean = _sum4(buf, b, start, stop, 0.0, False) / m
        acc = _sum4(buf, b, start, stop, mean, True)
        std = math.sqrt(acc / m)
        lo = med - sigma * std
        hi = med + sigma * std
        big = max(abs(buf[start, b]), abs(buf[stop - 1, b]))
        d_acc = 2.0 * (m + 3) * _U * acc + 12.0 * m * m * m * _U * _U * big * big
        d_std = math.sqrt(d_acc / m)
        if std > 0.0:
            d_std = min(d_std, d_acc / (m * std))
        tol = 4.0 * (sigma * d_std + 4.0 * _U * (abs(med) + sigma * std))
        new_start = start
        while new_start < stop and buf[new_start, b] < lo:
            new_start += 1
        new_stop = stop
        while new_stop > new_start and buf[new_stop - 1, b] > hi:
            new_stop -= 1
        if new_start > start and _near(buf[new_start - 1, b], lo, tol):
            return lo, hi, False
        if new_start < stop and _near(buf[new_start, b], lo, tol):
            return lo, hi, False
        if new_stop > new_start and _near(buf[new_stop - 1, b], hi, tol):
            return lo, hi, False
        if new_stop < stop and _near(buf[new_stop, b], hi, tol):
            return lo, hi, False
        if new_start == start and new_stop == stop:
            break
        start = new_start
        stop = new_stop
        if start == stop and reject:
            break
        passes += 1
        if pass_limit != -1 and passes >= pass_limit:
            break
    # The final mask applies the last bounds to every sample: check the whole lane.
    first = 0
    while first < n and buf[first, b] < lo:
        first += 1
    last = n
    while last > 0 and buf[last - 1, b] > hi:
        last -= 1
    if first > 0 and _near(buf[first - 1, b], lo, tol):
        return lo, hi, False
    if first < n and _near(buf[first, b], lo, tol):
        return lo, hi, False
    if last > 0 and _near(buf[last - 1, b], hi, tol):
        return lo, hi, False
    if last < n and _near(buf[last, b], hi, tol):
        return lo, hi, False
    return lo, hi, True


@_jit
def block_bounds(vals, m, buf, pairs, lane, sigma, pass_limit, reject, lo, hi):
    """Clip bounds of ``m`` lanes stored as columns of ``vals`` (float64, stack order).

    ``buf`` (npad, BLOCK) and ``lane`` (len(vals),) are scratch arrays. Results go to
    ``lo[0:m]`` and ``hi[0:m]``; they give exactly the reference's keep/reject decisions.
    """
    n_vals = vals.shape[0]
    npad = buf.shape[0]
    for b in range(m):
        count = 0
        for k in range(n_vals):
            if np.isfinite(vals[k, b]):
                count += 1
        lo[b] = count  # remember the finite count until the bounds overwrite it
    for k in range(n_vals):
        for b in range(m):
            x = vals[k, b]
            buf[k, b] = x if np.isfinite(x) else np.inf
    for k in range(n_vals, npad):
        for b in range(m):
            buf[k, b] = np.inf
    _sort_block(buf, pairs, m)
    for b in range(m):
        n = int(lo[b])
        low, high, ok = _sorted_bounds(buf, b, n, sigma, pass_limit, reject)
        if not ok:
            for k in range(n_vals):
                lane[k] = vals[k, b]
            low, high = lane_bounds_exact(lane, sigma, pass_limit, reject)
        lo[b] = low
        hi[b] = high
