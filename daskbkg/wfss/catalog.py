"""Source catalog of a WFSS exposure: locating it, reading it, selecting sources.

The catalog is the ECSV table written by the imaging source-catalog step and named by the
target's ``SCATFILE`` keyword (algorithm page W.3–W.3). Only the four ``sky_bbox_*``
corners (SkyCoord columns) and ``isophotal_abmag`` are used; the other required columns
must merely exist.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import (
    WfssCatalogColumnError,
    WfssCatalogError,
    WfssFileNotFoundError,
    WfssInstrumentError,
    WfssNoCatalogError,
)

__all__ = [
    "REQUIRED_COLUMNS",
    "CORNER_COLUMNS",
    "SourceCorners",
    "filter_key",
    "resolve_catalog_path",
    "read_catalog",
    "magnitude_selection",
    "select_sources",
]

#: Columns the reference requires (a missing one raises KeyError).
REQUIRED_COLUMNS = (
    "label", "xcentroid", "ycentroid", "sky_centroid", "isophotal_abmag",
    "isophotal_abmag_err", "sky_bbox_ll", "sky_bbox_lr", "sky_bbox_ul", "sky_bbox_ur",
    "is_extended",
)

#: The four sky corners projected through the grism WCS, in evaluation order.
CORNER_COLUMNS = ("sky_bbox_ll", "sky_bbox_lr", "sky_bbox_ul", "sky_bbox_ur")


@dataclass(frozen=True)
class SourceCorners:
    """One selected catalog object.

    Attributes
    ----------
    label : int
        Catalog ``label``.
    ra, dec : numpy.ndarray
        The four corners (order of :data:`CORNER_COLUMNS`) in degrees, float64.
    magnitude : float
        ``isophotal_abmag`` (NaN when missing or masked).
    """

    label: int
    ra: np.ndarray
    dec: np.ndarray
    magnitude: float


def filter_key(instrument: str | None, filter_name: str | None, pupil: str | None, *,
               miri: bool = False) -> str | None:
    """Return the wavelengthrange key of an exposure (algorithm page W.3).

    Parameters
    ----------
    instrument : str or None
        ``INSTRUME``.
    filter_name, pupil : str or None
        ``FILTER`` and ``PUPIL``.
    miri : bool
        Accept MIRI, whose key is ``FILTER`` (jwst 3.0 behaviour).

    Returns
    -------
    str or None
        ``FILTER`` for NIRCam (and MIRI with ``miri``), ``PUPIL`` for NIRISS (the grism sits
        in the filter wheel there).

    Raises
    ------
    WfssInstrumentError
        Any other instrument (a ``ValueError``, as in the reference).
    """
    name = (instrument or "").strip().upper()
    if name == "NIRCAM" or (miri and name == "MIRI"):
        return filter_name
    if name == "NIRISS":
        return pupil
    raise WfssInstrumentError(
        f"WFSS source boxes are defined for NIRCam and NIRISS only, not instrument {instrument!r}"
    )


def resolve_catalog_path(scatfile: str | None, target_path: str | os.PathLike, *,
                         override: str | os.PathLike | None = None,
                         cwd: str | os.PathLike | None = None) -> Path:
    """Locate the source catalog (algorithm page W.3).

    Precedence: ``override`` (a user parameter or an association ``sourcecat`` member),
    then ``SCATFILE`` relative to the current directory (what the reference does), then
    ``SCATFILE`` relative to the target file's folder. Absolute names are used as given.

    Parameters
    ----------
    scatfile : str or None
        Value of the target's ``SCATFILE`` keyword.
    target_path : path-like
        The target file (its folder is the second place searched).
    override : path-like, optional
        Explicit catalog path; it must exist.
    cwd : path-like, optional
        Folder standing for the current directory (default :func:`os.getcwd`).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    WfssNoCatalogError
        ``SCATFILE`` is missing or empty and no override is given (``ValueError``).
    WfssFileNotFoundError
        The file is not found in any searched place (``FileNotFoundError``).
    """
    if override is not None:
        path = Path(override)
        if not path.is_file():
            raise WfssFileNotFoundError(f"{path}: source catalog not found")
        return path
    if scatfile is None:
        raise WfssNoCatalogError(
            f"{target_path}: no source catalog: the SCATFILE keyword is missing; give a "
            "catalog (--source-catalog), a background mask (--source-mask) or a box table "
            "(--source-boxes)"
        )
    name = str(scatfile).strip()
    if not name:
        raise WfssNoCatalogError(f"{target_path}: the SCATFILE keyword is empty")
    if os.path.isabs(name):
        candidates = [Path(name)]
    else:
        here = Path(cwd) if cwd is not None else Path.cwd()
        candidates = [here / name, Path(target_path).resolve().parent / name]
    for path in candidates:
        if path.is_file():
            return path
    raise WfssFileNotFoundError(
        f"source catalog {name!r} (SCATFILE of {target_path}) not found; looked in "
        + ", ".join(str(p.parent) for p in candidates)
    )


def read_catalog(path: str | os.PathLike):
    """Read an ECSV source catalog into an astropy QTable and check its columns.

    Raises
    ------
    WfssFileNotFoundError
        The file does not exist.
    WfssCatalogError
        The file is not a readable ECSV table (``ValueError``).
    WfssCatalogColumnError
        A required column is missing (``KeyError``); the message lists every missing one.
    """
    from astropy.table import QTable

    path = Path(path)
    if not path.is_file():
        raise WfssFileNotFoundError(f"{path}: source catalog not found")
    try:
        table = QTable.read(path, format="ascii.ecsv")
    except Exception as exc:  # astropy raises assorted errors on malformed tables
        raise WfssCatalogError(
            f"{path}: not a readable ECSV source catalog ({type(exc).__name__}: {exc})"
        ) from None
    missing = [name for name in REQUIRED_COLUMNS if name not in table.colnames]
    if missing:
        raise WfssCatalogColumnError(
            f"{path}: source catalog lacks required column(s): {', '.join(missing)}"
        )
    return table


def _float_values(column) -> np.ndarray:
    """Column values as float64, with masked entries as NaN.

    Handles plain and masked columns and (masked) quantities.
    """
    mask = getattr(column, "mask", None)
    data = getattr(column, "unmasked", column)  # astropy Masked quantity
    data = getattr(data, "value", data)  # Quantity / Column -> ndarray
    out = np.array(np.ma.getdata(data), dtype=np.float64).reshape(-1)
    if mask is not None:
        flags = np.asarray(mask, dtype=bool)
        if flags.ndim == 0:
            flags = np.full(out.shape, bool(flags))
        out[flags.reshape(-1)] = np.nan
    return out


def magnitude_selection(magnitudes, cut: float, nan_mag: str = "exclude") -> np.ndarray:
    """Which objects get source boxes (algorithm page W.3).

    Parameters
    ----------
    magnitudes : array_like
        ``isophotal_abmag`` values, NaN for missing or masked ones.
    cut : float
        Magnitude cut; an object is selected iff its magnitude is strictly below it.
    nan_mag : {"exclude", "include"}
        NaN magnitudes are dropped (the reference) or kept (jwst 1.18–3.0).

    Returns
    -------
    numpy.ndarray of bool
    """
    mags = np.asarray(magnitudes, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        selected = mags < cut
    if nan_mag == "include":
        selected |= np.isnan(mags)
    elif nan_mag != "exclude":
        raise ValueError(f"nan_mag must be 'exclude' or 'include', not {nan_mag!r}")
    return selected


def select_sources(table, cut: float, nan_mag: str = "exclude") -> list[SourceCorners]:
    """Return the selected objects of a catalog, in catalog order, with their sky corners."""
    mags = _float_values(table["isophotal_abmag"])
    keep = magnitude_selection(mags, cut, nan_mag)
    corners = []
    for name in CORNER_COLUMNS:
        coord = table[name]
        corners.append((np.asarray(coord.ra.deg, dtype=np.float64).reshape(-1),
                        np.asarray(coord.dec.deg, dtype=np.float64).reshape(-1)))
    labels = np.asarray(getattr(table["label"], "value", table["label"])).reshape(-1)
    out = []
    for i in np.flatnonzero(keep):
        out.append(SourceCorners(
            label=int(labels[i]),
            ra=np.array([c[0][i] for c in corners], dtype=np.float64),
            dec=np.array([c[1][i] for c in corners], dtype=np.float64),
            magnitude=float(mags[i]),
        ))
    return out
