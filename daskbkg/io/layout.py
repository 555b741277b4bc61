"""Scan the HDU layout of a FITS file with astropy, without reading pixel data.

Every header is parsed by ``astropy.io.fits`` (``fits.open(..., lazy_load_hdus=True)``):
the same parser the reference uses, so damaged cards, non-ASCII bytes (replaced by
``?``), trailing bytes after the last HDU, a missing final padding, gzip-compressed files
and tile-compressed image HDUs are all seen exactly as astropy sees them. The byte
offsets of each HDU come from ``HDUList.fileinfo``; the data are then read by
:class:`~daskbkg.io.fitsarray.FitsArray` with positional reads, or through astropy
where positions in the file are not the data's (gzip, tile compression).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputFileNotFoundError, NotFitsError
from .encoding import Encoding
from .fitsarray import FitsArray

__all__ = ["HduInfo", "FitsLayout", "scan_fits", "BLOCK"]

BLOCK = 2880
_NON_ASCII = "non-ASCII characters"


@dataclass(frozen=True)
class HduInfo:
    """Where one HDU lives in its file and what it holds.

    Attributes
    ----------
    index : int
        Position in the file.
    name : str
        EXTNAME as astropy reads it (upper case, ``"PRIMARY"`` for the first HDU).
    ver : int
        EXTVER (1 when absent).
    is_image : bool
        The HDU is an image (primary or IMAGE extension, possibly tile-compressed).
    header_offset, data_offset, data_span : int
        Byte offsets of header and data and the padded size of the data (in the
        decompressed stream for gzip files).
    shape : tuple of int
        Image shape in NumPy order (empty for tables and data-less HDUs).
    header : astropy.io.fits.Header
        The header as astropy parsed it; for a tile-compressed HDU the image header
        that astropy presents (no table or compression keywords).
    compressed : bool
        Tile-compressed image (a ``ZIMAGE`` binary table).
    data_size : int
        Bytes of data the stored header announces (without padding).
    sanitized : bool
        astropy replaced non-ASCII header bytes by ``?``: the stored header must not be
        copied verbatim.
    """

    index: int
    name: str
    ver: int
    is_image: bool
    header_offset: int
    data_offset: int
    data_span: int
    shape: tuple[int, ...]
    header: Any = field(repr=False)
    compressed: bool = False
    data_size: int = 0
    sanitized: bool = False

    @property
    def end(self) -> int:
        """Byte offset just past the padded data of this HDU."""
        return self.data_offset + self.data_span

    @property
    def keywords(self):
        """The header (a mapping of keyword to first value); kept for callers of ``.get``."""
        return self.header

    @property
    def raw_header(self) -> bytes:
        """The header serialised by astropy (ASCII, whole 2880-byte blocks)."""
        return self.header.tostring().encode("ascii")

    @property
    def encoding(self) -> Encoding:
        """How the image values are stored (BITPIX and scaling keywords)."""
        return Encoding.from_header(self.header)


@dataclass(frozen=True)
class FitsLayout:
    """All HDUs of a FITS file, with the file's identity (size and mtime).

    ``gzip`` is True for a gzip-compressed file: its offsets are positions in the
    decompressed stream, read through astropy, never with positional reads.
    """

    path: str
    size: int
    mtime_ns: int
    hdus: tuple[HduInfo, ...]
    gzip: bool = False

    def find(self, name: str, ver: int = 1) -> HduInfo | None:
        """The first HDU with this EXTNAME/EXTVER (case-insensitive), as astropy finds it."""
        name = name.strip().upper()
        for hdu in self.hdus:
            if (hdu.name == name or (name == "PRIMARY" and hdu.index == 0)) and hdu.ver == ver:
                return hdu
        return None

    @property
    def primary_header(self):
        """Header of the PRIMARY HDU (astropy ``Header``)."""
        return self.hdus[0].header

    @property
    def primary_keywords(self):
        """Keywords of the PRIMARY HDU (its astropy ``Header``)."""
        return self.hdus[0].header

    def array(self, name: str, ver: int = 1, dtype: str | None = None) -> FitsArray:
        """Lazy array over image extension ``name``; KeyError if it is absent.

        ``dtype`` is the working dtype the values are cast to (the dtype astropy gives
        when None).
        """
        hdu = self.find(name, ver)
        if hdu is None:
            raise KeyError(name)
        return self.array_of(hdu, dtype)

    def array_of(self, hdu: HduInfo, dtype: str | None = None) -> FitsArray:
        """Lazy array over the image HDU ``hdu``; KeyError if it holds no image."""
        name = hdu.name
        if not hdu.is_image or not hdu.shape:
            raise KeyError(name)
        enc = hdu.encoding
        if not enc.supported:
            raise KeyError(name)
        return FitsArray(
            path=self.path,
            hdu_index=hdu.index,
            data_offset=hdu.data_offset,
            shape=hdu.shape,
            dtype_name=np.dtype(dtype or enc.value_dtype).name,
            encoding=enc,
            direct=not (hdu.compressed or self.gzip),
            size=self.size,
            mtime_ns=self.mtime_ns,
            extname=hdu.name,
        )


def _stored_header(hdu: Any):
    """The header as stored: the binary table's for a tile-compressed HDU."""
    # astropy keeps the table of a CompImageHDU in ``_bintable`` (astropy >= 5.3).
    table = getattr(hdu, "_bintable", None)
    return hdu.header if table is None else table.header


