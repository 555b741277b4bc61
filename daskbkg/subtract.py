"""Subtract a combined background from a target, lazily, and describe the product."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ._units import in_unit
from .combine import CombinedBackground, build_combined_background
from .errors import UnsupportedExposureError
from .geometry import fallback_window
from .io.exposure import Exposure, as_exposure
from .options import ClipParams, ReferenceCompat
from .plan import plan_tiles

__all__ = ["Product", "build_product", "check_exposure_type", "gwa_tilts_match"]

log = logging.getLogger("daskbkg")


@dataclass(frozen=True)
class Product:
    """A lazy background-subtracted product: arrays plus the header changes to make.

    Attributes
    ----------
    target : Exposure
        The input target (never modified).
    sci, err, dq : dask.array.Array
        Output SCI (float32), ERR (float32) and DQ (uint32), shaped like the target.
    status : {"COMPLETE", "SKIPPED"}
        Value of ``S_BKDSUB``.
    combined : CombinedBackground or None
        The combined background (None when the step was skipped).
    primary_updates : dict
        PRIMARY keywords to set in the output (besides provenance).
    notes : tuple of str
        Human-readable remarks (why a step was skipped, warnings).
    info : dict
        Facts for the run report (e.g. the WFSS scale factor and means).
    extra_arrays : tuple of (EXTNAME, array, kind)
        Image extensions appended after the target's HDUs (e.g. a WFSS ``MASK``,
        kind ``"uint32"``); they never change SCI/ERR/DQ.
    """

    target: Exposure
    sci: object
    err: object
    dq: object
    status: str
    combined: CombinedBackground | None
    params: ClipParams
    compat: ReferenceCompat
    primary_updates: dict = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    info: dict = field(default_factory=dict)
    extra_arrays: tuple = ()


def gwa_tilts_match(target: Exposure, backgrounds: Sequence[Exposure]) -> str | None:
    """NIRSpec grating-tilt check: return the reason for skipping, or None to proceed.

    Backgrounds given as paths are opened one at a time; the walk stops at the first
    mismatch, so later files are never opened (as in the reference).

    Raises
    ------
    TypeError
        A tilt keyword is missing, as in the reference.
    """
    if (target.meta.instrument or "").upper() != "NIRSPEC":
        return None
    for item in backgrounds:
        bkg = as_exposure(item)
        pairs = ((target.meta.gwa_xtil, bkg.meta.gwa_xtil), (target.meta.gwa_ytil, bkg.meta.gwa_ytil))
        for a, b in pairs:
            if a is None or b is None:
                missing = target.path if a is None else bkg.path
                raise TypeError(f"{missing}: NIRSpec GWA_XTIL/GWA_YTIL keyword missing")
        if not all(abs(a - b) <= 1e-8 for a, b in pairs):
            return f"grating tilt of {bkg.path} differs from the target's; background not subtracted"
    return None


#: EXP_TYPE prefixes of the JWST instruments.
_EXP_PREFIXES = ("MIR_", "NRC_", "NIS_", "NRS_", "FGS_")


def check_exposure_type(target: Exposure) -> None:
    """Refuse WFSS targets and EXP_TYPE values that are not JWST exposure types.

    A missing EXP_TYPE is accepted (the reference does not read it outside WFSS).
    """
    exp_type = target.meta.exp_type
    if exp_type is None:
        return
    if target.meta.is_wfss:
        raise UnsupportedExposureError(
            f"{target.path}: EXP_TYPE {exp_type} is WFSS; the imaging background path does not "
            "apply to it (use daskbkg.subtract_wfss_background, or --wfss-bkg-ref on the "
            "command line)"
        )
    if not exp_type.upper().startswith(_EXP_PREFIXES):
        raise UnsupportedExposureError(
            f"{target.path}: unknown EXP_TYPE {exp_type!r} (expected a JWST exposure type such "
            "as NRC_IMAGE or MIR_IMAGE)"
        )


def _target_arrays(target: Exposure, tiles) -> tuple:
    import dask.array as da
    from dask.base import tokenize

    arrays = []
    for ext in ("sci", "err", "dq"):
        reader = getattr(target, ext)
        arrays.append(
            da.from_array(
                reader, chunks=tiles.chunks_for(reader.shape),
                name=f"target-{ext}-{tokenize(target.identity, ext, tiles)}",
                meta=np.empty((0,) * reader.ndim, dtype=reader.dtype), asarray=False, lock=False,
            )
        )
    return tuple(in_unit(a, a.name) for a in arrays)


def _subtract_sci(sci, bk):
    return np.subtract(sci, bk, dtype=np.float32)


def _propagate_err(err, bk_err):
    total = np.sqrt(err.astype(np.float64) ** 2 + bk_err.astype(np.float64) ** 2)
    return total.astype(np.float32)


def build_product(
    target: Exposure,
    backgrounds: Sequence[Exposure],
    params: ClipParams,
    compat: ReferenceCompat,
    *,
    chunks: tuple[int, int] | None = None,
    memory_limit: int | None = None,
    threads: int | None = None,
    shared: object = None,
) -> Product:
    """Build the lazy background-subtracted product of one target.

    Parameters
    ----------
    target : Exposure
        Target exposure (2-D rate or 3-D rateints, not WFSS).
    backgrounds : sequence of Exposure or path
        Backgrounds in summation order (paths are opened in order while checking).
    params : ClipParams
    compat : ReferenceCompat
    chunks, memory_limit, threads
        Tile shape, memory budget and tiles computed at once (see
        :func:`daskbkg.plan.plan_tiles`).
    shared : optional
        A combined background computed elsewhere (``image_key`` and ``arrays``, see
        :class:`daskbkg.campaign.jobs.SharedCombined`); used when its image key equals
        this target's, instead of combining the backgrounds again.

    Returns
    -------
    Product
    """
    import dask.array as da

    check_exposure_type(target)
    updates: dict = {}
    nints = target.shape[0] if target.ndim == 3 else 1
    tiles = plan_tiles(tuple(target.shape[-2:]), len(backgrounds), nints, chunks=chunks,
                       memory_limit=memory_limit, threads=threads)
    t_sci, t_err, t_dq = _target_arrays(target, tiles)

    def unchanged(reason: str) -> Product:
        log.warning("%s: %s", target.path, reason)
        return Product(target=target, sci=t_sci, err=t_err, dq=t_dq, status="SKIPPED",
                       combined=None, params=params, compat=compat,
                       primary_updates={**updates, "S_BKDSUB": "SKIPPED"}, notes=(reason,))

    if not backgrounds and compat.empty_bkg_list == "skip":
        # Decided before any geometry, as in jwst 3.0 (a target without window keywords
        # is skipped, not refused).
        return unchanged("empty background list; step skipped (empty_bkg_list='skip')")
    fallback = fallback_window(target.meta, target.shape, target.path)
    if fallback is not None:
        updates.update(zip(("SUBSTRT1", "SUBSTRT2", "SUBSIZE1", "SUBSIZE2"), fallback))
    skip = gwa_tilts_match(target, backgrounds)
    if skip is not None:
        return unchanged(skip)
    notes: list[str] = []
    if not backgrounds:
        msg = ("empty background list: as in the reference, every SCI pixel becomes NaN and the "
               "product is marked COMPLETE (use empty_bkg_list='skip' to skip instead)")
        log.warning("%s: %s", target.path, msg)
        notes.append(msg)
    combined = build_combined_background(target, backgrounds, params, compat, tiles)
    if getattr(shared, "arrays", None) and shared.image_key == combined.image_key:
        combined = combined.with_arrays(shared.arrays)
    # A cube's planes take the image background by broadcasting (blockwise aligns the
    # trailing axes), with no intermediate ``[None]`` layer that dask could fuse in one
    # computation and not in another.
    bk_sci, bk_err, bk_dq = combined.sci, combined.err, combined.dq
    # Each output (with its target read) is one fusion unit (see daskbkg._units).
    out_sci = in_unit(da.map_blocks(_subtract_sci, t_sci, bk_sci, dtype=np.float32),
                      t_sci.name, combined.sci)
    out_dq = in_unit(t_dq | bk_dq, t_dq.name, combined.dq)
    out_err = t_err
    if compat.propagate_err:
        out_err = in_unit(da.map_blocks(_propagate_err, t_err, bk_err, dtype=np.float32),
                          t_err.name, combined.err)
    updates["S_BKDSUB"] = "COMPLETE"
    return Product(target=target, sci=out_sci, err=out_err, dq=out_dq, status="COMPLETE",
                   combined=combined, params=params, compat=compat,
                   primary_updates=updates, notes=tuple(notes))

