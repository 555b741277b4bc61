"""Public Python API.

``subtract_background``, ``combine_backgrounds`` and ``subtract_wfss_background``.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

from .combine import CombinedBackground, build_combined_background
from .io.exposure import Exposure
from .options import ClipParams, ReferenceCompat, make_compat
from .plan import parse_chunks, parse_memory
from .result import BackgroundResult
from .subtract import build_product

__all__ = ["subtract_background", "combine_backgrounds", "subtract_wfss_background"]

PathOrExposure = "str | os.PathLike | Exposure"


def _compat(compat: str | ReferenceCompat | None, options: dict[str, Any]) -> ReferenceCompat:
    if isinstance(compat, ReferenceCompat):
        if options:
            import dataclasses

            return dataclasses.replace(compat, **options)
        return compat
    return make_compat(compat or "jwst-1.13", **options)


def _exposures(items: Any) -> list[Any]:
    """Background list as given (paths stay paths: they are opened in order later).

    One path, exposure, ``HDUList`` or datamodel is a list of one.
    """
    from .io.memory import is_datamodel, is_hdulist

    if items is None:
        return []
    if isinstance(items, (str, os.PathLike, Exposure)) or is_hdulist(items) \
            or is_datamodel(items):
        return [items]
    return list(items)


def subtract_background(
    target: Any,
    backgrounds: Sequence[Any] | Any,
    sigma: float = 3.0,
    maxiters: int | None = None,
    *,
    compat: str | ReferenceCompat | None = None,
    chunks: Any = None,
    memory_limit: Any = None,
    strict: bool = False,
    **options: Any,
) -> BackgroundResult:
    """Background-subtract one target exposure (imaging and non-WFSS spectroscopy).

    The backgrounds are averaged with iterative sigma clipping (rate: 2-D; rateints:
    clipped over integrations first), the ERR arrays propagated in quadrature over the
    kept values, the DQ arrays ORed, and the result subtracted from the target, exactly as
    the reference pipeline's background step (jwst 1.13.2) does, quirks included.

    Parameters
    ----------
    target : path, URL, HDUList, datamodel or Exposure
        The exposure to correct (``*_rate.fits`` or ``*_rateints.fits``). An
        ``astropy.io.fits.HDUList`` or a JWST datamodel already in memory is used as is
        (it is not modified; see :mod:`daskbkg.io.memory`).
    backgrounds : sequence of path, URL, HDUList, datamodel or Exposure
        Background exposures, in summation order.
    sigma : float, optional
        Clip threshold (default 3.0).
    maxiters : int or None, optional
        Clip passes; None (default) or 0 iterate until converged.
    compat : {"jwst-1.13", "jwst-3.0"} or ReferenceCompat, optional
        Behaviour preset; the default reproduces jwst 1.13.2.
    chunks : int, str or (int, int), optional
        Tile shape ``ROWS`` or ``ROWS,COLS``; default: row strips sized by the budget.
    memory_limit : int or str, optional
        Working-set budget for tiles in flight (e.g. ``"512MB"``).
    strict : bool, optional
        Every input is checked before the graph is built (:mod:`daskbkg.validate`).
        Inputs the reference accepts but that look wrong (a background that does not
        overlap, SUBSIZE disagreeing with the array, duplicated backgrounds, ...) are
        logged as warnings and give the reference's result; ``strict=True`` raises for
        them instead.
    **options
        Individual compatibility switches (``subarray_placement="aligned"``,
        ``rateints_empty_lane="nan"``, ...; see :class:`daskbkg.ReferenceCompat`).

    Returns
    -------
    BackgroundResult
        Lazy result; call ``.compute()``, ``.to_fits(path)`` or ``.to_zarr(path)``.

    Raises
    ------
    daskbkg.errors.DaskbkgError
        A one-line explanation (file and reason) of the first unusable input; the
        exception is also an instance of the built-in type the reference raises.
    """
    from .validate import enforce, prepare_inputs, validate_params

    enforce(validate_params(sigma, maxiters, chunks=chunks, memory_limit=memory_limit), strict)
    params = ClipParams(sigma=sigma, maxiters=maxiters)
    compat_obj = _compat(compat, options)
    exposure, bkgs = prepare_inputs(target, _exposures(backgrounds), compat_obj, strict=strict)
    product = build_product(
        exposure, bkgs, params, compat_obj,
        chunks=parse_chunks(chunks), memory_limit=parse_memory(memory_limit),
    )
    return BackgroundResult(product)


def combine_backgrounds(
    backgrounds: Sequence[Any] | Any,
    sigma: float = 3.0,
    maxiters: int | None = None,
    *,
    target: Any = None,
    compat: str | ReferenceCompat | None = None,
    chunks: Any = None,
    memory_limit: Any = None,
    strict: bool = False,
    **options: Any,
) -> CombinedBackground:
    """Combine background exposures into one lazy background image.

    Parameters
    ----------
    backgrounds : sequence of path or Exposure
        Background exposures, in summation order (at least one).
    sigma, maxiters, compat, chunks, memory_limit, strict, **options
        As for :func:`subtract_background`.
    target : path or Exposure, optional
        Exposure whose window, shape and mode (rate/rateints) the combination follows;
        defaults to the first background.

    Returns
    -------
    CombinedBackground
        Lazy ``sci``, ``err``, ``dq`` and ``nbkg`` arrays.
    """
    from .errors import InputError
    from .validate import enforce, prepare_inputs, validate_params

    exposures = _exposures(backgrounds)
    if target is None and not exposures:
        raise InputError("combine_backgrounds needs at least one background or a target")
    enforce(validate_params(sigma, maxiters, chunks=chunks, memory_limit=memory_limit), strict)
    params = ClipParams(sigma=sigma, maxiters=maxiters)
    compat_obj = _compat(compat, options)
    reference, bkgs = prepare_inputs(target, exposures, compat_obj, strict=strict, combine=True)
    return build_combined_background(
        reference if reference is not None else bkgs[0], bkgs, params, compat_obj,
        chunks=parse_chunks(chunks), memory_limit=parse_memory(memory_limit),
    )


def subtract_wfss_background(
    target: Any,
    bkg_ref: Any,
    *,
    wavelengthrange: Any = None,
    source_catalog: Any = None,
    source_mask: Any = None,
    source_boxes: Any = None,
    method: str | None = None,
    mmag_extract: float | None = None,
    maxiter: int = 5,
    rms_stop: float = 0.0,
    outlier_percent: float = 1.0,
    compat: str | ReferenceCompat | None = None,
    chunks: Any = None,
    **options: Any,
) -> BackgroundResult:
    """Background-subtract one WFSS exposure (``NRC_WFSS``/``NIS_WFSS``) with a scaled reference.

    The background reference image is scaled to the science image over source-free
    pixels and subtracted. Source pixels come from the catalog (``SCATFILE`` or
    ``source_catalog``) through the grism WCS stored in the target (needs the ``[wfss]``
    extra), or from a user mask / box table. The statistics are computed when this
    function is called; the subtraction itself stays lazy.

    Parameters
    ----------
    target : path or Exposure
        WFSS exposure carrying its grism WCS (the output of the pipeline's WCS assignment)
        unless ``source_mask`` or ``source_boxes`` is given.
    bkg_ref : path
        Background reference image (SCI, DQ, DQ_DEF).
    wavelengthrange, source_catalog, source_mask, source_boxes : path, optional
        See :func:`daskbkg.wfss.build_wfss_product`.
    method : {"robust-mean", "weighted"}, optional
        Scaling estimator; default the reference's robust mean (``compat="jwst-3.0"``
        selects ``weighted``).
    mmag_extract, maxiter, rms_stop, outlier_percent
        The reference's ``wfss_*`` step parameters.
    compat, chunks, **options
        As for :func:`subtract_background` (e.g. ``wfss_pixel_test="fixed"``,
        ``record_scale_factor=True``, ``save_wfss_mask=True``).

    Returns
    -------
    BackgroundResult
        ``.product.info`` holds the scale factor, the means and the parameters.
    """
    from .io.exposure import as_exposure
    from .wfss import WfssParams, build_wfss_product

    params = WfssParams(method=method, mmag_extract=mmag_extract, maxiter=maxiter,
                        rms_stop=rms_stop, outlier_percent=outlier_percent)
    product = build_wfss_product(
        as_exposure(target), bkg_ref=bkg_ref, wavelengthrange=wavelengthrange,
        source_catalog=source_catalog, source_mask=source_mask, source_boxes=source_boxes,
        params=params, compat=_compat(compat, options), chunks=parse_chunks(chunks),
    )
    return BackgroundResult(product)
