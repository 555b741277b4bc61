"""Source boxes: catalog corners projected through the grism WCS (algorithm page W.3–W.3).

For every selected object and every extraction order, the four ``sky_bbox`` corners are
sent through the grism WCS backward transform, world ``(ra, dec, wavelength, order)`` ->
grism detector ``(x, y, x0, y0, order)``, once at ``lambda_min`` and once at
``lambda_max``. The box spans the NaN-ignoring min/max of the 8 points, each extreme
rounded with ``floor(v + 0.5)``. Nothing between the two wavelengths is sampled (a curved
trace is under-covered, as in the reference).

Coordinates are 0-based full-frame grism pixels with pixel centres at integers; they are
not shifted by ``SUBSTRT``. A box is kept iff it reaches the detector along both axes by the
rules of :func:`keep_box`, which use ``SUBSIZE1``/``SUBSIZE2`` (not the array shape).
Boxes partly off the detector are kept whole and flagged :attr:`Box.partial`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np

from .catalog import SourceCorners
from .errors import WfssKeywordError
from .wavelengthrange import OrderRanges

__all__ = ["Box", "round_half_up", "keep_box", "is_partial", "box_bounds", "compute_boxes",
           "dispersion_axis"]


@dataclass(frozen=True)
class Box:
    """One kept (object, order) source box.

    Attributes
    ----------
    label : int
        Catalog ``label`` of the object.
    order : int
        Spectral order.
    xmin, xmax, ymin, ymax : int
        Inclusive, 0-based, full-frame bounds; not clipped to the detector.
    partial : bool
        Some bound lies off the detector (informational; the mask ignores it).
    """

    label: int
    order: int
    xmin: int
    xmax: int
    ymin: int
    ymax: int
    partial: bool = False

    def as_row(self) -> list:
        """``[label, order, xmin, xmax, ymin, ymax, partial]`` with plain Python types."""
        return [int(self.label), int(self.order), int(self.xmin), int(self.xmax),
                int(self.ymin), int(self.ymax), bool(self.partial)]


def round_half_up(value: float) -> int:
    """Round a box bound like the reference: ``floor(value + 0.5)`` (2.5 -> 3, -0.5 -> 0).

    Raises
    ------
    ValueError
        ``value`` is NaN or infinite (the reference would produce an invalid integer).
    """
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"cannot round the non-finite box bound {value!r}")
    return int(math.floor(value + 0.5))


def dispersion_axis(dispaxis) -> int:
    """Dispersion axis for the box rules: 1 (x) if ``DISPAXIS == 1``, else 2 (y)."""
    try:
        return 1 if dispaxis is not None and int(dispaxis) == 1 else 2
    except (TypeError, ValueError):
        return 2


def _sizes(subsize: Sequence) -> tuple[int, int]:
    size_x, size_y = subsize
    if size_x is None or size_y is None:
        raise WfssKeywordError(
            "the SUBSIZE1/SUBSIZE2 keywords are needed to keep or drop WFSS source boxes"
        )
    return int(size_x), int(size_y)


def keep_box(xmin: int, xmax: int, ymin: int, ymax: int, subsize: Sequence,
             dispaxis) -> bool:
    """Whether a box reaches the detector (algorithm page W.3).

    Along the dispersion axis d (x when ``DISPAXIS == 1``, else y):
    ``max_d > 0 and min_d < size_d - 1`` (strict). Across it:
    ``max_c >= 0 and min_c <= size_c - 1``.

    Parameters
    ----------
    xmin, xmax, ymin, ymax : int
        Rounded bounds.
    subsize : (int, int)
        ``(SUBSIZE1, SUBSIZE2)``: the x and y extents.
    dispaxis : int or None
        ``DISPAXIS`` of the SCI header; anything but 1 means y.

    Raises
    ------
    WfssKeywordError
        A SUBSIZE value is None (``TypeError``, as in the reference).
    """
    size_x, size_y = _sizes(subsize)
    if dispersion_axis(dispaxis) == 1:
        (dmin, dmax, dsize), (cmin, cmax, csize) = (xmin, xmax, size_x), (ymin, ymax, size_y)
    else:
        (dmin, dmax, dsize), (cmin, cmax, csize) = (ymin, ymax, size_y), (xmin, xmax, size_x)
    disp_ok = dmax > 0 and dmin < dsize - 1
    cross_ok = cmax >= 0 and cmin <= csize - 1
    return bool(disp_ok and cross_ok)


def is_partial(xmin: int, xmax: int, ymin: int, ymax: int, subsize: Sequence) -> bool:
    """Whether some bound lies off the detector ``[0, SUBSIZE - 1]`` on its axis."""
    size_x, size_y = _sizes(subsize)
    return bool(xmin < 0 or xmax > size_x - 1 or ymin < 0 or ymax > size_y - 1)


def box_bounds(xs: Iterable[float], ys: Iterable[float]) -> tuple[int, int, int, int] | None:
    """Return the rounded ``(xmin, xmax, ymin, ymax)`` of projected points, ignoring NaN.

    Returns None when every x or every y is NaN (the order is then excluded).
    """
    xs, ys = np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)
    xs, ys = xs[~np.isnan(xs)], ys[~np.isnan(ys)]
    if xs.size == 0 or ys.size == 0:
        return None
    extremes = (xs.min(), xs.max(), ys.min(), ys.max())
    if not all(math.isfinite(v) for v in extremes):
        return None
    return tuple(round_half_up(v) for v in extremes)


def _project(backward: Callable, source: SourceCorners, wavelength: float, order: int):
    n = source.ra.size
    out = backward(source.ra, source.dec, np.full(n, wavelength, dtype=np.float64),
                   np.full(n, order))
    return (np.asarray(out[0], dtype=np.float64).reshape(-1),
            np.asarray(out[1], dtype=np.float64).reshape(-1))


def compute_boxes(sources: Iterable[SourceCorners], backward: Callable, orders: OrderRanges,
                  subsize: Sequence, dispaxis) -> list[Box]:
    """Project every selected object through the grism WCS and keep the useful boxes.

    Parameters
    ----------
    sources : iterable of SourceCorners
        Selected objects in catalog order.
    backward : callable
        ``backward(ra, dec, wavelength, order) -> (x, y, ...)``, e.g. the gwcs object's
        ``backward_transform``; called with arrays of the 4 corners, once per wavelength.
    orders : OrderRanges
        Orders to mask and their wavelength limits.
    subsize : (int, int)
        ``(SUBSIZE1, SUBSIZE2)``.
    dispaxis : int or None
        ``DISPAXIS`` of the SCI header.

    Returns
    -------
    list of Box
        Kept boxes in catalog order, then in the listed order of the orders.

    Raises
    ------
    WfssKeywordError
        SUBSIZE1/2 missing (checked before any projection).
    """
    _sizes(subsize)
    boxes = []
    for source in sources:
        for order in orders.orders:
            lmin, lmax = orders.ranges[order]
            x1, y1 = _project(backward, source, lmin, order)
            x2, y2 = _project(backward, source, lmax, order)
            bounds = box_bounds(np.concatenate([x1, x2]), np.concatenate([y1, y2]))
            if bounds is None or not keep_box(*bounds, subsize, dispaxis):
                continue
            boxes.append(Box(source.label, int(order), *bounds,
                             partial=is_partial(*bounds, subsize)))
    return boxes
