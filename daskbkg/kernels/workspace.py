"""Memory for the compiled combine kernels, allocated by the Python caller.

The compiled code (:mod:`.sortclip`, :mod:`.blocked`) allocates nothing: every working
array comes from here. That keeps it free of numba's runtime, which is what lets the
same code be linked into a plain shared library (:mod:`.native`). Nothing here imports
numba.
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["BLOCK", "block_scratch", "block_workspace", "network", "rateints_workspace"]

#: Lanes clipped together. Each of the N rows of a tile is then read 1 KiB at a time
#: (float32), long enough for the hardware prefetcher; shorter blocks leave the
#: kernel waiting on memory.
BLOCK = 256


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


def block_scratch(n_rows: int, dtype=np.float64) -> tuple:
    """Working space of :func:`~daskbkg.kernels.sortclip.block_bounds` for lanes of ``n_rows`` samples.

    Returns ``(buf, pairs, n_rows, stats, counts)``: ``buf`` (npad, BLOCK) of ``dtype``
    receives the lanes, one per column, in its first ``n_rows`` rows (the padding rows
    hold +inf and keep it, as sorting leaves the largest values there); ``pairs`` is the
    network; ``stats`` (4, BLOCK) float64 and ``counts`` (BLOCK,) int64 are per-lane
    working rows. ``dtype`` is float32 when every sample is a float32 value, which
    halves the memory traffic and doubles the lanes per vector instruction. All memory
    comes from here, so the compiled code allocates nothing (see :mod:`.native`).
    """
    npad, pairs = network(n_rows)
    return (np.full((npad, BLOCK), np.inf, dtype=dtype), pairs, n_rows,
            np.zeros((4, BLOCK), dtype=np.float64), np.zeros(BLOCK, dtype=np.int64))


def block_workspace(n_bkg: int) -> tuple:
    """Per-block arrays of the combine kernels for ``n_bkg`` backgrounds.

    Returns ``(sums, q, count, squares)``: ``sums`` (4, BLOCK) float64 holds the clip
    bounds and the two sums of the mean of the kept samples, ``q`` (BLOCK,) uint32 the
    ORed DQ, ``count`` (BLOCK,) int32 the kept samples and ``squares`` (n_bkg, BLOCK)
    float32 the ERR² of a rate block.
    """
    return (np.zeros((4, BLOCK), dtype=np.float64), np.zeros(BLOCK, dtype=np.uint32),
            np.zeros(BLOCK, dtype=np.int32), np.zeros((n_bkg, BLOCK), dtype=np.float32))


def rateints_workspace(n_bkg: int) -> tuple:
    """Extra arrays of the rateints kernel: ``(d, e, int_sum)``.

    ``d`` and ``e`` (n_bkg, BLOCK) float64 receive the clipped integration means of SCI
    and ERR²; ``int_sum`` (BLOCK,) float32 is their running sum.
    """
    means = np.zeros((2, n_bkg, BLOCK), dtype=np.float64)
    return means[0], means[1], np.zeros(BLOCK, dtype=np.float32)
