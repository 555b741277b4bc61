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

__all__ = ["BLOCK", "network", "block_bounds", "kept"]

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
def kept(x, lo, hi):
    """Branch-free keep test of the final mask: finite and inside the bounds."""
    return (x >= lo) & (x <= hi) & (abs(x) < np.inf)


@_jit
def _near(x, bound, tol):
    """True if ``x`` is within ``tol`` of ``bound`` (then the decision is not certain)."""
    return abs(x - bound) <= tol


@_jit
def _tolerance(m, acc, big, med, std, sigma):
    """Bound on how far this pass's bounds can be from the literal algorithm's.

    Sums of the same ``m`` values in two orders differ by at most ``(m-1)·u·Σ|x|``; the
    mean, the squared deviations and the square root propagate that difference (see the
    module docstring). A factor 4 of safety is applied.
    """
    d_acc = 2.0 * (m + 3) * _U * acc + 12.0 * m * m * m * _U * _U * big * big
    d_std = math.sqrt(d_acc / m)
    if std > 0.0:
        d_std = min(d_std, d_acc / (m * std))
    return 4.0 * (sigma * d_std + 4.0 * _U * (abs(med) + sigma * std))


@_jit
def _pass_bounds(buf, b, start, stop, sigma):
    """Bounds (lo, hi, tol) of one pass over the sorted window ``buf[start:stop, b]``."""
    m = stop - start
    half = m // 2
    if m % 2 == 1:
        med = buf[start + half, b]
    else:
        med = 0.5 * (buf[start + half, b] + buf[start + half - 1, b])
    mean = _sum4(buf, b, start, stop, 0.0, False) / m
    acc = _sum4(buf, b, start, stop, mean, True)
    std = math.sqrt(acc / m)
    big = max(abs(buf[start, b]), abs(buf[stop - 1, b]))
    return med - sigma * std, med + sigma * std, _tolerance(m, acc, big, med, std, sigma)


@_jit
def _certain_window(buf, b, start, stop, lo, hi, tol):
    """Survivors ``[new_start, new_stop)`` of a pass, and whether every decision is certain."""
    new_start = start
    while new_start < stop and buf[new_start, b] < lo:
        new_start += 1
    new_stop = stop
    while new_stop > new_start and buf[new_stop - 1, b] > hi:
        new_stop -= 1
    ok = not (
        (new_start > start and _near(buf[new_start - 1, b], lo, tol))
        or (new_start < stop and _near(buf[new_start, b], lo, tol))
        or (new_stop > new_start and _near(buf[new_stop - 1, b], hi, tol))
        or (new_stop < stop and _near(buf[new_stop, b], hi, tol))
    )
    return new_start, new_stop, ok


@_jit
def _sorted_bounds(buf, b, n, lo, hi, tol, sigma, pass_limit, reject):
    """Finish the clip of the sorted lane ``buf[0:n, b]`` whose first pass gave (lo, hi, tol).

    Returns the final bounds and ``ok``; ``ok`` False means some decision was too close to
    call and the caller must use the literal algorithm.
    """
    if n == 0:
        return np.nan, np.nan, True
    if sigma < 0.0:
        return np.nan, np.nan, False
    if buf[0, b] == buf[n - 1, b]:
        # A constant lane: every order of summing identical values gives the same sums,
        # so (lo, hi) are exactly the literal algorithm's, and lo <= x <= hi keeps all.
        return lo, hi, True
    start = 0
    stop = n
    passes = 0
    while True:
        new_start, new_stop, ok = _certain_window(buf, b, start, stop, lo, hi, tol)
        if not ok:
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
        if start == stop:
            return np.nan, np.nan, True
        lo, hi, tol = _pass_bounds(buf, b, start, stop, sigma)
    # The final mask applies the last bounds to every sample: check the whole lane.
    first, last, ok = _certain_window(buf, b, 0, n, lo, hi, tol)
    return lo, hi, ok


