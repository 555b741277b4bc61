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

import functools
import math

import numba
import numpy as np

from .fast import _jit


__all__ = ["BLOCK", "block_bounds", "block_scratch", "network"]

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


def block_scratch(n_rows: int) -> tuple:
    """Arrays shared by :func:`block_bounds` and its caller for lanes of ``n_rows`` samples.

    Returns ``(vals, buf, pairs)``: ``vals`` (n_rows, BLOCK) receives the lanes (one per
    column, stack order), ``buf`` is the padded sorting space and ``pairs`` the network.
    """
    npad, pairs = network(n_rows)
    return (np.empty((n_rows, BLOCK), dtype=np.float64),
            np.empty((npad, BLOCK), dtype=np.float64), pairs)


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


@numba.njit(inline="always")
def _first_bounds(buf, b, n, sq, sigma):
    """Bounds and tolerance of the first pass of sorted lane ``b`` (``n`` finite samples,
    ``sq`` the sum of their squared deviations from the mean)."""
    half = n // 2
    med = buf[half, b] if n % 2 == 1 else 0.5 * (buf[half, b] + buf[half - 1, b])
    std = math.sqrt(sq / n)
    big = max(abs(buf[0, b]), abs(buf[n - 1, b]))
    return med - sigma * std, med + sigma * std, _tolerance(n, sq, big, med, std, sigma)


@_jit
def block_bounds(m, sigma, pass_limit, reject, scratch, lo, hi):
    """Clip bounds of the first ``m`` lanes held as columns of ``scratch[0]``.

    ``scratch`` comes from :func:`block_scratch`; the lanes are float64 in stack order.
    Results go to ``lo[0:m]`` and ``hi[0:m]`` (float64, at least ``BLOCK`` long) and give exactly the reference's
    keep/reject decisions through ``lo <= x <= hi`` for finite ``x``. NaN bounds of the
    clip (nothing finite rejected) are returned as ``(-inf, inf)``; NaN in ``lo``
    therefore only marks an *uncertain* lane, which the caller must recompute. Returns
    the number of uncertain lanes.
    """
    vals, buf, pairs = scratch
    # Locally allocated working arrays: the compiler knows they alias nothing, which
    # lets it vectorise the loops across lanes.
    counts = np.empty(BLOCK, dtype=np.int64)
    tol = np.empty(BLOCK, dtype=np.float64)
    total = np.empty(BLOCK, dtype=np.float64)
    acc = np.empty(BLOCK, dtype=np.float64)
    done = np.empty(BLOCK, dtype=np.bool_)
    n_vals = vals.shape[0]
    npad = buf.shape[0]
    # Finite samples first, padded with +inf, then sorted by the network.
    for b in range(m):
        counts[b] = 0
    for k in range(n_vals):
        for b in range(m):
            x = vals[k, b]
            finite = np.isfinite(x)
            buf[k, b] = x if finite else np.inf
            counts[b] += 1 if finite else 0
    for k in range(n_vals, npad):
        for b in range(m):
            buf[k, b] = np.inf
    for c in range(pairs.shape[0]):
        i = pairs[c, 0]
        j = pairs[c, 1]
        for b in range(m):
            x = buf[i, b]
            y = buf[j, b]
            small = x < y
            buf[i, b] = x if small else y
            buf[j, b] = y if small else x
    # First pass of every lane at once (vectorised across lanes): mean, then the sum of
    # squared deviations, in sorted order.
    for b in range(m):
        total[b] = 0.0
        acc[b] = 0.0
    for k in range(n_vals):
        for b in range(m):
            total[b] += buf[k, b] if k < counts[b] else 0.0
    for b in range(m):
        total[b] = total[b] / max(counts[b], 1)
    for k in range(n_vals):
        for b in range(m):
            d = total[b] - buf[k, b]
            acc[b] += d * d if k < counts[b] else 0.0
    full = n_vals > 0
    for b in range(m):
        full &= counts[b] == n_vals
    if full:  # the usual block, no NaN: one sample count for all lanes, so this vectorises
        for b in range(m):
            lo[b], hi[b], tol[b] = _first_bounds(buf, b, n_vals, acc[b], sigma)
    else:
        for b in range(m):
            if counts[b] > 0:
                lo[b], hi[b], tol[b] = _first_bounds(buf, b, counts[b], acc[b], sigma)
    # Lanes with nothing outside the bounds and certain extremes converge at once;
    # ``total`` is reused as the count of samples outside the bounds.
    for b in range(m):
        total[b] = 0.0
    for k in range(n_vals):
        for b in range(m):
            x = buf[k, b]
            outside = (k < counts[b]) & ((x < lo[b]) | (x > hi[b]))
            total[b] += 1.0 if outside else 0.0
    for b in range(m):
        n = counts[b]
        done[b] = False
        if n > 0 and sigma >= 0.0 and total[b] == 0.0:
            low_end = buf[0, b]
            high_end = buf[n - 1, b]
            done[b] = low_end == high_end or not (abs(low_end - lo[b]) <= tol[b]
                                                  or abs(high_end - hi[b]) <= tol[b])
    # The remaining lanes, one at a time: shrink the sorted window pass by pass.
    n_uncertain = 0
    for b in range(m):
        if done[b]:
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
            while new_start < last and buf[new_start, b] < low:
                new_start += 1
            new_stop = last
            while new_stop > new_start and buf[new_stop - 1, b] > high:
                new_stop -= 1
            if ((new_start > first and abs(buf[new_start - 1, b] - low) <= eps)
                    or (new_start < last and abs(buf[new_start, b] - low) <= eps)
                    or (new_stop > new_start and abs(buf[new_stop - 1, b] - high) <= eps)
                    or (new_stop < last and abs(buf[new_stop, b] - high) <= eps)):
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
            half = w // 2
            if w % 2 == 1:
                med = buf[start + half, b]
            else:
                med = 0.5 * (buf[start + half, b] + buf[start + half - 1, b])
            constant = buf[start, b] == buf[stop - 1, b]
            if constant:
                # A constant window: left-to-right sums of identical values are the
                # literal algorithm's sums, so the bounds are exact (no tolerance).
                v = buf[start, b]
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
            big = max(abs(buf[start, b]), abs(buf[stop - 1, b]))
            low = med - sigma * std
            high = med + sigma * std
            eps = -1.0 if constant else _tolerance(w, sq, big, med, std, sigma)
        if np.isnan(low):
            n_uncertain += 1
        lo[b] = low
        hi[b] = high
    return n_uncertain
