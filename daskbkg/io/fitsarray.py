"""Picklable lazy arrays over one FITS image extension.

A :class:`FitsArray` stores only the path, the byte offset of the data, the shape and the
on-disk encoding. Indexing it reads exactly the requested region with positional reads
from a per-process cache of open file descriptors, and returns a native-endian NumPy
array of the working dtype. The reads are made by a small compiled reader
(``daskbkg/io/src/_readruns.c``) that takes a whole list of byte runs, possibly of many
files (:class:`RunBatch`: one background stack tile is one call), releases the GIL once,
and decodes each run in place: the byte swap of big-endian values and, for JWST DQ arrays
(uint32 stored as int32 with ``BZERO = 2**31``), the sign-bit flip, which is exact.
Every other storage is decoded by :mod:`daskbkg.io.encoding`.

HDUs that cannot be read this way (tile-compressed images) are read through astropy's
``section`` access, also through a per-process cache.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import sys
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._readruns import read_runs
from .encoding import Encoding, convert

__all__ = ["FitsArray", "ConstantArray", "LazyArrayBase", "normalize_key", "close_cached_files"]

_MAX_OPEN = 128
_lock = threading.Lock()
_fds: "OrderedDict[tuple[str, int, int], int]" = OrderedDict()
_busy: dict[tuple[str, int, int], int] = {}  # descriptors in use by reads right now
_hduls: "OrderedDict[str, tuple]" = OrderedDict()  # path -> (HDUList, stream)


def _open_cached(key: tuple[str, int, int]) -> int:
    """The cached read-only descriptor of ``key`` = (path, size, mtime); call under _lock."""
    fd = _fds.get(key)
    if fd is not None:
        _fds.move_to_end(key)
        return fd
    path, size, mtime_ns = key
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    st = os.fstat(fd)
    if st.st_size != size or st.st_mtime_ns != mtime_ns:
        os.close(fd)
        raise OSError(f"{path}: file changed since it was opened (size or mtime differ)")
    _fds[key] = fd
    return fd


def _evict() -> None:
    """Close the least recently used idle descriptors beyond ``_MAX_OPEN``.

    Call under ``_lock``. Descriptors that reads are using are kept, so the cache may
    hold more than ``_MAX_OPEN`` for a moment.
    """
    idle = [key for key in _fds if not _busy.get(key)]
    for key in idle[:max(0, len(_fds) - _MAX_OPEN)]:
        os.close(_fds.pop(key))


@contextlib.contextmanager
def _descriptors(arrays):
    """Descriptors of the files of ``arrays``, pinned while the block runs.

    Each file is opened once per process. The compiled reader uses the descriptors with
    the GIL released, so another thread must not close one meanwhile: its number could
    be reused by a newly opened file.
    """
    keys = [(a.path, a.size, a.mtime_ns) for a in arrays]
    with _lock:
        pinned = []
        try:
            for key in keys:
                _busy[key] = _busy.get(key, 0) + 1
                pinned.append(key)
                _open_cached(key)
        except BaseException:
            _unpin(pinned)
            raise
        fds = [_fds[key] for key in keys]
    try:
        yield fds
    finally:
        with _lock:
            _unpin(keys)


def _unpin(keys) -> None:
    for key in keys:
        _busy[key] -= 1
        if not _busy[key]:
            del _busy[key]
    _evict()


def _cached_hdulist(path: str):
    """Return an astropy HDUList for the fallback reader, opened once per process."""
    from astropy.io import fits

    from .source import open_decoded

    with _lock:
        entry = _hduls.get(path)
        if entry is None:
            # Local file or URL, plain or gzip: astropy reads the decoded stream.
            stream = open_decoded(path)
            entry = (fits.open(stream, memmap=False, lazy_load_hdus=True), stream)
            _hduls[path] = entry
            while len(_hduls) > 16:
                _, old = _hduls.popitem(last=False)
                _close(old)
        return entry[0]


def _close(entry: tuple) -> None:
    """Close a cached HDU list and the stream under it."""
    hdul, stream = entry
    hdul.close()
    stream.close()


def close_cached_files() -> None:
    """Close every file descriptor and HDU list cached by this process."""
    with _lock:
        for fd in _fds.values():
            try:
                os.close(fd)
            except OSError:
                pass
        _fds.clear()
        for entry in _hduls.values():
            _close(entry)
        _hduls.clear()


atexit.register(close_cached_files)


def normalize_key(key: Any, shape: tuple[int, ...]) -> tuple[slice, ...]:
    """Turn an indexing key into one step-1 slice per axis (integers become length-1).

    Returns the slices and, separately, which axes were indexed by an integer (to be
    dropped from the result).
    """
    if not isinstance(key, tuple):
        key = (key,)
    if any(k is Ellipsis for k in key):
        i = next(i for i, k in enumerate(key) if k is Ellipsis)
        fill = (slice(None),) * (len(shape) - len(key) + 1)
        key = key[:i] + fill + key[i + 1 :]
    key = key + (slice(None),) * (len(shape) - len(key))
    if len(key) != len(shape):
        raise IndexError(f"too many indices for an array of {len(shape)} dimensions")
    slices = []
    drop = []
    for axis, (k, n) in enumerate(zip(key, shape)):
        if isinstance(k, slice):
            start, stop, step = k.indices(n)
            if step != 1:
                raise IndexError("FitsArray supports only step-1 slices")
            slices.append(slice(start, max(start, stop)))
        else:
            i = int(k)
            if i < 0:
                i += n
            if not 0 <= i < n:
                raise IndexError(f"index {k} out of range for axis {axis} of size {n}")
            slices.append(slice(i, i + 1))
            drop.append(axis)
    return tuple(slices), tuple(drop)


class LazyArrayBase:
    """``dtype`` and ``ndim`` of the small picklable lazy arrays (``shape``, ``dtype_name``)."""

    shape: tuple[int, ...]
    dtype_name: str

    @property
    def dtype(self) -> np.dtype:
        """Dtype of the values returned by indexing."""
        return np.dtype(self.dtype_name)

    @property
    def ndim(self) -> int:
        """Number of dimensions."""
        return len(self.shape)


@dataclass(frozen=True)
class ConstantArray(LazyArrayBase):
    """A lazy array holding one value everywhere (an extension the file lacks).

    jwst 1.13's data models give an absent ERR or DQ its schema default (0) in the
    shape of SCI; this array stands for it without reading or allocating anything.
    """

    shape: tuple[int, ...]
    dtype_name: str
    value: float = 0

    def __getitem__(self, key: Any) -> np.ndarray:
        slices, drop = normalize_key(key, self.shape)
        shape = tuple(s.stop - s.start for s in slices)
        shape = tuple(n for i, n in enumerate(shape) if i not in drop)
        return np.full(shape, self.value, dtype=self.dtype)

    def read_into(self, slices: tuple[slice, ...], out: np.ndarray) -> None:
        """Fill ``out`` (the region ``slices``) with the value."""
        out.fill(self.value)


@dataclass(frozen=True)
class FitsArray(LazyArrayBase):
    """Lazy, picklable view of one FITS image HDU, decoded to a working dtype.

    Parameters
    ----------
    path : str
        Absolute path of the FITS file.
    hdu_index : int
        Position of the HDU in the file (used by the astropy reader).
    data_offset : int
        Byte offset of the first data byte.
    shape : tuple of int
        Array shape in NumPy order.
    dtype_name : str
        Native dtype of the values returned (e.g. ``"float32"``, ``"uint32"``).
    encoding : Encoding
        How the values are stored (BITPIX and scaling keywords).
    direct : bool
        Positional reads are possible; otherwise astropy's ``section`` is used
        (tile-compressed HDUs, compressed files).
    size, mtime_ns : int
        File size and modification time seen when the file was scanned; a read from a
        file that changed since raises ``OSError``.
    extname : str
        Name of the extension, for messages.

    Notes
    -----
    Values are decoded as astropy decodes them and cast to ``dtype_name`` as the
    reference's data models cast them (:mod:`daskbkg.io.encoding`).
    """

    path: str
    hdu_index: int
    data_offset: int
    shape: tuple[int, ...]
    dtype_name: str
    encoding: Encoding
    direct: bool
    size: int
    mtime_ns: int
    extname: str = ""

    @property
    def nbytes(self) -> int:
        """Size of the whole array in memory."""
        return int(np.prod(self.shape)) * self.dtype.itemsize

    @property
    def where(self) -> str:
        """``<file>: <EXTNAME> extension (HDU n)``, for messages."""
        return f"{self.path}: {self.extname or 'HDU'} extension (HDU {self.hdu_index})"

    def __getitem__(self, key: Any) -> np.ndarray:
        slices, drop = normalize_key(key, self.shape)
        out = np.empty(tuple(s.stop - s.start for s in slices), dtype=self.dtype)
        self.read_into(slices, out)
        if drop:
            out = out.reshape(tuple(n for i, n in enumerate(out.shape) if i not in drop))
        return out

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self[...]
        return out if dtype is None else out.astype(dtype)

    def read_into(self, slices: tuple[slice, ...], out: np.ndarray) -> None:
        """Read the region ``slices`` (step-1 slices, one per axis) into ``out``.

        ``out`` has the region's shape and any dtype (it may be a view into a larger
        buffer). The stored values are decoded and cast to ``out.dtype`` as the reference
        does; the result never depends on how the file stores them.
        """
        if not self.direct:
            convert(self._read_section(slices), out, self.where)
            return
        batch = RunBatch(out)
        if batch.add(self, slices, out):
            batch.read()
            return
        convert(self.encoding.decode(self._read_raw(slices)), out, self.where)

    # -- readers ---------------------------------------------------------------------
    def runs(self, slices: tuple[slice, ...]):
        """``(file offset, nbytes)`` of each contiguous run of the region, in C order."""
        return byte_runs(self.shape, self.encoding.disk_dtype.itemsize, self.data_offset,
                         slices)

    def decoding(self, dtype: np.dtype) -> tuple[bool, int] | None:
        """``(swap, mask)`` that turn the stored bytes into values of ``dtype`` in place.

        None when the values need more than a byte swap and a sign-bit flip.
        """
        enc = self.encoding
        if not self.direct or dtype != enc.value_dtype or enc.mode not in ("plain", "flip"):
            return None
        width = enc.disk_dtype.itemsize
        mask = 1 << (8 * width - 1) if enc.mode == "flip" else 0
        return (width > 1 and sys.byteorder == "little", mask)

    def _read_raw(self, slices: tuple[slice, ...]) -> np.ndarray:
        """Bytes of the region as an array of the on-disk (big-endian) dtype."""
        raw = np.empty(tuple(s.stop - s.start for s in slices), dtype=self.encoding.disk_dtype)
        batch = RunBatch(raw)
        batch.add(self, slices, raw, decoding=(False, 0))
        batch.read()
        return raw

    def _read_section(self, slices: tuple[slice, ...]) -> np.ndarray:
        hdul = _cached_hdulist(self.path)
        with _lock:
            return np.asarray(hdul[self.hdu_index].section[slices])


def byte_runs(shape: tuple[int, ...], itemsize: int, offset: int,
              slices: tuple[slice, ...]):
    """``(file offset, nbytes)`` of each contiguous run of a region, in C order.

    The array has ``shape`` and ``itemsize``, is stored in C order at byte ``offset``,
    and ``slices`` (one step-1 slice per axis) select the region.
    """
    # Axes from `split` onwards are read as one contiguous run per leading index.
    split = len(shape) - 1
    while split > 0 and slices[split].start == 0 and slices[split].stop == shape[split]:
        split -= 1
    strides = [itemsize] * len(shape)
    for axis in range(len(shape) - 2, -1, -1):
        strides[axis] = strides[axis + 1] * shape[axis + 1]
    run = (slices[split].stop - slices[split].start) * strides[split]
    base = offset + slices[split].start * strides[split]
    lead = [range(s.start, s.stop) for s in slices[:split]]
    for index in itertools.product(*lead):
        yield base + sum(i * st for i, st in zip(index, strides)), run


class RunBatch:
    """Regions of several arrays read into one output buffer with few calls.

    Each region is a list of contiguous byte runs of one file; runs that share a
    decoding (byte swap and sign-bit mask) are read by one call of the compiled reader
    :func:`daskbkg.io._readruns.read_runs`, which releases the GIL once for all of them
    and decodes each run while it is in the CPU cache. Remote files are read run by run
    through fsspec and decoded by NumPy.

    Parameters
    ----------
    out : numpy.ndarray
        The buffer every destination lies in; nothing is queued unless it is
        C-contiguous.
    """

    def __init__(self, out: np.ndarray):
        # Nothing can be queued into a buffer that is not one contiguous block.
        self._out = out.reshape(-1).view(np.uint8) if out.flags.c_contiguous else None
        self._start = out.__array_interface__["data"][0]
        self._groups: dict[tuple[int, bool, int], list] = {}

    def add(self, array: "FitsArray", slices: tuple[slice, ...], dest: np.ndarray,
            decoding: tuple[bool, int] | None = None) -> bool:
        """Queue the region ``slices`` of ``array`` for ``dest``.

        ``dest`` is a C-contiguous part of the output, shaped like the region. Returns
        False, queuing nothing, when the region cannot be read this way: the
        file is compressed, the stored values need more than a byte swap and a sign flip
        to become ``dest.dtype``, or ``dest`` is not contiguous.
        """
        decoding = decoding or array.decoding(dest.dtype)
        if decoding is None or self._out is None or not dest.flags.c_contiguous:
            return False
        if dest.size == 0:
            return True
        pos = dest.__array_interface__["data"][0] - self._start
        runs = self._groups.setdefault((array.encoding.disk_dtype.itemsize, *decoding), [])
        for offset, nbytes in array.runs(slices):
            runs.append((array, offset, nbytes, pos))
            pos += nbytes
        return True

    def read(self) -> None:
        """Read every queued run (OSError naming the file if one cannot be read)."""
        for (width, swap, mask), runs in self._groups.items():
            local = [r for r in runs if "://" not in r[0].path]
            if local:
                _read_runs(local, self._out, width, swap, mask)
            for array, offset, nbytes, pos in runs:
                if "://" in array.path:
                    _read_remote(array, offset, self._out[pos:pos + nbytes], width, swap, mask)
        self._groups.clear()


def _read_runs(runs: list, out: np.ndarray, width: int, swap: bool, mask: int) -> None:
    """Read local runs ``(array, offset, nbytes, pos)`` into ``out`` (one hook for tests)."""
    with _descriptors([r[0] for r in runs]) as fds:
        read_byte_runs(fds, [r[0].path for r in runs], [r[1:] for r in runs], out, width,
                       swap, mask)


def read_byte_runs(fds, paths, runs, out: np.ndarray, width: int = 1, swap: bool = False,
                   mask: int = 0) -> None:
    """Read byte runs of open files into ``out`` with the compiled reader.

    Run i, ``(offset, nbytes, pos)``, of descriptor ``fds[i]`` lands in ``out`` (uint8) at
    ``pos``; its values of ``width`` bytes are byte-swapped (``swap``) and XORed with
    ``mask`` in place.

    Raises
    ------
    OSError
        Naming ``paths[i]``: the file ends early (truncated data) or cannot be read.
    """
    table = np.array(runs, dtype=np.int64).reshape(-1, 3).T.copy()
    status, failed, error = read_runs(np.asarray(fds, dtype=np.int32), table[0], table[1],
                                      table[2], out, width, swap, mask)
    if status == 1:
        raise OSError(f"{paths[failed]}: unexpected end of file (truncated FITS data)")
    if status == 2:
        raise OSError(error, f"{paths[failed]}: {os.strerror(error)}")


def _read_remote(array: "FitsArray", offset: int, target: np.ndarray, width: int, swap: bool,
                 mask: int) -> None:
    """Read one run of a URL into ``target`` (uint8) and decode it there."""
    from .source import read_range

    target[:] = np.frombuffer(read_range(array.path, offset, target.size), np.uint8)
    values = target.view(f"=u{width}")
    if swap:
        values.byteswap(inplace=True)
    if mask:
        values ^= values.dtype.type(mask)