def _data_size(header: Any) -> int:
    """Bytes of data announced by a stored header (FITS standard, §4.4.1)."""
    naxis = int(header.get("NAXIS", 0) or 0)
    if naxis == 0:
        return 0
    n = 1
    for i in range(1, naxis + 1):
        n *= int(header.get(f"NAXIS{i}", 0) or 0)
    gcount = int(header.get("GCOUNT", 1) or 1)
    pcount = int(header.get("PCOUNT", 0) or 0)
    return abs(int(header.get("BITPIX", 8))) // 8 * gcount * (pcount + n)


def _hdu_info(index: int, hdu: Any, info: dict, sanitized: bool) -> HduInfo:
    from astropy.io import fits

    compressed = isinstance(hdu, fits.CompImageHDU)
    is_image = compressed or isinstance(hdu, (fits.PrimaryHDU, fits.ImageHDU))
    header = hdu.header
    shape = ()
    if is_image:
        naxis = int(header.get("NAXIS", 0) or 0)
        shape = tuple(int(header.get(f"NAXIS{i}", 0) or 0) for i in range(naxis, 0, -1))
    name = "PRIMARY" if index == 0 else str(hdu.name or "").strip().upper()
    return HduInfo(index=index, name=name, ver=int(hdu.ver or 1), is_image=is_image,
                   header_offset=info["hdrLoc"], data_offset=info["datLoc"],
                   data_span=info["datSpan"], shape=shape, header=header,
                   compressed=compressed, data_size=_data_size(_stored_header(hdu)),
                   sanitized=sanitized)


def _is_gzip(path: str) -> bool:
    from .source import open_input

    with open_input(path) as f:
        return f.read(2) == b"\x1f\x8b"


def _read_hdus(path: str) -> list[HduInfo]:
    """Parse every header with astropy, one HDU at a time (data are never read)."""
    from astropy.io import fits

    from .source import open_decoded

    hdus: list[HduInfo] = []
    with open_decoded(path) as raw, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with fits.open(raw, lazy_load_hdus=True, memmap=False) as hdul:
            index = 0
            while True:
                del caught[:]
                try:
                    hdu = hdul[index]
                except IndexError:
                    break
                sanitized = any(_NON_ASCII in str(w.message) for w in caught)
                # ``hdu.fileinfo()`` holds the offsets of ``HDUList.fileinfo(index)``
                # without its resize check, which re-serialises every header (measured:
                # 70 % of a 9-HDU scan).
                hdus.append(_hdu_info(index, hdu, hdu.fileinfo(), sanitized))
                index += 1
    return hdus


def scan_fits(path: str | os.PathLike) -> FitsLayout:
    """Read every header of a FITS file and record where each HDU's data lives.

    Parameters
    ----------
    path : str or path-like
        Local FITS file (possibly gzip-compressed) or fsspec URL.

    Returns
    -------
    FitsLayout

    Raises
    ------
    InputFileNotFoundError
        The file does not exist.
    NotFitsError
        astropy cannot read it as FITS, or it is shorter than its headers announce.
    """
    from .source import stat_input

    st = stat_input(path)
    path = st.path
    if not st.exists:
        raise InputFileNotFoundError(f"{path}: file not found")
    if st.is_dir:
        raise NotFitsError(f"{path}: is a directory, not a FITS file")
    try:
        gzip = _is_gzip(path)
        hdus = _read_hdus(path)
    except OSError as exc:
        reason = exc.strerror or str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise NotFitsError(f"{path}: not a readable FITS file ({reason})") from None
    except Exception as exc:  # noqa: BLE001 - astropy raises many types for bad bytes
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NotFitsError(f"{path}: not a readable FITS file ({text})") from None
    if not hdus:
        raise NotFitsError(f"{path}: not a readable FITS file (empty file)")
    last = hdus[-1]
    needed = last.data_offset + last.data_size
    if not gzip and needed > st.size:
        raise NotFitsError(
            f"{path}: truncated FITS file ({st.size} bytes, the headers need {needed})"
        )
    if not gzip and last.end < st.size and _starts_header(path, last.end):
        # astropy stops at a header it cannot complete; trailing zeros or junk are
        # ignored (as astropy does), but a cut-off extension header is a truncated file.
        raise NotFitsError(f"{path}: truncated FITS file (the header at byte {last.end} is "
                           "incomplete)")
    return FitsLayout(path=path, size=st.size, mtime_ns=st.version, hdus=tuple(hdus),
                      gzip=gzip)


def _starts_header(path: str, offset: int) -> bool:
    """The bytes at ``offset`` begin an extension header (``XTENSION=``)."""
    from .source import open_input

    with open_input(path) as f:
        f.seek(offset)
        return f.read(9) == b"XTENSION="
