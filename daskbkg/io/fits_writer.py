"""Stream FITS files from dask arrays, atomically.

The rename makes an interrupted or failed run leave no partial file. Set the environment
variable ``DASKBKG_FSYNC=1`` to also flush each file to stable storage before the rename
(protection against a machine crash, at the cost of waiting for the disk).

The file is laid out first (headers written, data areas reserved), then every lazy array
is stored tile by tile with positional writes (:func:`~daskbkg.io.positional.write_at`),
so no array is ever held whole in memory and tiles may be written in any order, from
threads or processes. The file is written under a temporary name in the destination
folder and renamed into place only when complete; on any failure the temporary file is
removed.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .positional import write_at
from .source import open_decoded, replace, temp_name
from .writejob import WriteJob, run_write_jobs

__all__ = ["CopiedHdu", "ArrayHdu", "write_fits", "temp_path_for", "RegionWriter",
           "disk_full_error", "FLIPPED_BZERO"]

BLOCK = 2880
#: Storage of each array kind: (BITPIX, big-endian dtype of the stored bytes).
_ENCODINGS = {"float32": (-32, ">f4"), "float64": (-64, ">f8"), "uint8": (8, ">u1"),
              "int16": (16, ">i2"), "int32": (32, ">i4"), "int64": (64, ">i8"),
              "int8": (8, ">u1"), "uint16": (16, ">u2"), "uint32": (32, ">u4"),
              "uint64": (64, ">u8")}
#: BZERO of the kinds stored with the sign bit flipped (FITS pseudo-unsigned integers).
FLIPPED_BZERO = {"int8": -128, "uint16": 2**15, "uint32": 2**31, "uint64": 2**63}


def _padded(n: int) -> int:
    return -(-n // BLOCK) * BLOCK


@dataclass(frozen=True)
class CopiedHdu:
    """An HDU copied from an existing file: data bytes verbatim, header verbatim or replaced.

    ``data_size`` (the unpadded size) lets a file whose last HDU lacks its final padding
    be copied: the bytes present are copied and the block is completed with zeros.
    """

    src_path: str
    header_offset: int
    data_offset: int
    data_span: int
    header: Any = None  # raw bytes (or astropy Header) to write instead of the original
    data_size: int | None = None


@dataclass(frozen=True)
class ArrayHdu:
    """An image HDU whose data come from a (lazy) array."""

    header: Any  # raw header bytes (or astropy Header) matching the data
    data: Any  # dask or NumPy array; None for a header-only HDU
    kind: str  # a key of _ENCODINGS, e.g. "float32", "uint32" (stored with BZERO 2**31)


def temp_path_for(path: str | os.PathLike) -> Path:
    """Hidden temporary name next to ``path`` (same folder, hence same filesystem)."""
    return temp_name(path)


#: errno values meaning "no space left" (full disk or exhausted quota).
_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


def disk_full_error(exc: BaseException, path: str | os.PathLike):
    """Return a :class:`~daskbkg.errors.DiskFullError` naming ``path`` for ENOSPC/EDQUOT.

    Returns None for any other exception (the caller re-raises it unchanged).
    """
    from ..errors import DiskFullError

    if (not isinstance(exc, OSError) or isinstance(exc, DiskFullError)
            or exc.errno not in _DISK_FULL):
        return None
    err = DiskFullError(f"{path}: disk full while writing ({os.strerror(exc.errno)}); "
                        "no partial output was kept")
    err.errno = exc.errno
    return err


@dataclass(frozen=True)
class RegionWriter:
    """Picklable ``__setitem__`` target that writes array regions into a FITS data area."""

    path: str
    data_offset: int
    shape: tuple[int, ...]
    kind: str
    final_path: str | None = None  # name reported if the disk fills up (default: path)

    @property
    def dtype(self):
        """Dtype of the values stored through this target."""
        return np.dtype(self.kind)

    @property
    def ndim(self) -> int:
        """Number of dimensions."""
        return len(self.shape)

    def __setitem__(self, key, value) -> None:
        from .fitsarray import normalize_key

        slices, _ = normalize_key(key, self.shape)
        value = np.asarray(value)
        block = value.reshape(tuple(s.stop - s.start for s in slices))
        disk = np.dtype(_ENCODINGS[self.kind][1])
        if self.kind in FLIPPED_BZERO:
            bits = np.dtype(f"u{disk.itemsize}")
            flipped = block.astype(self.kind).view(bits) ^ bits.type(1 << (8 * disk.itemsize - 1))
            encoded = flipped.astype(disk)
        else:
            encoded = block.astype(disk)
        itemsize = disk.itemsize
        strides = [itemsize] * len(self.shape)
        for axis in range(len(self.shape) - 2, -1, -1):
            strides[axis] = strides[axis + 1] * self.shape[axis + 1]
        split = len(self.shape) - 1
        while split > 0 and slices[split].start == 0 and slices[split].stop == self.shape[split]:
            split -= 1
        lead = encoded.shape[:split]
        fd = os.open(self.path, os.O_WRONLY | getattr(os, "O_BINARY", 0))
        try:
            for index in np.ndindex(*lead) if lead else [()]:
                offset = self.data_offset + slices[split].start * strides[split]
                for axis, i in enumerate(index):
                    offset += (slices[axis].start + i) * strides[axis]
                chunk = np.ascontiguousarray(encoded[index]).view(np.uint8).reshape(-1)
                write_at(fd, chunk, offset)
        except OSError as exc:
            full = disk_full_error(exc, self.final_path or self.path)
            if full is None:
                raise
            raise full from exc
        finally:
            os.close(fd)


def _header_bytes(header: Any) -> bytes:
    """Raw header bytes (given as bytes, or as an astropy Header to serialise)."""
    if isinstance(header, (bytes, bytearray)):
        return bytes(header)
    with warnings.catch_warnings():
        # A long value (a file name, a version) shortens its card's comment; astropy
        # says so, but no value is lost.
        warnings.filterwarnings("ignore", "Card is too long")
        return header.tostring().encode("ascii")


def _copy_bytes(src, dst, offset: int, size: int) -> None:
    src.seek(offset)
    remaining = size
    while remaining:
        data = src.read(min(remaining, 16 * 2**20))
        if not data:
            raise OSError(f"{src.name}: unexpected end of file while copying an HDU")
        dst.write(data)
        remaining -= len(data)


def _stamped(hdus: list, name: str) -> list:
    """``hdus`` with FILENAME and DATE set in a PRIMARY header given as an astropy Header."""
    first = hdus[0] if hdus else None
    header = getattr(first, "header", None)
    if header is not None and not isinstance(header, (bytes, bytearray)):
        from .headers import stamp_primary

        hdus[0] = dataclasses.replace(first, header=stamp_primary(header, name))
    return hdus


def _copy_data(src, dst, hdu: CopiedHdu) -> None:
    """Copy the data of ``hdu`` with its padding; a missing final padding becomes zeros."""
    if hdu.data_size is None:
        _copy_bytes(src, dst, hdu.data_offset, hdu.data_span)
        return
    _copy_bytes(src, dst, hdu.data_offset, hdu.data_size)
    pad = hdu.data_span - hdu.data_size
    src.seek(hdu.data_offset + hdu.data_size)
    tail = src.read(pad)
    dst.write(tail + b"\0" * (pad - len(tail)))


def write_fits(path: str | os.PathLike, hdus: Sequence[CopiedHdu | ArrayHdu], *,
               compute: bool = True, **compute_kwargs):
    """Write a FITS file from copied HDUs and (lazy) arrays, atomically.

    Parameters
    ----------
    path : path-like
        Destination; replaced only when the whole file was written.
    hdus : sequence of CopiedHdu or ArrayHdu
        HDUs in file order; the first must be a primary HDU.
    compute : bool
        If False, return the :class:`~daskbkg.io.writejob.WriteJob` (the (source,
        target) pairs still to be stored, the rename into place, the clean-up), so that
        several files are written in one dask computation.
    **compute_kwargs
        Passed to ``dask.array.store`` (e.g. ``scheduler=``).
    """
    path = Path(path)
    hdus = _stamped(list(hdus), path.name)
    tmp = temp_path_for(path)
    pending: list[tuple[Any, RegionWriter]] = []
    try:
        with open(tmp, "wb") as out:
            for hdu in hdus:
                if isinstance(hdu, CopiedHdu):
                    with open_decoded(hdu.src_path) as src:
                        if hdu.header is None:
                            _copy_bytes(src, out, hdu.header_offset, hdu.data_offset - hdu.header_offset)
                        else:
                            out.write(_header_bytes(hdu.header))
                        _copy_data(src, out, hdu)
                    continue
                out.write(_header_bytes(hdu.header))
                if hdu.data is None:
                    continue
                shape = tuple(hdu.data.shape)
                nbytes = int(np.prod(shape)) * np.dtype(_ENCODINGS[hdu.kind][1]).itemsize
                start = out.tell()
                out.truncate(start + _padded(nbytes))
                out.seek(start + _padded(nbytes))
                pending.append((hdu.data, RegionWriter(str(tmp), start, shape, hdu.kind,
                                                       final_path=str(path))))
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        full = disk_full_error(exc, path)
        if full is not None:
            raise full from exc
        raise

    def finalize() -> Path:
        try:
            if os.environ.get("DASKBKG_FSYNC", "0") not in ("", "0"):
                # Windows flushes only descriptors open for writing.
                fd = os.open(tmp, os.O_RDWR if os.name == "nt" else os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            replace(tmp, path)
        except OSError as exc:
            full = disk_full_error(exc, path)
            if full is None:
                raise
            tmp.unlink(missing_ok=True)
            raise full from exc
        return path

    def abort() -> None:
        tmp.unlink(missing_ok=True)

    job = WriteJob(path, pending, finalize, abort)
    return job if not compute else run_write_jobs([job], **compute_kwargs)[0]


def store_all(pending: Sequence[tuple[Any, Any]], **compute_kwargs) -> None:
    """Store every (array, target) pair in one computation (NumPy arrays directly)."""
    import dask.array as da

    lazy = [(a, t) for a, t in pending if isinstance(a, da.Array)]
    for array, target in pending:
        if not isinstance(array, da.Array):
            target[tuple(slice(0, n) for n in np.shape(array))] = array
    if lazy:
        da.store([a for a, _ in lazy], [t for _, t in lazy], lock=False, **compute_kwargs)
