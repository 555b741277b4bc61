"""Open a JWST level-2 exposure lazily: headers now, pixels only inside tasks."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataTypeError, MissingExtensionError
from .asdfmeta import TREE_PATHS, tree_keywords
from .fitsarray import ConstantArray, FitsArray
from .layout import FitsLayout, scan_fits

__all__ = ["ExposureMeta", "Exposure", "read_exposure", "as_exposure"]

WFSS_TYPES = ("NIS_WFSS", "NRC_WFSS")


@dataclass(frozen=True)
class ExposureMeta:
    """Keywords of an exposure that the algorithm uses.

    Window keywords are ``None`` when absent from the PRIMARY header and from the ASDF
    metadata tree (which the reference's data models read too).
    """

    exp_type: str | None
    instrument: str | None
    substrt1: int | None
    substrt2: int | None
    subsize1: int | None
    subsize2: int | None
    nints: int | None
    gwa_xtil: float | None
    gwa_ytil: float | None

    @classmethod
    def from_header(cls, header: Any) -> "ExposureMeta":
        """Extract the keywords from a PRIMARY header (astropy ``Header`` or mapping)."""

        def get(key: str, kind: type):
            value = header.get(key)
            if value is None or (isinstance(value, str) and kind is not str and not value.strip()):
                return None
            try:
                return kind(value)
            except (TypeError, ValueError):
                return None

        return cls(
            exp_type=get("EXP_TYPE", str),
            instrument=get("INSTRUME", str),
            substrt1=get("SUBSTRT1", int),
            substrt2=get("SUBSTRT2", int),
            subsize1=get("SUBSIZE1", int),
            subsize2=get("SUBSIZE2", int),
            nints=get("NINTS", int),
            gwa_xtil=get("GWA_XTIL", float),
            gwa_ytil=get("GWA_YTIL", float),
        )

    @property
    def is_wfss(self) -> bool:
        """True for the two WFSS exposure types handled by the scaled-reference path."""
        return (self.exp_type or "").upper() in WFSS_TYPES

    def takes_wfss_path(self, compat: str = "jwst-1.13") -> bool:
        """Whether the scaled-reference WFSS path applies (algorithm page W.1).

        ``NRC_WFSS`` and ``NIS_WFSS`` always; ``MIR_WFSS`` only under ``compat="jwst-3.0"``.
        """
        exp_type = (self.exp_type or "").strip().upper()
        return exp_type in WFSS_TYPES or (exp_type == "MIR_WFSS" and compat == "jwst-3.0")


@dataclass(frozen=True)
class Exposure:
    """A FITS exposure opened lazily.

    Attributes
    ----------
    layout : FitsLayout
        Every HDU of the file with its byte offsets and header.
    meta : ExposureMeta
        Keywords used by the algorithm.
    sci, err, dq : FitsArray
        Lazy readers of the three image extensions, decoded and cast to float32, float32
        and uint32 as the reference's data models do (whatever the file's storage). An
        absent ERR or DQ is a :class:`ConstantArray` of zeros (jwst 1.13's default).
    missing : tuple of str
        ``"ERR"`` and/or ``"DQ"`` when the file lacks them (the caller decides, per
        compatibility preset, whether that is accepted).
    """

    layout: FitsLayout
    meta: ExposureMeta
    sci: FitsArray
    err: FitsArray | ConstantArray
    dq: FitsArray | ConstantArray
    missing: tuple[str, ...] = ()

    @property
    def path(self) -> str:
        """Absolute path of the file."""
        return self.layout.path

    @property
    def name(self) -> str:
        """File name without folders."""
        return os.path.basename(self.layout.path)

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the SCI array."""
        return self.sci.shape

    @property
    def ndim(self) -> int:
        """2 for rate images, 3 for rateints cubes."""
        return len(self.sci.shape)

    @property
    def identity(self) -> tuple[str, int, int]:
        """(path, size, mtime) identifying this exact file version."""
        return (self.layout.path, self.layout.size, self.layout.mtime_ns)


#: dtypes of the arrays as the reference's data models hold them.
WORKING_DTYPES = {"SCI": "float32", "ERR": "float32", "DQ": "uint32"}


def check_storage(path: str, hdu: Any, dtype: str) -> None:
    """Refuse an image HDU whose stored numbers cannot become ``dtype`` exactly as in the reference.

    Floating-point arrays accept every FITS storage. An integer array (DQ) needs values
    that astropy decodes to integers: floating-point or scaled storage gives floats
    (NaN for BLANK) whose cast to an integer type is not defined.

    Raises
    ------
    DataTypeError
        One line naming the file, the extension and the reason.
    """
    enc = hdu.encoding
    where = f"{path}: {hdu.name} extension (HDU {hdu.index})"
    if not enc.supported:
        raise DataTypeError(f"{where}: BITPIX {enc.bitpix} is not a FITS data type")
    if np.dtype(dtype).kind in "iu" and enc.value_dtype.kind not in "iu":
        raise DataTypeError(
            f"{where}: stored as {enc.describe()}, which astropy decodes to "
            f"{enc.value_dtype} values; {hdu.name} must hold integers (the cast to {dtype} "
            "is not defined for NaN or fractions), e.g. BITPIX 32 with BZERO 2147483648")


def _keywords(layout: FitsLayout) -> dict:
    """PRIMARY keywords the step uses; ones the header lacks come from the ASDF tree."""
    header = layout.primary_header
    values = {key: header.get(key) for key in TREE_PATHS}
    for key, value in tree_keywords(layout).items():
        if values.get(key) is None:
            values[key] = value
    return values


def read_exposure(path: str | os.PathLike) -> Exposure:
    """Open an exposure: parse its headers and build lazy SCI/ERR/DQ readers.

    No pixel is read. The arrays must be 2-D or 3-D and share one shape. An absent ERR
    or DQ becomes zeros and is listed in ``Exposure.missing``.

    Parameters
    ----------
    path : str or path-like
        FITS file in the JWST data-model layout.

    Returns
    -------
    Exposure

    Raises
    ------
    InputFileNotFoundError, NotFitsError
        The file is missing or not FITS.
    MissingExtensionError
        SCI is absent (or not an image).
    DataTypeError
        DQ is stored as floating-point or scaled values, or BITPIX is invalid.
    GeometryError
        The arrays are not 2-D/3-D or their shapes differ.
    """
    from ..errors import GeometryError

    layout: FitsLayout = scan_fits(path)
    arrays: dict[str, Any] = {}
    missing: list[str] = []
    for name, dtype in WORKING_DTYPES.items():
        hdu = layout.find(name)
        if hdu is not None and hdu.is_image and hdu.shape:
            check_storage(layout.path, hdu, dtype)
        try:
            arrays[name] = layout.array(name, dtype=dtype)
        except KeyError:
            if name == "SCI":
                raise MissingExtensionError(
                    f"{layout.path}: missing {name} image extension") from None
            missing.append(name)
    shape = arrays["SCI"].shape
    if len(shape) not in (2, 3):
        raise GeometryError(f"{layout.path}: SCI must be 2-D or 3-D, not {len(shape)}-D")
    for name in missing:
        arrays[name] = ConstantArray(shape, WORKING_DTYPES[name], 0)
    for name in ("ERR", "DQ"):
        if arrays[name].shape != shape:
            raise GeometryError(
                f"{layout.path}: {name} shape {arrays[name].shape} differs from SCI shape {shape}"
            )
    meta = ExposureMeta.from_header(_keywords(layout))
    if len(shape) == 3 and meta.nints is not None and meta.nints != shape[0]:
        warnings.warn(
            f"{layout.path}: NINTS={meta.nints} but the SCI cube has {shape[0]} integrations; "
            "using the array",
            stacklevel=2,
        )
    return Exposure(layout=layout, meta=meta, sci=arrays["SCI"], err=arrays["ERR"],
                    dq=arrays["DQ"], missing=tuple(missing))


def as_exposure(item: Any) -> Exposure:
    """Return ``item`` if it is already an :class:`Exposure`, else open it.

    Paths and URLs are opened lazily; an ``astropy.io.fits.HDUList`` or a JWST datamodel
    (duck-typed) becomes an in-memory exposure (:mod:`daskbkg.io.memory`).
    """
    if isinstance(item, Exposure):
        return item
    if isinstance(item, (str, os.PathLike, Path)):
        return read_exposure(item)
    from . import memory

    if memory.is_hdulist(item):
        return memory.exposure_from_hdulist(item)
    if memory.is_datamodel(item):
        return memory.exposure_from_datamodel(item)
    raise TypeError(f"expected a path, an HDUList, a datamodel or an Exposure, "
                    f"not {type(item).__name__}")
