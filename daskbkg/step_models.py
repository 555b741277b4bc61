"""The datamodel side of :class:`daskbkg.step.DaskBackgroundStep`.

The step takes what the reference ``BackgroundStep`` takes (a datamodel or a path, and
backgrounds as paths or datamodels) and returns a datamodel of the target's own type:
a copy of the target with SCI replaced by the subtracted image, DQ ORed with the
combined background's, and ``meta.cal_step`` set (``bkg_subtract`` in current schemas,
``back_sub`` in older ones; FITS keyword ``S_BKDSUB``). The arithmetic is daskbkg's
(:func:`daskbkg.subtract_background`), bit for bit.

stdatamodels is imported here, never by the core package.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

__all__ = ["StepRun", "open_model", "mark_step", "subtract_model", "combined_model",
           "background_items"]

log = logging.getLogger("daskbkg.step")


def open_model(item: Any):
    """A datamodel for ``item`` (a datamodel is returned as is, a path is opened)."""
    if isinstance(item, (str, os.PathLike)):
        from stdatamodels.jwst import datamodels

        return datamodels.open(os.fspath(item))
    return item


def mark_step(model: Any, status: str) -> None:
    """Record ``status`` in ``meta.cal_step`` under the schema's name for ``S_BKDSUB``."""
    cal = model.meta.cal_step
    properties = (getattr(cal, "_schema", None) or {}).get("properties", {})
    name = "back_sub" if "back_sub" in properties and "bkg_subtract" not in properties \
        else "bkg_subtract"
    setattr(cal, name, status)


def background_items(given: Any) -> list[Any]:
    """Backgrounds as a list: comma-separated strings, one path or model, or a sequence.

    Strings are split at commas (``bkg_list="a.fits,b.fits"`` arrives as a one-item list)
    and empty entries (a trailing comma) are dropped, as in the reference.
    """
    if given is None:
        return []
    if isinstance(given, (str, os.PathLike)) or not isinstance(given, (list, tuple)):
        given = [given]
    items: list[Any] = []
    for item in given:
        if isinstance(item, (str, os.PathLike)):
            items += [part.strip() for part in os.fspath(item).split(",") if part.strip()]
        else:
            items.append(item)
    return items


@dataclass
class StepRun:
    """What one target needs besides its inputs: options and how to compute."""

    sigma: float
    maxiters: int | None
    compat: Any
    chunks: Any = None
    memory_limit: Any = None
    compute_kwargs: dict = field(default_factory=dict)
    wfss: dict | None = None


def subtract_model(target: Any, backgrounds: list[Any], run: StepRun):
    """Background-subtract one target; return ``(result model, computed or None)``.

    Parameters
    ----------
    target : datamodel or path
    backgrounds : list of datamodel or path
    run : StepRun

    Returns
    -------
    result : datamodel
        Same type as the target; the target itself is not modified.
    computed : ComputedResult or None
        The computed outputs (``.combined`` holds the combined background), or None when
        the step was skipped before any computation.
    """
    from .api import subtract_background, subtract_wfss_background

    model = open_model(target)
    exposure = _exposure(target, model)
    backgrounds = [_exposure(item) for item in backgrounds]
    if exposure.meta.takes_wfss_path(run.compat.compat) and run.wfss is not None:
        lazy = subtract_wfss_background(exposure, compat=run.compat, chunks=run.chunks,
                                        **run.wfss)
    elif not backgrounds and run.compat.empty_bkg_list == "skip":
        log.warning("no background list provided: step skipped (empty_bkg_list='skip')")
        result = model.copy()
        mark_step(result, "SKIPPED")
        return result, None
    else:
        lazy = subtract_background(exposure, backgrounds, run.sigma, run.maxiters,
                                   compat=run.compat, chunks=run.chunks,
                                   memory_limit=run.memory_limit)
    computed = lazy.compute(**run.compute_kwargs)
    result = model.copy()
    if computed.status == "COMPLETE":
        result.data = computed.sci
        result.dq = computed.dq
        if run.compat.propagate_err:
            result.err = computed.err
        scale = lazy.product.info.get("scale_factor")
        if scale is not None and run.compat.record_scale_factor:
            result.meta.background.scaling_factor = float(scale)
    else:
        for note in lazy.product.notes:
            log.warning("%s", note)
    mark_step(result, computed.status)
    return result, computed


def _exposure(item: Any, model: Any = None):
    """Open ``item`` lazily; a file without ERR or DQ is read as a datamodel (defaults).

    Datamodel files written before ERR or DQ were set lack those extensions; the
    reference reads them as the schema defaults (zeros), and so does this.
    """
    from .errors import MissingExtensionError
    from .io.exposure import as_exposure

    try:
        return as_exposure(item)
    except MissingExtensionError:
        if not isinstance(item, (str, os.PathLike)):
            raise
        return as_exposure(model if model is not None else open_model(item))


def combined_model(computed: Any, like: Any):
    """The combined background as an ImageModel (SCI, ERR, DQ), metadata from ``like``."""
    from stdatamodels.jwst import datamodels

    combined = computed.combined
    model = datamodels.ImageModel(data=combined["SCI"], err=combined["ERR"],
                                  dq=combined["DQ"])
    model.update(like)
    return model
