"""Scan the HDU layout of a FITS file without reading pixel data."""

from __future__ import annotations

import functools
import os
import warnings
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputFileNotFoundError, NotFitsError
from .encoding import Encoding
from .fitsarray import FitsArray
from .headerscan import walk_hdus

__all__ = ["HduInfo", "FitsLayout", "scan_fits"]



@dataclass(frozen=True)
class HduInfo:
    """Where one HDU lives in its file and what it holds.

    Attributes
    ----------
    index : int
        Position in the file.
    name : str
        EXTNAME (``"PRIMARY"`` for the first HDU).
    ver : int
        EXTVER (1 when absent).
    is_image : bool
        The HDU is an image (primary or IMAGE extension, possibly tile-compressed).
    header_offset, data_offset, data_span : int
        Byte offsets of header and data and the padded size of the data.
    shape : tuple of int
        Image shape in NumPy order (empty for tables and data-less HDUs).
    keywords : dict
        Value of the first card of each keyword (fast access, no astropy).
    raw_header : bytes
        The header blocks as stored.
    """

    index: int
    name: str
    ver: int
    is_image: bool
    header_offset: int
    data_offset: int
    data_span: int
    shape: tuple[int, ...]
    keywords: dict = field(repr=False)
    raw_header: bytes = field(repr=False)
    compressed: bool = False

    @property
    def end(self) -> int:
        """Byte offset just past the padded data of this HDU."""
        return self.data_offset + self.data_span

    @property
    def encoding(self) -> Encoding:
        """How the image values are stored (BITPIX or ZBITPIX and scaling keywords)."""
        return Encoding.from_header(self.keywords, "ZBITPIX" if self.compressed else "BITPIX")

    @functools.cached_property
    def header(self):
        """The full header as an astropy ``Header`` (parsed on first use)."""
        from astropy.io import fits

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fits.Header.fromstring(self.raw_header.decode("ascii", "replace"))


@dataclass(frozen=True)
class FitsLayout:
    """All HDUs of a FITS file, with the file's identity (size and mtime)."""

    path: str
    size: int
    mtime_ns: int
    hdus: tuple[HduInfo, ...]

    def find(self, name: str, ver: int = 1) -> HduInfo | None:
        """Return the HDU with this EXTNAME/EXTVER (case-insensitive), or None."""
        name = name.upper()
        for hdu in self.hdus:
            if hdu.name == name and hdu.ver == ver:
                return hdu
        return None

    @property
    def primary_header(self):
        """Header of the PRIMARY HDU (astropy ``Header``, parsed on first use)."""
        return self.hdus[0].header

    @property
    def primary_keywords(self) -> dict:
        """Keywords of the PRIMARY HDU (first value of each), without astropy."""
        return self.hdus[0].keywords

    def array(self, name: str, ver: int = 1, dtype: str | None = None) -> FitsArray:
        """Lazy array over image extension ``name``; KeyError if it is absent.

        ``dtype`` is the working dtype the values are cast to (the dtype astropy gives
        when None).
        """
        hdu = self.find(name, ver)
        if hdu is None or not hdu.is_image or not hdu.shape:
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
            direct=not hdu.compressed,
            size=self.size,
            mtime_ns=self.mtime_ns,
            extname=hdu.name,
        )


def scan_fits(path: str | os.PathLike) -> FitsLayout:
    """Read every header of a FITS file and record where each HDU's data lives.

    Only header blocks are read (pixel data are skipped), with positional reads for
    local files and byte-range requests for fsspec URLs.

    Parameters
    ----------
    path : str or path-like
        Local FITS file or fsspec URL.

    Returns
    -------
    FitsLayout

    Raises
    ------
    InputFileNotFoundError
        The file does not exist.
    NotFitsError
        The file is not FITS, cannot be parsed, or is shorter than its headers announce.
    """
    from .source import is_url, read_range, stat_input

    st = stat_input(path)
    path = st.path
    if not st.exists:
        raise InputFileNotFoundError(f"{path}: file not found")
    if st.is_dir:
        raise NotFitsError(f"{path}: is a directory, not a FITS file")
    if is_url(path):
        def read(offset: int, n: int) -> bytes:
            return read_range(path, offset, min(n, max(st.size - offset, 0)))
    else:
        fd = os.open(path, os.O_RDONLY)

        def read(offset: int, n: int) -> bytes:
            return os.pread(fd, n, offset)
    hdus = []
    try:
        for index, raw in enumerate(walk_hdus(read, st.size)):
            hdus.append(_hdu_info(index, raw))
    except (ValueError, UnicodeError) as exc:
        raise NotFitsError(f"{path}: not a readable FITS file ({exc})") from None
    except OSError as exc:
        raise NotFitsError(f"{path}: not a readable FITS file ({exc.strerror or exc})") from None
    finally:
        if not is_url(path):
            os.close(fd)
    if not hdus:
        raise NotFitsError(f"{path}: not a readable FITS file (empty file)")
    last = hdus[-1]
    needed = last.data_offset + _data_bytes(last)
    if needed > st.size:
        raise NotFitsError(
            f"{path}: truncated FITS file ({st.size} bytes, the headers need {needed})"
        )
    if st.size != last.end and needed != st.size:
        raise NotFitsError(
            f"{path}: truncated or damaged FITS file ({st.size - last.end} bytes after "
            f"the last complete HDU, {last.name or last.index})"
        )
    return FitsLayout(path=path, size=st.size, mtime_ns=st.version, hdus=tuple(hdus))


def _hdu_info(index: int, raw) -> HduInfo:
    kw = raw.keywords
    compressed = bool(kw.get("ZIMAGE")) and kw.get("XTENSION") == "BINTABLE"
    is_image = index == 0 or kw.get("XTENSION") == "IMAGE" or compressed
    prefix = "ZNAXIS" if compressed else "NAXIS"
    naxis = int(kw.get(prefix, 0) or 0)
    shape = tuple(int(kw.get(f"{prefix}{i}", 0) or 0) for i in range(naxis, 0, -1))
    name = "PRIMARY" if index == 0 else str(kw.get("EXTNAME", "") or "").upper()
    return HduInfo(index=index, name=name, ver=int(kw.get("EXTVER", 1) or 1),
                   is_image=is_image, header_offset=raw.header_offset,
                   data_offset=raw.data_offset, data_span=raw.data_span,
                   shape=shape if is_image else (), keywords=kw, raw_header=raw.raw_header,
                   compressed=compressed)


def _data_bytes(hdu: HduInfo) -> int:
    """Bytes of data (without the 2880-byte padding) that the header of ``hdu`` announces."""
    from .headerscan import _data_size

    return _data_size(hdu.keywords)
