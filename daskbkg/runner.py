"""Run the step on files: settings, output naming, and one-call helpers.

:func:`plan_target` opens one target and builds its lazy product and output paths;
:func:`run_target` and :func:`run_association` are thin conveniences over
:class:`daskbkg.campaign.Campaign`, which does the grouping, writing and reporting.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from .io.exposure import read_exposure
from .io.naming import output_name, split_root
from .options import ClipParams, ReferenceCompat
from .result import BackgroundResult
from .subtract import build_product

__all__ = ["RunSettings", "WfssSettings", "Outcome", "plan_target", "run_target", "run_association"]

log = logging.getLogger("daskbkg")


@dataclass(frozen=True)
class WfssSettings:
    """Inputs and parameters of the WFSS path (see :func:`daskbkg.wfss.build_wfss_product`).

    Relative paths are used as given; an association's ``sourcecat`` member overrides
    ``source_catalog`` for its product.
    """

    bkg_ref: Path | None = None
    wavelengthrange: Path | None = None
    source_catalog: Path | None = None
    source_mask: Path | None = None
    source_boxes: Path | None = None
    params: dict | None = None  # keyword arguments of daskbkg.wfss.WfssParams
    save_boxes: bool = False


@dataclass(frozen=True)
class RunSettings:
    """Everything about a run except its inputs."""

    output_dir: Path | str = Path(".")  # a local folder, or an fsspec URL prefix (zarr)
    params: ClipParams = ClipParams()
    compat: ReferenceCompat = ReferenceCompat()
    save_combined: bool = False
    fmt: str = "fits"
    suffix: str = "bkgsub"
    chunks: tuple[int, int] | None = None
    memory_limit: int | None = None
    shards: bool = False
    wfss: WfssSettings = WfssSettings()
    strict: bool = False


@dataclass
class Outcome:
    """What happened to one target: ``done``, ``skipped`` or ``failed`` (with reason).

    ``code`` is the exit code a failure maps to (2 bad input, 1 runtime failure).
    """

    name: str
    state: str
    outputs: list[Path] = field(default_factory=list)
    reason: str | None = None
    status: str | None = None
    combined_key: str | None = None
    code: int = 0


def _paths(settings: RunSettings, root: str, sep: str):
    """Output locations (local Paths or URL strings) of the product and combined background."""
    from .io.source import join

    ext = ".zarr" if settings.fmt == "zarr" else ".fits"
    main = join(settings.output_dir, output_name(root, sep, settings.suffix, ext))
    comb = None
    if settings.save_combined:
        comb = join(settings.output_dir, output_name(root, sep, "combinedbackground", ext))
    return main, comb


def plan_target(target: Any, backgrounds: Sequence[Any], settings: RunSettings,
                root: str | None = None, sep: str = "_",
                sourcecat: Any = None) -> tuple[BackgroundResult, Path, Path | None]:
    """Open inputs and build the lazy result and output paths of one target.

    WFSS targets (``NRC_WFSS``, ``NIS_WFSS``) take the scaled-reference path and ignore
    ``backgrounds``; every other target takes the imaging path.
    """
    exposure = read_exposure(target)
    if root is None:
        root, sep = split_root(exposure.path)
    product = _wfss_product(exposure, backgrounds, settings, sourcecat)
    if product is None:
        from .validate import prepare_inputs

        # Every input checked (reference order) before any graph exists.
        exposure, backgrounds = prepare_inputs(exposure, list(backgrounds), settings.compat,
                                               strict=settings.strict)
        product = build_product(exposure, list(backgrounds), settings.params, settings.compat,
                                chunks=settings.chunks, memory_limit=settings.memory_limit)
    main, comb = _paths(settings, root, sep)
    if product.combined is None:
        comb = None
    return BackgroundResult(product), main, comb


def _wfss_product(exposure, backgrounds, settings: RunSettings, sourcecat):
    """The WFSS product of ``exposure``, or None when it is not a WFSS target."""
    if not exposure.meta.takes_wfss_path(settings.compat.compat):
        return None  # the imaging path never imports the WFSS package
    from .wfss import WfssParams, build_wfss_product
    from .wfss.errors import WfssParameterValueError
    wfss = settings.wfss
    if wfss.bkg_ref is None:
        raise WfssParameterValueError(
            f"{exposure.path}: WFSS target (EXP_TYPE {exposure.meta.exp_type}) needs a "
            "background reference image (--wfss-bkg-ref REF.fits)"
        )
    if backgrounds:
        log.warning("%s: WFSS target: the background exposures are ignored (as in the "
                    "reference)", exposure.path)
    return build_wfss_product(
        exposure, bkg_ref=wfss.bkg_ref, wavelengthrange=wfss.wavelengthrange,
        source_catalog=sourcecat or wfss.source_catalog, source_mask=wfss.source_mask,
        source_boxes=wfss.source_boxes, params=WfssParams(**(wfss.params or {})),
        compat=settings.compat, chunks=settings.chunks,
    )


def _prepare_dir(settings: RunSettings) -> None:
    from .errors import OutputError
    from .io.source import is_url, makedirs

    out = settings.output_dir
    if is_url(out):
        if settings.fmt != "zarr":
            raise OutputError(f"{out}: URL outputs need --format zarr (FITS is written locally)")
        makedirs(out)
        return
    try:
        Path(out).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{out}: cannot create output directory ({exc.strerror})") from None
    if not os.access(out, os.W_OK):
        raise OutputError(f"{out}: output directory is not writable")


def run_target(target: Any, backgrounds: Sequence[Any], settings: RunSettings,
               compute_kwargs: dict | None = None, *, resume: bool = False) -> Outcome:
    """Process one target file with its backgrounds and write its outputs."""
    from .campaign import Campaign, CampaignItem

    _prepare_dir(settings)
    item = CampaignItem(Path(target).name, Path(target), tuple(Path(b) for b in backgrounds))
    return Campaign([item], settings, resume=resume).run(compute_kwargs).outcomes[0]


def run_association(asn: Any, settings: RunSettings, compute_kwargs: dict | None = None, *,
                    resume: bool = False) -> list[Outcome]:
    """Process every product of a level-2 association.

    A product that cannot be planned or written (bad member, unreadable file, geometry
    error) is reported as failed with its reason; the other products are still written.
    Identical combined backgrounds are computed once.
    """
    from .campaign import Campaign

    _prepare_dir(settings)
    return Campaign.from_inputs([str(asn)], settings, resume=resume).run(compute_kwargs).outcomes
