"""Reference-style baseline: what the reference step computes, the way it computes it.

Every background is loaded whole into float64 stacks, clipped with astropy
``sigma_clip(axis=0, maxiters=None)``, averaged with a masked mean, the errors summed in
quadrature over the kept samples, DQ ORed, and the result subtracted from the target
(rateints: each background clipped over its integrations first). One target at a time,
nothing shared between targets.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from astropy.io import fits  # noqa: E402
from astropy.stats import sigma_clip  # noqa: E402

from benchmarks._inputs import products  # noqa: E402


def _clip(stack):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sigma_clip(stack, sigma=3.0, maxiters=None, axis=0)


def combine(backgrounds: list[str], shape) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(backgrounds)
    d = np.empty((n,) + shape[-2:])
    e = np.empty((n,) + shape[-2:])
    q = np.zeros(shape[-2:], np.uint32)
    for k, path in enumerate(backgrounds):
        with fits.open(path) as hdul:
            sci = hdul["SCI"].data.astype(np.float32)
            err = hdul["ERR"].data.astype(np.float32)
            dq = hdul["DQ"].data
        var = err * err
        if sci.ndim == 3:
            d[k] = _clip(sci).mean(axis=0).filled(0.0)
            e[k] = _clip(var).mean(axis=0).filled(0.0)
            q |= np.bitwise_or.reduce(dq, axis=0)
        else:
            d[k], e[k] = sci, var
            q |= dq
    clipped = _clip(d)
    n_good = (~np.ma.getmaskarray(clipped)).sum(axis=0)
    mean = clipped.mean(axis=0).filled(0.0)
    err = np.sqrt(np.ma.masked_array(e, np.ma.getmaskarray(clipped)).sum(axis=0).filled(0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        err = np.where(n_good > 0, err / n_good, 0.0)
    return mean.astype(np.float32), err.astype(np.float32), q


def main() -> None:
    pairs, outdir = products()
    for target, backgrounds in pairs:
        with fits.open(target) as hdul:
            shape = hdul["SCI"].data.shape
            sci_bk, _, dq_bk = combine(backgrounds, shape)
            hdul["SCI"].data = (hdul["SCI"].data - sci_bk).astype(np.float32)
            hdul["DQ"].data = hdul["DQ"].data | dq_bk
            hdul.writeto(outdir / Path(target).name, overwrite=True)


if __name__ == "__main__":
    main()
