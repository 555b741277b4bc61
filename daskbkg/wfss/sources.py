"""Build the WFSS background mask from whichever source description the user gave.

Precedence (algorithm page W.3, W.9, W.10):

1. a user **mask** file (``--source-mask``): replaces W.3–W.4;
2. a user **box table** (``--source-boxes``): replaces W.3, then W.4 rasterises it;
3. the **catalog** (``--source-catalog``, an association ``sourcecat`` member, or the
   target's ``SCATFILE``) projected through the target's grism gwcs (W.3), then W.4;
4. with the weighted estimator only: no catalog at all means every pixel is background.

Giving both a mask and a box table is refused.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..options import ReferenceCompat
from .boxes import Box, compute_boxes
from .boxtable import read_box_table
from .catalog import filter_key, read_catalog, resolve_catalog_path, select_sources
from .errors import WfssParameterValueError
from .grismwcs import grism_backward_transform
from .mask import rasterize_boxes, read_mask_file
from .params import WfssParams
from .wavelengthrange import read_wavelengthrange, resolve_wavelengthrange_path

__all__ = ["BackgroundMask", "background_mask", "catalog_boxes", "sci_dispaxis"]

log = logging.getLogger("daskbkg")

#: Where a background mask came from.
MASK_ORIGINS = ("user-mask", "boxes", "catalog", "all")


@dataclass(frozen=True)
class BackgroundMask:
    """A background mask (True = background) and where it came from.

    Attributes
    ----------
    mask : numpy.ndarray of bool
        Target-shaped mask.
    origin : {"user-mask", "boxes", "catalog", "all"}
    boxes : tuple of Box or None
        The boxes rasterised (catalog or box-table route).
    catalog, wavelengthrange : str or None
        Files used by the catalog route.
    n_selected : int or None
        Catalog objects passing the magnitude cut (catalog route).
    """

    mask: np.ndarray
    origin: str
    boxes: tuple | None = None
    catalog: str | None = None
    wavelengthrange: str | None = None
    n_selected: int | None = None


def sci_dispaxis(target) -> int | None:
    """``DISPAXIS`` from the target's SCI header (None when absent or not an integer)."""
    hdu = target.layout.find("SCI")
    value = None if hdu is None else hdu.header.get("DISPAXIS")
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def catalog_boxes(target, *, source_catalog=None, wavelengthrange=None,
                  params: WfssParams = WfssParams(),
                  compat: ReferenceCompat = ReferenceCompat()) -> tuple[list[Box], dict]:
    """Source boxes of a WFSS target from its catalog and grism gwcs (algorithm page W.3).

    Parameters
    ----------
    target : Exposure
        The WFSS target (output of assign_wcs).
    source_catalog : path-like, optional
        Catalog overriding ``SCATFILE``.
    wavelengthrange : path-like, optional
        WAVELENGTHRANGE file; default: the file named by ``R_WAVRAN`` if found locally.
    params : WfssParams
        Supplies the magnitude cut.
    compat : ReferenceCompat
        Supplies ``wfss_nan_mag`` (and MIRI's filter key under ``compat="jwst-3.0"``).

    Returns
    -------
    boxes : list of Box
    details : dict
        ``catalog``, ``wavelengthrange`` (paths), ``n_selected``, ``filter``, ``orders``.
    """
    header = target.layout.primary_header
    cat_path = resolve_catalog_path(header.get("SCATFILE"), target.path, override=source_catalog)
    key = filter_key(header.get("INSTRUME"), header.get("FILTER"), header.get("PUPIL"),
                     miri=compat.compat == "jwst-3.0")
    wr_path = resolve_wavelengthrange_path(wavelengthrange, header.get("R_WAVRAN"), target.path)
    orders = read_wavelengthrange(wr_path, key)
    sources = select_sources(read_catalog(cat_path), params.mmag_cut, compat.wfss_nan_mag)
    subsize = (target.meta.subsize1, target.meta.subsize2)
    dispaxis = sci_dispaxis(target)
    if sources:
        with grism_backward_transform(target.path) as backward:
            boxes = compute_boxes(sources, backward, orders, subsize, dispaxis)
    else:
        boxes = compute_boxes([], None, orders, subsize, dispaxis)  # still checks SUBSIZE
    details = {"catalog": str(cat_path), "wavelengthrange": str(wr_path),
               "n_selected": len(sources), "filter": key, "orders": list(orders.orders)}
    log.info("%s: %d of the catalog's objects selected (cut %s), %d source boxes kept",
             target.name, len(sources), params.mmag_cut, len(boxes))
    return boxes, details


