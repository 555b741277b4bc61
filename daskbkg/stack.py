"""Lazy, picklable arrays that present the backgrounds aligned to the target.

:class:`PlacedArray` shows one background extension as an array of the target's shape
(padded with NaN or 0) following a :class:`~daskbkg.geometry.Placement`; reading a tile
reads only the part of the background's overlap that falls in the tile.
:class:`BackgroundStack` stacks several of them along a new leading axis so that one dask
block holds the whole stack axis and one task reads every background of a tile.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .geometry import Placement
from .io.fitsarray import FitsArray, LazyArrayBase, RunBatch, normalize_key

__all__ = ["PlacedArray", "BackgroundStack"]


@dataclass(frozen=True)
class PlacedArray(LazyArrayBase):
    """One background extension placed into a target-shaped array.

    Parameters
    ----------
    source : FitsArray, ConstantArray or None
        The background's lazy array; None for a background that does not overlap (the
        array is then entirely ``fill``).
    placement : Placement or None
        Where the overlap goes (None together with ``source=None``).
    shape : tuple of int
        Shape of the placed array.
    fill : float or int
        Value outside the placed region (NaN for SCI/ERR, 0 for DQ).
    dtype_name : str
        Dtype of the values.
    """

    source: FitsArray | None
    placement: Placement | None
    shape: tuple[int, ...]
    fill: float
    dtype_name: str

    def read(self, slices: tuple[slice, ...]) -> np.ndarray:
        """Read the region ``slices`` (one step-1 slice per axis)."""
        out = np.empty(tuple(s.stop - s.start for s in slices), dtype=self.dtype)
        self.read_into(slices, out)
        return out

    def read_into(self, slices: tuple[slice, ...], out: np.ndarray) -> None:
        """Fill ``out`` (shaped like the region ``slices``) with the placed values."""
        region = self._source_region(slices)
        if region is None:
            out.fill(self.fill)
            return
        out_index, src_index, broadcast = region
        covered = all(
            o.start == 0 and o.stop == n for o, n in zip(out_index, out.shape)
        )
        if not covered:
            out.fill(self.fill)
        target = out[out_index]
        if any(broadcast):
            target[...] = self.source[src_index]  # NumPy broadcasts the length-1 axes
        else:
            self.source.read_into(src_index, target)

    def queue_into(self, slices: tuple[slice, ...], out: np.ndarray, batch: RunBatch) -> bool:
        """Queue the region ``slices`` for ``out`` in ``batch`` if the background covers it.

        Covering means no fill and no broadcast; otherwise nothing is queued and the
        result is False.
        """
        region = self._source_region(slices)
        if region is None or any(region[2]) or not isinstance(self.source, FitsArray):
            return False
        out_index, src_index, _ = region
        if any(o.start != 0 or o.stop != n for o, n in zip(out_index, out.shape)):
            return False
        return batch.add(self.source, src_index, out)

    def _source_region(self, slices):
        """Where the request meets the placed overlap: (out index, source slices, broadcast)."""
        if self.source is None or self.placement is None:
            return None
        p = self.placement
        out_index, src_index = [], []
        for s, (d0, d1), (s0, _), bcast in zip(slices, p.dest, p.src, p.broadcast):
            lo, hi = max(s.start, d0), min(s.stop, d1)
            if lo >= hi:
                return None
            out_index.append(slice(lo - s.start, hi - s.start))
            if bcast:
                src_index.append(slice(s0, s0 + 1))
            else:
                src_index.append(slice(s0 + lo - d0, s0 + hi - d0))
        return tuple(out_index), tuple(src_index), p.broadcast

    def __getitem__(self, key: Any) -> np.ndarray:
        slices, drop = normalize_key(key, self.shape)
        out = self.read(slices)
        return out.squeeze(axis=drop) if drop else out


@dataclass(frozen=True)
class BackgroundStack(LazyArrayBase):
    """Several :class:`PlacedArray` of one extension stacked on a new leading axis."""

    members: tuple[PlacedArray, ...]
    shape: tuple[int, ...]
    dtype_name: str

    @classmethod
    def of(cls, members: list[PlacedArray], plane_shape: tuple[int, ...], dtype: str) -> "BackgroundStack":
        """Stack ``members`` whose placed shape is ``plane_shape``."""
        return cls(members=tuple(members), shape=(len(members),) + tuple(plane_shape), dtype_name=dtype)

    def __getitem__(self, key: Any) -> np.ndarray:
        slices, drop = normalize_key(key, self.shape)
        first, rest = slices[0], slices[1:]
        out = np.empty(tuple(s.stop - s.start for s in slices), dtype=self.dtype)
        # Members covering the region whole are read together, in one call per decoding.
        batch = RunBatch(out)
        for k in range(first.start, first.stop):
            member, plane = self.members[k], out[k - first.start]
            if not member.queue_into(rest, plane, batch):
                member.read_into(rest, plane)
        batch.read()
        return out.squeeze(axis=drop) if drop else out
