"""Access to the grism gwcs stored in a WFSS target (algorithm page W.10).

Only the output of the ``assign_wcs`` step (and later products) carries the grism gwcs,
in its FITS ``ASDF`` extension. Reading it needs **stdatamodels and gwcs** (the optional
``daskbkg[wfss]`` extra), which register the converters of the NIRCam/NIRISS grism
dispersion transforms; plain ``asdf`` cannot read ASDF-in-FITS. daskbkg never builds or
approximates a grism WCS from a rate file.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from typing import Callable, Iterator

from .errors import NO_WCS_ALTERNATIVES, WfssDependencyError, WfssNoWcsError

__all__ = ["grism_backward_transform", "require_wfss_extra"]


def require_wfss_extra():
    """Import and return ``stdatamodels.jwst.datamodels`` (needs stdatamodels and gwcs).

    Raises
    ------
    WfssDependencyError
        The optional dependencies are missing (an ``ImportError``); the message names
        ``pip install daskbkg[wfss]`` and the mask/box-table alternatives.
    """
    try:
        import gwcs  # noqa: F401
        from stdatamodels.jwst import datamodels
    except ImportError as exc:
        raise WfssDependencyError(
            f"reading the grism WCS of a WFSS target needs stdatamodels and gwcs ({exc}); "
            "install them with `pip install daskbkg[wfss]`, or skip the catalog projection "
            "with a background mask (--source-mask) or a box table (--source-boxes)"
        ) from None
    return datamodels


@contextlib.contextmanager
def grism_backward_transform(path: str | os.PathLike) -> Iterator[Callable]:
    """Open a WFSS target and yield its grism WCS backward transform.

    The file stays open while the context is active (the transform may read from it).

    Parameters
    ----------
    path : path-like
        A WFSS product written after ``assign_wcs``.

    Yields
    ------
    callable
        ``backward(ra, dec, wavelength, order) -> (x, y, x0, y0, order)``.

    Raises
    ------
    WfssDependencyError
        stdatamodels/gwcs are not installed.
    WfssNoWcsError
        The file holds no gwcs (e.g. a ``*_rate.fits``) or its ASDF extension cannot be
        read; an ``AttributeError``, as in the reference.
    """
    datamodels = require_wfss_extra()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # schema/validation chatter about other keywords
            model = datamodels.open(os.fspath(path))
    except Exception as exc:  # an unreadable ASDF extension cannot hold a usable gwcs
        raise WfssNoWcsError(
            f"{path}: cannot read a grism WCS from the target ({type(exc).__name__}: {exc}); "
            + NO_WCS_ALTERNATIVES
        ) from exc
    try:
        wcs = getattr(getattr(model, "meta", None), "wcs", None)
        backward = getattr(wcs, "backward_transform", None) if wcs is not None else None
        if backward is None:
            raise WfssNoWcsError(
                f"{path}: the target has no grism WCS (a plain rate file?); "
                + NO_WCS_ALTERNATIVES
            )
        yield backward
    finally:
        model.close()
