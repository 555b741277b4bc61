"""Small shared helpers for the end-to-end tests: tiny JWST-style exposures in ``tmp_path``.

The defaults follow the oracle tables of the algorithm page (A.9): MIRI,
``SUBSTRT = (1, 1)``, window keywords equal to the array shape, ERR 1 and DQ 0.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from daskbkg.datasets import write_exposure

__all__ = [
    "f32",
    "write",
    "const",
    "sha256",
    "hashes",
    "read_fits",
    "listing",
    "assert_bits_equal",
    "same_outputs",
    "comparable_bytes",
    "random_cube_case",
]

_counter = itertools.count()


def f32(value: Any) -> np.float32:
    """Round ``value`` to float32 (the oracles give float32 results)."""
    return np.float32(value)


def const(shape, value, dtype=np.float32) -> np.ndarray:
    """Return an array of ``shape`` filled with ``value``."""
    return np.full(shape, value, dtype=dtype)


def write(folder: os.PathLike | str, sci: Any, err: Any = 1.0, dq: Any = 0, *,
          name: str | None = None, instrument: str = "MIRI", substrt=(1, 1),
          subsize=None, window_keywords: bool = True, **kwargs) -> Path:
    """Write one tiny exposure with the oracle defaults and return its path.

    ``sci`` is an array (2-D or 3-D). ``err`` and ``dq`` may be scalars (broadcast to the
    SCI shape) or arrays. Every other keyword goes to
    :func:`daskbkg.datasets.write_exposure`.
    """
    sci = np.asarray(sci, dtype=np.float32)
    err = np.broadcast_to(np.asarray(err, dtype=np.float32), sci.shape).copy()
    dq = np.broadcast_to(np.asarray(dq, dtype=np.uint32), sci.shape).copy()
    if name is None:
        suffix = "rateints" if sci.ndim == 3 else "rate"
        name = f"exp{next(_counter):04d}_{suffix}.fits"
    return write_exposure(Path(folder) / name, sci, err, dq, instrument=instrument,
                          substrt=substrt, subsize=subsize, window_keywords=window_keywords,
                          **kwargs)


def sha256(path: os.PathLike | str) -> str:
    """Hex SHA-256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def hashes(paths) -> dict[str, str]:
    """SHA-256 of every path, keyed by the path as a string."""
    return {str(p): sha256(p) for p in paths}


def read_fits(path: os.PathLike | str) -> dict[str, Any]:
    """Return data (copies) and headers of every HDU by EXTNAME, plus ``"_order"``."""
    out: dict[str, Any] = {"_order": []}
    with fits.open(path) as hdul:
        for hdu in hdul:
            out["_order"].append(hdu.name)
            data = hdu.data
            out[hdu.name] = (None if data is None else np.array(data), hdu.header.copy())
    return out


def listing(folder: os.PathLike | str) -> list[str]:
    """Sorted names in ``folder`` (hidden files included).

    The campaign's completion-marker folder ``.daskbkg`` is left out; its files are
    checked separately: markers (``*.json``) and the outcome manifest only, no temporary
    file.
    """
    names = sorted(os.listdir(folder))
    if ".daskbkg" in names:
        names.remove(".daskbkg")
        stray = [n for n in os.listdir(os.path.join(folder, ".daskbkg"))
                 if not n.endswith(".json") and n != "manifest.jsonl"]
        assert not stray, f"stray files in the marker folder: {stray}"
    return names


_DATE_CARD = re.compile(rb"DATE    = '[^']*'")


def comparable_bytes(data: bytes) -> bytes:
    """File bytes with the value of any ``DATE`` card blanked (the time of writing)."""
    return _DATE_CARD.sub(b"DATE    = ''", data)


def same_outputs(folder_a: os.PathLike | str, folder_b: os.PathLike | str) -> list[str]:
    """Assert two output folders hold the same files, byte for byte but for DATE cards.

    Returns the sorted file names (at least one).
    """
    names = listing(folder_a)
    assert names and listing(folder_b) == names, (names, listing(folder_b))
    for name in names:
        a = (Path(folder_a) / name).read_bytes()
        b = (Path(folder_b) / name).read_bytes()
        assert comparable_bytes(a) == comparable_bytes(b), f"{name} differs"
    return names


def assert_bits_equal(actual: np.ndarray, expected: np.ndarray) -> None:
    """Assert identical dtype, shape and bytes (NaN payloads and signed zeros included)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    if actual.tobytes() != expected.tobytes():
        diff = actual.view(np.uint8).reshape(-1) != expected.view(np.uint8).reshape(-1)
        raise AssertionError(
            f"arrays differ bitwise in {int(diff.sum())} bytes; first values "
            f"{actual.reshape(-1)[:8]} vs {expected.reshape(-1)[:8]}"
        )


def random_cube_case(make, seed: int, shape=(2, 16, 9)) -> tuple:
    """A random rateints target and three backgrounds written by ``make`` (a :class:`Maker`).

    Target SCI ~ N(5, 1) with DQ 2; background k ~ N(1, 1) with DQ ``1 << k``.
    """
    rng = np.random.default_rng(seed)
    target = make(rng.normal(5, 1, shape).astype(np.float32), dq=2)
    bkgs = [make(rng.normal(1, 1, shape).astype(np.float32), dq=1 << k) for k in range(3)]
    return target, bkgs


class Maker:
    """Write tiny exposures into one folder (the ``mk`` fixture)."""

    def __init__(self, folder: os.PathLike | str):
        self.folder = Path(folder)

    def __call__(self, sci: Any, err: Any = 1.0, dq: Any = 0, **kwargs) -> Path:
        return write(self.folder, sci, err, dq, **kwargs)

    def const(self, shape, value, err: Any = 1.0, dq: Any = 0, **kwargs) -> Path:
        """Write an exposure whose SCI is ``value`` everywhere."""
        return write(self.folder, const(shape, value), err, dq, **kwargs)