@_jit
def _first_pass(buf, counts, m, sigma, lo, hi, tol, total, acc, done):
    """First pass of every lane of the block at once (vectorised across lanes).

    ``done[b]`` is set for lanes whose clip is finished and certain after this pass.
    """
    n_rows = buf.shape[0]
    for b in range(m):
        total[b] = 0.0
        acc[b] = 0.0
    for k in range(n_rows):
        for b in range(m):
            total[b] += buf[k, b] if k < counts[b] else 0.0
    for b in range(m):
        total[b] = total[b] / max(counts[b], 1)  # the mean
    for k in range(n_rows):
        for b in range(m):
            d = total[b] - buf[k, b]
            acc[b] += d * d if k < counts[b] else 0.0
    for b in range(m):
        n = counts[b]
        if n == 0:
            continue
        half = n // 2
        med = buf[half, b] if n % 2 == 1 else 0.5 * (buf[half, b] + buf[half - 1, b])
        std = math.sqrt(acc[b] / n)
        big = max(abs(buf[0, b]), abs(buf[n - 1, b]))
        lo[b] = med - sigma * std
        hi[b] = med + sigma * std
        tol[b] = _tolerance(n, acc[b], big, med, std, sigma)
    # Lanes that converge at once (nothing outside the bounds) and whose extreme values
    # are certain are finished here, vectorised; ``total`` is reused as the count of
    # values outside the bounds.
    for b in range(m):
        total[b] = 0.0
    for k in range(n_rows):
        for b in range(m):
            x = buf[k, b]
            outside = (k < counts[b]) & ((x < lo[b]) | (x > hi[b]))
            total[b] += 1.0 if outside else 0.0
    for b in range(m):
        n = counts[b]
        done[b] = False
        if n == 0 or sigma < 0.0 or total[b] != 0.0:
            continue
        low_end, high_end = buf[0, b], buf[n - 1, b]
        done[b] = low_end == high_end or not (_near(low_end, lo[b], tol[b])
                                              or _near(high_end, hi[b], tol[b]))


@_jit
def block_bounds(vals, m, buf, pairs, lane, sigma, pass_limit, reject, lo, hi):
    """Clip bounds of ``m`` lanes stored as columns of ``vals`` (float64, stack order).

    ``buf`` (npad, BLOCK) and ``lane`` (len(vals),) are scratch arrays. Results go to
    ``lo[0:m]`` and ``hi[0:m]``; they give exactly the reference's keep/reject decisions
    through :func:`kept`. NaN bounds (nothing finite rejected) are returned as
    ``(-inf, inf)`` so that the test needs no branch.
    """
    n_vals = vals.shape[0]
    npad = buf.shape[0]
    counts = np.zeros(BLOCK, dtype=np.int64)
    tol = np.empty(BLOCK, dtype=np.float64)
    total = np.empty(BLOCK, dtype=np.float64)
    acc = np.empty(BLOCK, dtype=np.float64)
    done = np.empty(BLOCK, dtype=np.bool_)
    for k in range(n_vals):
        for b in range(m):
            x = vals[k, b]
            finite = np.isfinite(x)
            buf[k, b] = x if finite else np.inf
            counts[b] += 1 if finite else 0
    for k in range(n_vals, npad):
        for b in range(m):
            buf[k, b] = np.inf
    _sort_block(buf, pairs, m)
    _first_pass(buf[:n_vals], counts, m, sigma, lo, hi, tol, total, acc, done)
    for b in range(m):
        if done[b]:
            low, high, ok = lo[b], hi[b], True
        else:
            low, high, ok = _sorted_bounds(buf, b, counts[b], lo[b], hi[b], tol[b], sigma,
                                           pass_limit, reject)
        if not ok:
            for k in range(n_vals):
                lane[k] = vals[k, b]
            low, high = lane_bounds_exact(lane, sigma, pass_limit, reject)
        if np.isnan(low):  # NaN bounds reject nothing finite: the same as (-inf, inf)
            low, high = -np.inf, np.inf
        lo[b] = low
        hi[b] = high
