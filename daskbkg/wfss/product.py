"""The WFSS background product: eager statistics, lazy per-chunk subtraction.

One WFSS exposure is a global reduction (exact percentiles, whole-image sums), so the
statistics pass runs eagerly and in memory when the product is built (one 2048² plane is
16 MiB; about six are needed). It decides ``S_BKDSUB`` and the scale factor. The output
arrays stay lazy: SCI and DQ are dask ``map_blocks`` graphs over lazily read chunks of the
target and of the background reference.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from ..errors import UnsupportedExposureError
from ..io.exposure import Exposure, as_exposure
from ..options import ClipParams, ReferenceCompat
from .boxes import Box
from .boxtable import boxes_file_name, write_box_table
from .errors import WfssShapeError
from .estimators import (
    apply_robust,
    apply_weighted,
    pixel_test,
    robust_scale,
    weighted_scale,
    zero_nan,
)
from .params import WfssParams
from .reference import ReferenceImage, read_reference_image, target_window, translate_dq
from .sources import background_mask, describe, sci_dispaxis

__all__ = ["build_wfss_product", "is_wfss_target", "save_wfss_boxes", "WfssOutcome"]

log = logging.getLogger("daskbkg")


def is_wfss_target(target: Exposure, compat: ReferenceCompat = ReferenceCompat()) -> bool:
    """Whether a target takes the WFSS path (algorithm page W.1).

    ``NRC_WFSS`` and ``NIS_WFSS`` always; ``MIR_WFSS`` only under ``compat="jwst-3.0"``.
    """
    return target.meta.takes_wfss_path(compat.compat)


@dataclass(frozen=True)
class WfssOutcome:
    """What the statistics pass decided (kept in ``Product.info`` as plain values)."""

    status: str
    factor: float | None
    reason: str | None


def _lazy(reader, chunks, name: str):
    import dask.array as da
    from dask.base import tokenize

    return da.from_array(reader, chunks=chunks, name=f"{name}-{tokenize(reader, chunks)}",
                         meta=np.empty((0, 0), dtype=reader.dtype), asarray=False, lock=False)


def _robust_block(sci, ref, f32):
    return apply_robust(sci, zero_nan(ref), f32)


def _matched_reference(ref: ReferenceImage, target: Exposure,
                       compat: ReferenceCompat) -> ReferenceImage:
    """Return the reference image with the target's shape (cut at the window if allowed)."""
    shape = tuple(target.shape)
    if ref.shape == shape:
        return ref
    if compat.wfss_subarray != "cut":
        raise WfssShapeError(
            f"{ref.path}: background reference shape {ref.shape} differs from the target's "
            f"{shape} ({target.path}); use wfss_subarray='cut' to cut a full-frame reference "
            "at the target's SUBSTRT/SUBSIZE window"
        )
    window = target_window(target.layout.primary_header, target.path)
    if (window[3], window[2]) != shape:
        raise WfssShapeError(f"{target.path}: SUBSIZE {window[2]}x{window[3]} does not match "
                             f"the SCI shape {shape}; cannot cut the background reference")
    log.info("%s: background reference cut at the target window %s", target.name, window)
    return ref.cut(window)


