"""Scan the HDU layout of a FITS file without reading pixel data."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputFileNotFoundError, NotFitsError
from .fitsarray import FitsArray

__all__ = ["HduInfo", "FitsLayout", "scan_fits"]

_BITPIX_DTYPES = {8: ">u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}


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
        The HDU is an image (primary or IMAGE extension, possibly compressed).
    header_offset, data_offset, data_span : int
        Byte offsets of header and data and the padded size of the data.
    shape : tuple of int
        Image shape in NumPy order (empty for tables and data-less HDUs).
    header : astropy.io.fits.Header
        The parsed header (the image header for compressed HDUs).
    """

    index: int
    name: str
    ver: int
    is_image: bool
    header_offset: int
    data_offset: int
    data_span: int
    shape: tuple[int, ...]
    header: object
    compressed: bool = False

    @property
    def end(self) -> int:
        """Byte offset just past the padded data of this HDU."""
        return self.data_offset + self.data_span


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
        """Header of the PRIMARY HDU."""
        return self.hdus[0].header

    def array(self, name: str, ver: int = 1) -> FitsArray:
        """Lazy array over image extension ``name``; KeyError if it is absent."""
        hdu = self.find(name, ver)
        if hdu is None or not hdu.is_image or not hdu.shape:
            raise KeyError(name)
        header = hdu.header
        bitpix = int(header["BITPIX"])
        bzero = float(header.get("BZERO", 0) or 0)
        bscale = float(header.get("BSCALE", 1) or 1)
        bzero_flip = bitpix == 32 and bzero == 2**31 and bscale == 1
        plain = bzero == 0 and bscale == 1
        direct = not hdu.compressed and (plain or bzero_flip) and bitpix in _BITPIX_DTYPES
        if bzero_flip:
            dtype = "uint32"
        elif plain and bitpix in _BITPIX_DTYPES:
            dtype = np.dtype(_BITPIX_DTYPES[bitpix]).newbyteorder("=").name
        else:
            dtype = "float32" if bitpix in (8, 16, -32) else "float64"
        return FitsArray(
            path=self.path,
            hdu_index=hdu.index,
            data_offset=hdu.data_offset,
            shape=hdu.shape,
            disk_dtype=_BITPIX_DTYPES.get(bitpix, ">f4"),
            dtype_name=dtype,
            bzero_flip=bzero_flip,
            direct=direct,
            size=self.size,
            mtime_ns=self.mtime_ns,
        )


def scan_fits(path: str | os.PathLike) -> FitsLayout:
    """Read every header of a FITS file and record where each HDU's data lives.

    Parameters
    ----------
    path : str or path-like
        Local FITS file.

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
    from astropy.io import fits

    path = str(Path(path).resolve())
    if not os.path.exists(path):
        raise InputFileNotFoundError(f"{path}: file not found")
    if os.path.isdir(path):
        raise NotFitsError(f"{path}: is a directory, not a FITS file")
    st = os.stat(path)
    hdus = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with fits.open(path, memmap=False, lazy_load_hdus=False, ignore_missing_simple=False) as hdul:
                for index, hdu in enumerate(hdul):
                    info = hdul.fileinfo(index)
                    compressed = isinstance(hdu, fits.CompImageHDU)
                    is_image = isinstance(hdu, (fits.PrimaryHDU, fits.ImageHDU)) or compressed
                    header = hdu.header.copy()
                    naxis = int(header.get("NAXIS", 0))
                    shape = (
                        tuple(int(header[f"NAXIS{i}"]) for i in range(naxis, 0, -1))
                        if is_image and naxis
                        else ()
                    )
                    name = "PRIMARY" if index == 0 else str(header.get("EXTNAME", "")).upper()
                    hdus.append(
                        HduInfo(
                            index=index,
                            name=name,
                            ver=int(header.get("EXTVER", 1) or 1),
                            is_image=is_image,
                            header_offset=int(info["hdrLoc"]),
                            data_offset=int(info["datLoc"]),
                            data_span=int(info["datSpan"]),
                            shape=shape,
                            header=header,
                            compressed=compressed,
                        )
                    )
    except OSError as exc:
        raise NotFitsError(f"{path}: not a readable FITS file ({exc})") from None
    except Exception as exc:  # astropy raises assorted errors on damaged headers
        raise NotFitsError(f"{path}: not a readable FITS file ({type(exc).__name__}: {exc})") from None
    if not hdus:
        raise NotFitsError(f"{path}: not a readable FITS file (no HDU found)")
    last = hdus[-1]
    needed = last.data_offset + _unpadded_size(last)
    if needed > st.st_size:
        raise NotFitsError(
            f"{path}: truncated FITS file ({st.st_size} bytes, the headers need {needed})"
        )
    if st.st_size != last.end:
        # astropy stops quietly at an incomplete HDU: bytes remain that form no HDU (a
        # complete FITS file ends exactly with the padded data of its last HDU).
        raise NotFitsError(
            f"{path}: truncated or damaged FITS file ({st.st_size - last.end} bytes after "
            f"the last complete HDU, {last.name or last.index})"
        )
    return FitsLayout(path=path, size=st.st_size, mtime_ns=st.st_mtime_ns, hdus=tuple(hdus))


def _unpadded_size(hdu: HduInfo) -> int:
    """Bytes of data (without the 2880-byte padding) that the header of ``hdu`` announces."""
    header = hdu.header
    if hdu.compressed or not hdu.is_image:
        return 0 if hdu.data_span == 0 else min(hdu.data_span, 1)
    n = 1
    for size in hdu.shape:
        n *= size
    return n * abs(int(header.get("BITPIX", 8))) // 8 if hdu.shape else 0
