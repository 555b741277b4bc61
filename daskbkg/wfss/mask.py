"""The WFSS background mask: rasterised source boxes or a user-supplied mask.

Convention: **True = background** (the reference's ``bkgmask``), target shape.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import numpy as np

from .boxes import Box
from .errors import WfssFileNotFoundError, WfssMaskError

__all__ = ["rasterize_boxes", "read_mask_file", "mask_from_source_map"]


def rasterize_boxes(boxes: Iterable[Box], shape: tuple[int, int]) -> np.ndarray:
    """Background mask from source boxes (algorithm page W.4).

    Every pixel starts True; each box sets rows ``[max(ymin, 0), min(ymax + 1, ny))`` and
    columns ``[max(xmin, 0), min(xmax + 1, nx))`` to False (bounds inclusive, clipped to
    the array; empty ranges do nothing).

    Parameters
    ----------
    boxes : iterable of Box
    shape : (int, int)
        ``(ny, nx)`` of the target.

    Returns
    -------
    numpy.ndarray of bool
    """
    ny, nx = (int(n) for n in shape)
    mask = np.ones((ny, nx), dtype=bool)
    for box in boxes:
        y0, y1 = max(box.ymin, 0), min(box.ymax + 1, ny)
        x0, x1 = max(box.xmin, 0), min(box.xmax + 1, nx)
        if y0 < y1 and x0 < x1:
            mask[y0:y1, x0:x1] = False
    return mask


def mask_from_source_map(values: np.ndarray) -> np.ndarray:
    """Boolean background mask from a numeric array: nonzero (NaN included) = background."""
    return np.asarray(values) != 0


def read_mask_file(path: str | os.PathLike, shape: tuple[int, int]) -> np.ndarray:
    """Read a user background mask (algorithm page W.10, alternative 2).

    The mask is the 2-D image extension ``MASK`` (EXTVER 1) or, when there is none, the
    primary image. Nonzero = background. This reads the jwst 3.0 ``wfss_mask`` files and
    the ``MASK`` extension of jwst >= 1.20 and daskbkg products.

    Parameters
    ----------
    path : path-like
        FITS file.
    shape : (int, int)
        The target's ``(ny, nx)``; the mask must have exactly this shape.

    Returns
    -------
    numpy.ndarray of bool
        True = background.

    Raises
    ------
    WfssFileNotFoundError
        The file does not exist.
    WfssMaskError
        No usable 2-D image, wrong shape, or not a FITS file (``ValueError``).
    """
    from astropy.io import fits

    path = Path(path)
    if not path.is_file():
        raise WfssFileNotFoundError(f"{path}: background mask file not found")
    try:
        with fits.open(path, memmap=False) as hdul:
            hdu = next((h for h in hdul[1:] if h.name.upper() == "MASK"
                        and int(h.header.get("EXTVER", 1) or 1) == 1 and h.is_image), None)
            if hdu is None:
                hdu = hdul[0]
            data = None if hdu.data is None else np.array(hdu.data)
            where = "MASK extension" if hdu is not hdul[0] else "primary image"
    except OSError as exc:
        raise WfssMaskError(f"{path}: not a readable FITS mask ({exc})") from None
    if data is None or data.ndim != 2:
        raise WfssMaskError(f"{path}: no 2-D MASK extension or primary image found")
    if tuple(data.shape) != tuple(shape):
        raise WfssMaskError(
            f"{path}: mask shape {tuple(data.shape)} ({where}) differs from the target's "
            f"{tuple(shape)}"
        )
    return mask_from_source_map(data)