def build_wfss_product(target, *, bkg_ref, wavelengthrange=None, source_catalog=None,
                       source_mask=None, source_boxes=None, params: WfssParams = WfssParams(),
                       compat: ReferenceCompat = ReferenceCompat(), chunks=None):
    """Build the WFSS background-subtracted product of one target.

    Parameters
    ----------
    target : Exposure or path-like
        WFSS target (``NRC_WFSS``/``NIS_WFSS``; ``MIR_WFSS`` under ``compat="jwst-3.0"``),
        2-D. For the catalog route it must carry the grism gwcs (assign_wcs output).
    bkg_ref : path-like
        Background reference image (WFSSBKG FITS: SCI, DQ, DQ_DEF).
    wavelengthrange : path-like, optional
        WAVELENGTHRANGE ASDF file (catalog route); default the file named by ``R_WAVRAN``
        when it is in the current directory or next to the target.
    source_catalog : path-like, optional
        Catalog overriding ``SCATFILE`` (e.g. an association ``sourcecat`` member).
    source_mask : path-like, optional
        User background mask FITS (``MASK`` extension or primary image, nonzero =
        background); replaces the catalog route.
    source_boxes : path-like, optional
        User box table (ECSV/JSON, see :mod:`daskbkg.wfss.boxtable`); replaces the
        catalog projection.
    params : WfssParams
        ``wfss_*`` step parameters.
    compat : ReferenceCompat
        Reference-compatibility switches (``wfss_*``, ``record_scale_factor``,
        ``save_wfss_mask``).
    chunks : (int, int), optional
        Tile shape of the lazy output (``-1`` columns = full width); default row bands.

    Returns
    -------
    daskbkg.subtract.Product
        ``status`` is ``"COMPLETE"``, ``"SKIPPED"`` (pixel test failed under the
        1.12/1.13/fixed rules: an unchanged copy) or ``"FAILED"`` (jwst 3.0 rules: pixel
        test failed or non-finite weighted factor; also an unchanged copy). ``info`` holds
        the run-report facts; ``primary_updates`` holds ``S_BKDSUB`` and, with
        ``record_scale_factor``, ``BKGD_SCL``; ``extra_arrays`` holds the ``MASK``
        extension with ``save_wfss_mask``.

    Raises
    ------
    WfssShapeError
        3-D target, or reference shape differs (``IndexError``).
    daskbkg.wfss.errors.WfssError
        Any other unusable WFSS input (see :mod:`daskbkg.wfss.errors`).
    """
    import dask.array as da

    from ..plan import plan_tiles
    from ..subtract import Product

    target = as_exposure(target)
    if not is_wfss_target(target, compat):
        raise UnsupportedExposureError(
            f"{target.path}: EXP_TYPE {target.meta.exp_type!r} does not take the WFSS path")
    if target.ndim != 2:
        raise WfssShapeError(
            f"{target.path}: WFSS background subtraction needs a 2-D rate image, not a "
            f"{target.ndim}-D array of shape {tuple(target.shape)}")
    method = params.resolve_method(compat)
    ref = _matched_reference(read_reference_image(bkg_ref), target, compat)
    bkg = background_mask(target, source_catalog=source_catalog, source_mask=source_mask,
                          source_boxes=source_boxes, wavelengthrange=wavelengthrange,
                          params=params, compat=compat, method=method)
    mask = bkg.mask

    # -- eager statistics pass ---------------------------------------------------------
    sci = np.asarray(target.sci[...], dtype=np.float32)
    dq = np.asarray(target.dq[...], dtype=np.uint32)
    ref_sci = ref.read_sci()
    info = {"wfss_method": method, "wfss_parameters": {**params.as_dict(), "method": method},
            "background_reference": ref.path, **describe(bkg)}
    if bkg.origin == "all":
        test = None
    else:
        mode = "user-mask" if (method == "weighted" and bkg.origin == "user-mask") \
            else compat.wfss_pixel_test
        test = pixel_test(mask, dq, mode, ref=ref_sci)
        info["pixel_test"] = {"mode": mode, "count": test.count, "threshold": test.threshold,
                              "passed": test.passed}
    outcome = _estimate(method, test, sci, ref_sci, mask, target, params, compat, info)
    del sci, ref_sci

    # -- lazy outputs --------------------------------------------------------------------
    tiles = plan_tiles(tuple(target.shape), 1, 1, chunks=chunks)
    block = tiles.chunks_for(tuple(target.shape))
    t_sci = _lazy(target.sci, block, "wfss-target-sci")
    t_err = _lazy(target.err, block, "wfss-target-err")
    t_dq = _lazy(target.dq, block, "wfss-target-dq")
    out_sci, out_dq = t_sci, t_dq
    if outcome.status == "COMPLETE":
        r_sci = _lazy(ref.sci, block, "wfss-ref-sci")
        if outcome.factor is not None and method == "robust-mean":
            out_sci = da.map_blocks(_robust_block, t_sci, r_sci, np.float32(outcome.factor),
                                    dtype=np.float32)
        elif outcome.factor is not None:
            out_sci = da.map_blocks(apply_weighted, t_sci, r_sci, outcome.factor,
                                    dtype=np.float32)
        if ref.dq is not None:
            r_dq = da.map_blocks(partial(translate_dq, dq_map=ref.dq_map),
                                 _lazy(ref.dq, block, "wfss-ref-dq"), dtype=np.uint32)
            out_dq = t_dq | r_dq
    updates = {"S_BKDSUB": outcome.status}
    if compat.record_scale_factor:
        recorded = info.get("scale_factor") if outcome.status == "COMPLETE" else None
        finite = recorded is not None and np.isfinite(recorded)
        updates["BKGD_SCL"] = float(recorded) if finite else 0.0  # FITS cannot hold NaN
    extra = ()
    if compat.save_wfss_mask:
        extra = (("MASK", da.from_array(mask.astype(np.uint32), chunks=block), "uint32"),)
    info["status"] = outcome.status
    notes = (outcome.reason,) if outcome.reason else ()
    return Product(target=target, sci=out_sci, err=t_err, dq=out_dq, status=outcome.status,
                   combined=None, params=ClipParams(), compat=compat, primary_updates=updates,
                   notes=notes, info=info, extra_arrays=extra)


