"""Arrays kept on local disk between jobs: raw native-endian files, read and written by region.

A combined background shared by several products of a campaign is computed once and
stored here, tile by tile, instead of being held in memory while the products run (or
being sent to every worker of a cluster): each product then reads the tiles it needs.
A :class:`ScratchArray` is small and picklable (path, offset, shape, dtype), so the store
tasks and the reading tasks can run in any process that sees the file. Reads go through
the compiled reader (:mod:`daskbkg.io.fitsarray`), writes through
:func:`daskbkg.io.positional.write_at`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .fitsarray import LazyArrayBase, byte_runs, normalize_key, read_byte_runs
from .positional import write_at

__all__ = ["ScratchArray", "create_scratch_file"]

_FLAGS = getattr(os, "O_BINARY", 0)


@dataclass(frozen=True)
class ScratchArray(LazyArrayBase):
    """One C-order native-endian array stored at byte ``offset`` of a local file."""

    path: str
    offset: int
    shape: tuple[int, ...]
    dtype_name: str

    @property
    def nbytes(self) -> int:
        """Size of the whole array in bytes."""
        return int(np.prod(self.shape)) * self.dtype.itemsize

    def _runs(self, key: Any):
        slices, drop = normalize_key(key, self.shape)
        shape = tuple(s.stop - s.start for s in slices)
        return byte_runs(self.shape, self.dtype.itemsize, self.offset, slices), shape, drop

    def __getitem__(self, key: Any) -> np.ndarray:
        runs, shape, drop = self._runs(key)
        out = np.empty(shape, dtype=self.dtype)
        table, pos = [], 0
        for offset, nbytes in runs:
            table.append((offset, nbytes, pos))
            pos += nbytes
        fd = os.open(self.path, os.O_RDONLY | _FLAGS)
        try:
            read_byte_runs([fd] * len(table), [self.path] * len(table), table,
                           out.reshape(-1).view(np.uint8))
        except OSError as exc:
            raise OSError(f"{self.path}: cannot read the scratch array ({exc})") from None
        finally:
            os.close(fd)
        return out.reshape(tuple(n for i, n in enumerate(shape) if i not in drop))

    def __setitem__(self, key: Any, value: Any) -> None:
        runs, shape, _ = self._runs(key)
        data = np.ascontiguousarray(np.broadcast_to(value, shape), dtype=self.dtype)
        flat = data.reshape(-1).view(np.uint8)
        fd = os.open(self.path, os.O_WRONLY | _FLAGS)
        try:
            pos = 0
            for offset, nbytes in runs:
                write_at(fd, flat[pos:pos + nbytes], offset)
                pos += nbytes
        finally:
            os.close(fd)


def create_scratch_file(path: str | os.PathLike,
                        arrays: dict[str, tuple[tuple[int, ...], Any]]) -> dict[str, ScratchArray]:
    """Create ``path`` holding room for each ``name: (shape, dtype)``, one after the other.

    Returns the :class:`ScratchArray` of each name (their values are undefined until
    written). The parent folder is created if needed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out, offset = {}, 0
    for name, (shape, dtype) in arrays.items():
        out[name] = ScratchArray(str(path), offset, tuple(int(n) for n in shape),
                                 np.dtype(dtype).name)
        offset += out[name].nbytes
    with open(path, "wb") as f:
        f.truncate(offset)
    return out
