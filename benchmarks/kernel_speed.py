"""Single-thread speed of the default combine kernel on one tile (best of several runs).

Run with ``python benchmarks/kernel_speed.py``. Two tiles, drawn once with a fixed seed:

* rate: N = 32 backgrounds × 64 rows × 2048 columns;
* rateints: N = 8 backgrounds × T = 4 integrations × 64 rows × 2048 columns.

Both are Gaussian noise around a smooth level with a few percent of outliers and NaN,
like placed background frames. The time printed is the best of ``--repeat`` calls of
``daskbkg.kernels.combine_tile`` (sigma 3, unlimited passes), in milliseconds, after one
untimed call.

Measured on the development machine (2 vCPUs shared with other jobs, x86-64 Xeon with
AVX2, gcc 12, numpy 2.4, Python 3.11), best of 10 calls, old and new run alternately in
the same session (2026-12-06):

* before, numba sort-once kernel through its native library (commit f9b9025, after
  ``preload()``; numba compiles for the host CPU): rate 24.0 ms, rateints 40.2 ms
  (best on a quiet machine; 24.0-27.5 and 39.5-41.0 in the later alternating runs);
* after, C extension with its AVX2 clone (what runs on this machine): rate 14.5 ms,
  rateints 24.0 ms (14.5-16.8 and 24.0-25.7);
* after, C extension built for the x86-64 baseline only (``CFLAGS=-DDBK_NO_CLONES``,
  standing for wheels without the AVX2 clone): rate 19.7 ms, rateints 35.1 ms.

That is 0.60x of the former time for both tiles on this machine (0.82x and 0.87x for
the baseline-only build).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

#: Best-of times in milliseconds on the development machine (see the module docstring).
RESULTS = {
    "numba sort-once, native library (f9b9025)": (24.0, 40.2),
    "C extension, AVX2 clone": (14.5, 24.0),
    "C extension, baseline x86-64 (-DDBK_NO_CLONES)": (19.7, 35.1),
}

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