def _estimate(method, test, sci, ref_sci, mask, target, params, compat, info) -> WfssOutcome:
    """Run the pixel test outcome and the estimator; fill ``info``; decide the status."""
    if test is not None and not test.passed:
        status = "FAILED" if info["pixel_test"]["mode"] in ("jwst-3.0", "user-mask") \
            else "SKIPPED"
        reason = (f"not enough background pixels ({test.count}; rule: {test.rule}); "
                  f"background not subtracted, S_BKDSUB = {status}")
        log.warning("%s: %s", target.name, reason)
        return WfssOutcome(status, None, reason)
    if method == "robust-mean":
        scale = robust_scale(sci, ref_sci, mask)
        info.update(sci_mean=scale.sci_mean, ref_mean=scale.ref_mean, scale_factor=scale.factor,
                    scale_factor_float32=None if scale.factor32 is None
                    else float(scale.factor32))
        if not scale.subtract:
            reason = "the background reference has zero mean over the mask; data not scaled"
            log.warning("%s: %s (sci_mean %r)", target.name, reason, scale.sci_mean)
            return WfssOutcome("COMPLETE", None, reason)
        log.info("%s: WFSS robust means sci %r, reference %r; scale factor %r (float32 %r)",
                 target.name, scale.sci_mean, scale.ref_mean, scale.factor, float(scale.factor32))
        return WfssOutcome("COMPLETE", scale.factor, None)
    err = np.asarray(target.err[...], dtype=np.float32)
    fit = weighted_scale(sci, err, ref_sci, mask, maxiter=params.maxiter,
                         rms_stop=params.rms_stop, outlier_percent=params.outlier_percent,
                         dispaxis=sci_dispaxis(target), sci_nan=compat.wfss_sci_nan)
    info.update(scale_factor=fit.factor if fit.finite else None, weighted_passes=fit.passes,
                weighted_rms_stop_pass=fit.rms_stop_pass, weighted_rejected=fit.n_rejected,
                weighted_pixels_used=fit.n_used)
    if not fit.finite:
        reason = (f"the weighted scale factor is not finite ({fit.factor!r}); background not "
                  "subtracted, S_BKDSUB = FAILED")
        log.warning("%s: %s", target.name, reason)
        return WfssOutcome("FAILED", None, reason)
    log.info("%s: WFSS weighted scale factor %r after %d pass(es), %d pixel(s) rejected",
             target.name, fit.factor, fit.passes, fit.n_rejected)
    return WfssOutcome("COMPLETE", fit.factor, None)


def save_wfss_boxes(product, output_dir: str | os.PathLike | None = None, *,
                    root: str | None = None, overwrite: bool = False) -> Path | None:
    """Write the product's source boxes as ``<root>_wfssboxes.ecsv``.

    Returns None when the product has no boxes (user mask, or no catalog at all).
    """
    rows = product.info.get("wfss_boxes")
    if rows is None:
        return None
    boxes = [Box(*row[:6], partial=bool(row[6])) for row in rows]
    path = boxes_file_name(product.target.path, output_dir, root)
    meta = {"target": os.path.basename(product.target.path),
            "mask_origin": product.info.get("mask_origin")}
    return write_box_table(boxes, path, meta=meta, overwrite=overwrite)