def background_mask(target, *, source_catalog=None, source_mask=None, source_boxes=None,
                    wavelengthrange=None, params: WfssParams = WfssParams(),
                    compat: ReferenceCompat = ReferenceCompat(),
                    method: str | None = None) -> BackgroundMask:
    """Build the background mask of a WFSS target by the precedence of the module docstring.

    Parameters
    ----------
    target : Exposure
    source_catalog, source_mask, source_boxes, wavelengthrange : path-like, optional
        See :func:`daskbkg.wfss.build_wfss_product`.
    params : WfssParams
    compat : ReferenceCompat
    method : {"robust-mean", "weighted"}, optional
        Estimator (default ``params.resolve_method(compat)``); only the weighted one
        accepts a target without any catalog.

    Returns
    -------
    BackgroundMask

    Raises
    ------
    WfssParameterValueError
        Both a mask and a box table were given.
    WfssNoCatalogError, WfssFileNotFoundError, WfssNoWcsError, ...
        See :func:`catalog_boxes`, :func:`~daskbkg.wfss.mask.read_mask_file` and
        :func:`~daskbkg.wfss.boxtable.read_box_table`.
    """
    method = method or params.resolve_method(compat)
    shape = tuple(target.shape[-2:])
    if source_mask is not None and source_boxes is not None:
        raise WfssParameterValueError(
            "give either a background mask (--source-mask) or a box table (--source-boxes), "
            "not both"
        )
    if source_mask is not None:
        return BackgroundMask(read_mask_file(source_mask, shape), "user-mask")
    if source_boxes is not None:
        boxes = read_box_table(source_boxes)
        return BackgroundMask(rasterize_boxes(boxes, shape), "boxes", boxes=tuple(boxes))
    no_catalog = source_catalog is None and target.layout.primary_header.get("SCATFILE") is None
    if method == "weighted" and no_catalog:
        log.info("%s: no source catalog; every pixel counts as background", target.name)
        return BackgroundMask(np.ones(shape, dtype=bool), "all")
    boxes, details = catalog_boxes(target, source_catalog=source_catalog,
                                   wavelengthrange=wavelengthrange, params=params,
                                   compat=compat)
    return BackgroundMask(rasterize_boxes(boxes, shape), "catalog", boxes=tuple(boxes),
                          catalog=details["catalog"], wavelengthrange=details["wavelengthrange"],
                          n_selected=details["n_selected"])


def describe(mask: BackgroundMask) -> dict[str, Any]:
    """JSON-friendly summary of a mask for the run report."""
    out: dict[str, Any] = {"mask_origin": mask.origin,
                           "mask_background_pixels": int(np.count_nonzero(mask.mask)),
                           "mask_pixels": int(mask.mask.size)}
    if mask.boxes is not None:
        out["n_boxes"] = len(mask.boxes)
        out["n_objects_with_boxes"] = len({b.label for b in mask.boxes})
        out["n_partial_boxes"] = sum(1 for b in mask.boxes if b.partial)
        out["wfss_boxes"] = [b.as_row() for b in mask.boxes]
    for key in ("catalog", "wavelengthrange", "n_selected"):
        value = getattr(mask, key)
        if value is not None:
            out[key] = value
    return out
