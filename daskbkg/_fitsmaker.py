"""Write synthetic JWST level-2 style FITS files (helper of :mod:`daskbkg.datasets`).

The layout follows the algorithm page (algorithm page C.1): an empty PRIMARY HDU carrying the
exposure keywords, then SCI, DQ, ERR, the three variance arrays, INT_TIMES for 3-D data and
finally the one-row ``ASDF`` binary table. DQ is written as uint32, which astropy stores
with ``BITPIX = 32``, ``BSCALE = 1``, ``BZERO = 2147483648`` exactly like stdatamodels.

Nothing here depends on the rest of daskbkg; files are written atomically (temporary file
in the target directory, then :func:`os.replace`).
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from astropy.io import fits

__all__ = ["DETECTORS", "write_exposure", "atomic_write"]

#: Instrument presets: full-frame shape (ny, nx), default EXP_TYPE, DETECTOR and FILTER,
#: plus a typical background level and noise (DN/s) used by :mod:`daskbkg.datasets`.
DETECTORS: dict[str, dict[str, Any]] = {
    "NIRCAM": {"full": (2048, 2048), "exp_type": "NRC_IMAGE", "detector": "NRCA1",
               "filter": "F200W", "pupil": "CLEAR", "level": 0.3, "noise": 0.02},
    "MIRI": {"full": (1024, 1032), "exp_type": "MIR_IMAGE", "detector": "MIRIMAGE",
             "filter": "F770W", "level": 15.0, "noise": 0.3},
    "NIRISS": {"full": (2048, 2048), "exp_type": "NIS_IMAGE", "detector": "NIS",
               "filter": "F150W", "pupil": "CLEARP", "level": 0.4, "noise": 0.02},
    "NIRSPEC": {"full": (2048, 2048), "exp_type": "NRS_IFU", "detector": "NRS1",
                "filter": "F170LP", "grating": "G235M", "level": 0.2, "noise": 0.02},
}

_JWST_NAME = re.compile(r"^jw(\d{5})(\d{3})(\d{3})_(\d{2})(\d)(\d{2})_(\d{5})_([a-z0-9]+)_")
_MJD_2024 = 60310.0  # 2024-01-01T00:00:00 UTC
_INT_TIMES_COLUMNS = ("int_start_MJD_UTC", "int_mid_MJD_UTC", "int_end_MJD_UTC",
                      "int_start_BJD_TDB", "int_mid_BJD_TDB", "int_end_BJD_TDB")
_VAR_SHARES = {"VAR_POISSON": 0.35, "VAR_RNOISE": 0.6, "VAR_FLAT": 0.05}


def atomic_write(path: os.PathLike | str, writer: Callable[[BinaryIO], None], *,
                 overwrite: bool = False) -> Path:
    """Write a file through a temporary sibling and rename it into place.

    Parameters
    ----------
    path : path-like
        Final file name. Its directory must exist.
    writer : callable
        Called with an open binary file object; writes the whole content.
    overwrite : bool
        Replace an existing file. When False, an existing ``path`` raises.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    """
    path = Path(path)
    if not overwrite and path.exists():
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    fd = os.open(tmp, flags, 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            writer(fh)
            fh.flush()
            os.fsync(fh.fileno())
        if not overwrite and path.exists():
            raise FileExistsError(f"{path} appeared while it was being written")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def _subarray_name(instrument: str, substrt: tuple[int, int], xsize: int, ysize: int) -> str:
    full = DETECTORS.get(instrument, {}).get("full")
    if tuple(substrt) == (1, 1) and full is not None and (ysize, xsize) == tuple(full):
        return "FULL"
    return f"SUB{xsize}" if xsize == ysize else f"SUB{xsize}X{ysize}"


def _primary_header(path: Path, shape: tuple[int, ...], instrument: str, exp_type: str | None,
                    substrt: tuple[int, int] | None, subsize: tuple[int, int] | None,
                    nints: int | None) -> fits.Header:
    preset = DETECTORS.get(instrument, {})
    ny, nx = shape[-2:]
    n_int = nints if nints is not None else (shape[0] if len(shape) == 3 else 1)
    xsize, ysize = subsize if subsize is not None else (nx, ny)
    hdr = fits.Header()
    hdr["DATE"] = ("2024-01-01T12:00:00.000", "UTC date file created")
    hdr["ORIGIN"] = ("STSCI", "Organization responsible for creating file")
    hdr["FILENAME"] = (path.name, "Name of the file")
    hdr["DATAMODL"] = ("CubeModel" if len(shape) == 3 else "ImageModel", "Type of data model")
    hdr["TELESCOP"] = ("JWST", "Telescope used to acquire the data")
    match = _JWST_NAME.match(path.name)
    if match:
        prog, obs, visit, grp, seq, act, expo, _ = match.groups()
        for key, val, com in (("PROGRAM", prog, "JWST program number"),
                              ("OBSERVTN", obs, "Observation number"),
                              ("VISIT", visit, "Visit number"),
                              ("VISITGRP", grp, "Visit group identifier"),
                              ("SEQ_ID", seq, "Parallel sequence identifier"),
                              ("ACT_ID", act, "Activity identifier"),
                              ("EXPOSURE", expo, "Exposure request number")):
            hdr[key] = (val, com)
    hdr["DATE-OBS"] = ("2024-01-01", "[yyyy-mm-dd] UTC date at start of exposure")
    hdr["TIME-OBS"] = ("00:00:00.000", "[hh:mm:ss.sss] UTC time at start of exposure")
    hdr["TARGNAME"] = ("SYNTH-FIELD", "Standard astronomical catalog name for target")
    hdr["INSTRUME"] = (instrument, "Instrument used to acquire the data")
    for key, name, com in (("DETECTOR", "detector", "Name of detector used to acquire the data"),
                           ("FILTER", "filter", "Name of the filter element used"),
                           ("PUPIL", "pupil", "Name of the pupil element used"),
                           ("GRATING", "grating", "Name of the grating element used")):
        if name in preset:
            hdr[key] = (preset[name], com)
    hdr["EXP_TYPE"] = (exp_type or preset.get("exp_type", "UNKNOWN"), "Type of data in exposure")
    duration = 300.0 * int(n_int) / 86400.0
    hdr["EXPSTART"] = (_MJD_2024, "[d] exposure start time in MJD")
    hdr["EXPMID"] = (_MJD_2024 + duration / 2, "[d] exposure mid time in MJD")
    hdr["EXPEND"] = (_MJD_2024 + duration, "[d] exposure end time in MJD")
    hdr["NINTS"] = (int(n_int), "Number of integrations in exposure")
    hdr["NGROUPS"] = (8, "Number of groups in integration")
    hdr["EFFINTTM"] = (300.0, "[s] Effective integration time")
    hdr["EFFEXPTM"] = (300.0 * int(n_int), "[s] Effective exposure time")
    name = _subarray_name(instrument, substrt or (1, 1), xsize, ysize)
    hdr["SUBARRAY"] = (name, "Subarray used")
    if substrt is not None:
        hdr["SUBSTRT1"] = (int(substrt[0]), "Starting pixel in axis 1 direction")
        hdr["SUBSIZE1"] = (int(xsize), "Number of pixels in axis 1 direction")
        hdr["SUBSTRT2"] = (int(substrt[1]), "Starting pixel in axis 2 direction")
        hdr["SUBSIZE2"] = (int(ysize), "Number of pixels in axis 2 direction")
    return hdr


def _int_times_hdu(int_times: Any, nints: int, start: float, inttm: float) -> fits.BinTableHDU:
    if int_times is None:
        begin = start + np.arange(nints) * inttm / 86400.0
        end = begin + inttm / 86400.0
        int_times = np.column_stack([begin, end])
    arr = np.asarray(int_times)
    if arr.dtype.names is None:
        if arr.ndim != 2 or arr.shape[1] != 2:
            raise ValueError("int_times must be a structured array or an (nints, 2) array "
                             "of (start, end) MJD values")
        begin, end = arr[:, 0].astype(np.float64), arr[:, 1].astype(np.float64)
        tdb = 69.184 / 86400.0  # a fake but plausible UTC -> TDB offset
        values = [begin, (begin + end) / 2, end, begin + tdb, (begin + end) / 2 + tdb, end + tdb]
        cols = [fits.Column("integration_number", "J", array=np.arange(1, len(arr) + 1))]
        cols += [fits.Column(n, "D", array=v) for n, v in zip(_INT_TIMES_COLUMNS, values)]
        return fits.BinTableHDU.from_columns(cols, name="INT_TIMES")
    return fits.BinTableHDU(arr, name="INT_TIMES")


def _asdf_hdu(header: fits.Header, shape: tuple[int, ...]) -> fits.BinTableHDU:
    lines = [
        "#ASDF 1.0.0", "#ASDF_STANDARD 1.5.0", "%YAML 1.1", "%TAG ! tag:stsci.edu:asdf/",
        "--- !core/asdf-1.1.0",
        "asdf_library: !core/software-1.0.0 {author: The ASDF Developers, name: asdf, "
        "version: 3.5.0}",
        "data: !core/ndarray-1.0.0 {source: 'fits:SCI,1', datatype: float32, "
        f"byteorder: big, shape: {list(shape)}}}",
        "meta:",
        f"  filename: {header.get('FILENAME', '')}",
        f"  model_type: {header.get('DATAMODL', 'ImageModel')}",
        "  instrument: {name: %s, detector: %s}" % (header.get("INSTRUME", ""),
                                                     header.get("DETECTOR", "")),
        f"  exposure: {{type: {header.get('EXP_TYPE', '')}, nints: {header.get('NINTS', 1)}}}",
        "  synthetic: made by daskbkg.datasets",
        "...", "",
    ]
    raw = np.frombuffer("\n".join(lines).encode("ascii"), dtype=np.uint8)
    col = fits.Column(name="ASDF_METADATA", format=f"{raw.size}B", array=raw[np.newaxis, :])
    return fits.BinTableHDU.from_columns([col], name="ASDF")


def _image_hdu(data: np.ndarray, name: str, bunit: str | None = None,
               extra: Mapping[str, Any] | None = None) -> fits.ImageHDU:
    hdu = fits.ImageHDU(data, name=name)
    hdu.header["EXTVER"] = (1, "extension value")
    if bunit:
        hdu.header["BUNIT"] = (bunit, "physical units of the array values")
    _apply(hdu.header, extra)
    return hdu


def _apply(header: fits.Header, updates: Mapping[str, Any] | None) -> None:
    for key, value in (updates or {}).items():
        if value is None:
            header.remove(key, ignore_missing=True, remove_all=True)
        else:
            header[key] = value


def _as_dq(dq: Any, shape: tuple[int, ...]) -> np.ndarray:
    if dq is None:
        return np.zeros(shape, dtype=np.uint32)
    arr = np.asarray(dq)
    if arr.dtype != np.uint32:
        if arr.dtype.kind not in "biu":
            raise TypeError(f"dq must hold integers, not {arr.dtype}")
        if arr.size and (arr.min() < 0 or arr.max() > np.iinfo(np.uint32).max):
            raise ValueError("dq values must fit in uint32")
        arr = arr.astype(np.uint32)
    return arr


def write_exposure(path: os.PathLike | str, sci: Any, err: Any = None, dq: Any = None, *,
                   instrument: str = "NIRCAM", exp_type: str | None = None,
                   substrt: tuple[int, int] | None = (1, 1),
                   subsize: tuple[int, int] | None = None, window_keywords: bool = True,
                   nints: int | None = None, extra_primary: Mapping[str, Any] | None = None,
                   var_arrays: bool | Mapping[str, Any] = True, int_times: Any = None,
                   asdf_extension: bool = True, extra_sci: Mapping[str, Any] | None = None,
                   err_before_dq: bool = False, overwrite: bool = False) -> Path:
    """Write one JWST level-2 style exposure (``*_rate.fits`` / ``*_rateints.fits``).

    Parameters
    ----------
    path : path-like
        Output file. Written atomically (temporary sibling, then :func:`os.replace`).
    sci : array_like
        Science array, 2-D ``(ny, nx)`` or 3-D ``(nints, ny, nx)``; written as float32.
    err : array_like, optional
        Error array of the same shape (float32); default ones.
    dq : array_like, optional
        Integer DQ array of the same shape, stored as uint32 with ``BZERO = 2**31``;
        default zeros.
    instrument : str
        ``INSTRUME``. Keys of :data:`DETECTORS` also set DETECTOR, FILTER (and PUPIL or
        GRATING); other names are written as given, without those keywords.
    exp_type : str, optional
        ``EXP_TYPE``; default the instrument's preset (``NRC_IMAGE`` for NIRCam).
    substrt : (int, int) or None
        1-based window origin ``(xstart, ystart)`` -> SUBSTRT1, SUBSTRT2. ``None`` omits
        all window keywords, like ``window_keywords=False``.
    subsize : (int, int), optional
        Window size ``(xsize, ysize)`` -> SUBSIZE1, SUBSIZE2; default the array's
        ``(nx, ny)``. It may disagree with the array on purpose.
    window_keywords : bool
        When False, SUBSTRT1/2 and SUBSIZE1/2 are all omitted (SUBARRAY is kept; delete
        it through ``extra_primary`` if needed).
    nints : int, optional
        ``NINTS``; default the first axis of 3-D data, 1 for 2-D data.
    extra_primary : mapping, optional
        Extra or overriding PRIMARY keywords (value or ``(value, comment)``); ``None``
        deletes the keyword.
    var_arrays : bool or mapping
        True writes VAR_POISSON, VAR_RNOISE and VAR_FLAT derived from ``err`` (their sum is
        ``err**2``); a mapping ``{EXTNAME: array}`` writes the given arrays; False none.
    int_times : array_like or False, optional
        INT_TIMES table: ``None`` makes a synthetic one for 3-D data (none for 2-D),
        ``False`` never writes it, a structured array or an ``(nints, 2)`` array of
        (start, end) MJD values is written whatever the dimensionality.
    asdf_extension : bool
        Append the one-row ``ASDF`` binary table (column ``ASDF_METADATA``, uint8).
    extra_sci : mapping, optional
        Extra SCI-header keywords, e.g. ``{"DISPAXIS": 1}``.
    err_before_dq : bool
        Write ERR before DQ (SCI, ERR, DQ, ...), an order also found in real products;
        readers must look extensions up by EXTNAME anyway.
    overwrite : bool
        Replace an existing file; otherwise an existing ``path`` raises.

    Returns
    -------
    pathlib.Path
        The written path.

    Raises
    ------
    ValueError
        If the arrays are not 2-D/3-D or their shapes differ.
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    """
    path = Path(path)
    sci = np.asarray(sci, dtype=np.float32)
    if sci.ndim not in (2, 3):
        raise ValueError(f"sci must be 2-D or 3-D, got shape {sci.shape}")
    err = np.ones_like(sci) if err is None else np.asarray(err, dtype=np.float32)
    dq = _as_dq(dq, sci.shape)
    if err.shape != sci.shape or dq.shape != sci.shape:
        raise ValueError(f"shapes differ: sci {sci.shape}, err {err.shape}, dq {dq.shape}")
    instrument = instrument.upper()
    window = substrt if window_keywords else None
    primary = fits.PrimaryHDU(header=_primary_header(path, sci.shape, instrument, exp_type,
                                                     window, subsize, nints))
    _apply(primary.header, extra_primary)
    pair = [_image_hdu(dq, "DQ"), _image_hdu(err, "ERR", "DN/s")]
    hdus: list[Any] = [primary, _image_hdu(sci, "SCI", "DN/s", extra_sci),
                       *(pair[::-1] if err_before_dq else pair)]
    if isinstance(var_arrays, Mapping):
        hdus += [_image_hdu(np.asarray(a, dtype=np.float32), n) for n, a in var_arrays.items()]
    elif var_arrays:
        var = np.square(err, dtype=np.float32)
        hdus += [_image_hdu(var * np.float32(s), n) for n, s in _VAR_SHARES.items()]
    if int_times is not False and (int_times is not None or sci.ndim == 3):
        hdr = primary.header
        hdus.append(_int_times_hdu(int_times, sci.shape[0] if sci.ndim == 3 else 1,
                                   float(hdr.get("EXPSTART", _MJD_2024)),
                                   float(hdr.get("EFFINTTM", 300.0))))
    if asdf_extension:
        hdus.append(_asdf_hdu(primary.header, sci.shape))
    hdul = fits.HDUList(hdus)
    return atomic_write(path, lambda fh: hdul.writeto(fh), overwrite=overwrite)
