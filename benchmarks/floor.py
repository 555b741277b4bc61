"""The I/O floor: interpreter + imports + reading every input tile once + writing outputs.

No computation: the target's own SCI/DQ are written as the "output". Inputs are read
with daskbkg's reader in full-width row strips on all cores, each file once; strips of
the backgrounds are dropped as soon as they are read (a streaming pass, as daskbkg
does), so the floor pays no page faults for holding the whole stack.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dask.array  # noqa: E402,F401  (imports are part of the floor)
import numpy as np  # noqa: E402
from astropy.io import fits  # noqa: E402

import daskbkg.kernels  # noqa: E402,F401  (the compiled kernels: part of the floor)
from benchmarks._inputs import products  # noqa: E402
from daskbkg.io import read_exposure  # noqa: E402

ROWS = 64


def _read_all(exposure, keep: bool = False) -> dict:
    """Read every strip of SCI, ERR and DQ once; return the arrays only if ``keep``."""
    out = {}
    for ext in ("sci", "err", "dq"):
        reader = getattr(exposure, ext)
        data = np.empty(reader.shape, reader.dtype) if keep else None
        ny = reader.shape[-2]
        for r0 in range(0, ny, ROWS):
            key = (Ellipsis, slice(r0, min(r0 + ROWS, ny)), slice(None))
            strip = reader[key]
            if keep:
                data[key] = strip
        out[ext] = data
    return out


def main() -> None:
    pairs, outdir = products()
    targets = [t for t, _ in pairs]
    files = sorted({f for t, b in pairs for f in [t, *b]})
    exposures = {f: read_exposure(f) for f in files}
    backgrounds = [f for f in files if f not in set(targets)]
    with ThreadPoolExecutor(os.cpu_count()) as pool:
        list(pool.map(lambda f: _read_all(exposures[f]), backgrounds))
    for target in targets:  # read once, kept for the output
        data = _read_all(exposures[target], keep=True)
        with fits.open(target) as hdul:
            hdul["SCI"].data = data["sci"]
            hdul["DQ"].data = data["dq"]
            hdul.writeto(outdir / Path(target).name, overwrite=True)


if __name__ == "__main__":
    main()
