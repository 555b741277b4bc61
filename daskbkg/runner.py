"""Run the step on files: one target with its backgrounds, or every product of an ASN.

This is the layer under the CLI: it opens inputs, names outputs, and writes every
product of a run in a single dask computation, so a combined background shared by
several targets (same backgrounds, parameters and window) is computed once.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from .io.asn import read_association
from .io.exposure import read_exposure
from .io.naming import output_name, split_root
from .options import ClipParams, ReferenceCompat
from .result import BackgroundResult, write_outputs
from .subtract import build_product

__all__ = ["RunSettings", "Outcome", "plan_target", "run_jobs", "run_target", "run_association"]

log = logging.getLogger("daskbkg")


@dataclass(frozen=True)
class RunSettings:
    """Everything about a run except its inputs."""

    output_dir: Path = Path(".")
    params: ClipParams = ClipParams()
    compat: ReferenceCompat = ReferenceCompat()
    save_combined: bool = False
    fmt: str = "fits"
    suffix: str = "bkgsub"
    chunks: tuple[int, int] | None = None
    memory_limit: int | None = None
    shards: bool = False


@dataclass
class Outcome:
    """What happened to one target: ``done``, ``skipped`` or ``failed`` (with reason)."""

    name: str
    state: str
    outputs: list[Path] = field(default_factory=list)
    reason: str | None = None
    status: str | None = None
    combined_key: str | None = None


def _paths(settings: RunSettings, root: str, sep: str) -> tuple[Path, Path | None]:
    ext = ".zarr" if settings.fmt == "zarr" else ".fits"
    main = settings.output_dir / output_name(root, sep, settings.suffix, ext)
    comb = None
    if settings.save_combined:
        comb = settings.output_dir / output_name(root, sep, "combinedbackground", ext)
    return main, comb


def plan_target(target: Any, backgrounds: Sequence[Any], settings: RunSettings,
                root: str | None = None, sep: str = "_") -> tuple[BackgroundResult, Path, Path | None]:
    """Open inputs and build the lazy result and output paths of one target."""
    exposure = read_exposure(target)
    bkgs = [read_exposure(b) for b in backgrounds]
    if root is None:
        root, sep = split_root(exposure.path)
    product = build_product(exposure, bkgs, settings.params, settings.compat,
                            chunks=settings.chunks, memory_limit=settings.memory_limit)
    main, comb = _paths(settings, root, sep)
    if product.combined is None:
        comb = None
    return BackgroundResult(product), main, comb


def run_jobs(planned: list[tuple[str, BackgroundResult, Path, Path | None]],
             settings: RunSettings, compute_kwargs: dict) -> list[Outcome]:
    """Write every planned product in one computation and report the outcomes."""
    from .errors import DaskbkgError

    jobs, outcomes, failed = [], [], []
    for name, result, main, comb in planned:
        try:
            if settings.fmt == "zarr":
                product_jobs = result.zarr_jobs(main, comb, shards=settings.shards)
            else:
                product_jobs = result.fits_jobs(main, comb)
        except (DaskbkgError, OSError) as exc:  # this product only; the others go on
            failed.append(Outcome(name, "failed", reason=str(exc)))
            continue
        jobs.extend(product_jobs)
        key = result.combined_background.key if result.combined_background else None
        outcomes.append(Outcome(name, "done", [main] + ([comb] if comb else []),
                                status=result.status, combined_key=key))
    keys = [o.combined_key for o in outcomes if o.combined_key]
    if len(set(keys)) < len(keys):
        log.info("%d products share %d distinct combined backgrounds; each is computed once",
                 len(keys), len(set(keys)))
    if jobs:
        write_outputs(jobs, **compute_kwargs)
    for outcome in outcomes:
        if outcome.status == "SKIPPED":
            outcome.state = "skipped"
    return outcomes + failed


def _prepare_dir(settings: RunSettings) -> None:
    from .errors import OutputError

    out = settings.output_dir
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{out}: cannot create output directory ({exc.strerror})") from None
    if not os.access(out, os.W_OK):
        raise OutputError(f"{out}: output directory is not writable")


def run_target(target: Any, backgrounds: Sequence[Any], settings: RunSettings,
               compute_kwargs: dict | None = None) -> Outcome:
    """Process one target file with its backgrounds and write its outputs."""
    _prepare_dir(settings)
    result, main, comb = plan_target(target, backgrounds, settings)
    return run_jobs([(Path(target).name, result, main, comb)], settings, compute_kwargs or {})[0]


def run_association(asn: Any, settings: RunSettings,
                    compute_kwargs: dict | None = None) -> list[Outcome]:
    """Process every product of a level-2 association.

    A product that cannot be planned (bad member, unreadable file, geometry error) is
    reported as failed with its reason; the other products are still written.
    """
    from .errors import DaskbkgError

    _prepare_dir(settings)
    planned, failed = [], []
    for prod in read_association(asn):
        if prod.error:
            failed.append(Outcome(prod.name, "failed", reason=prod.error))
            continue
        try:
            result, main, comb = plan_target(prod.science, prod.backgrounds, settings,
                                             root=prod.name, sep="_")
        except (DaskbkgError, OSError, ValueError, IndexError, TypeError, AttributeError,
                KeyError) as exc:
            failed.append(Outcome(prod.name, "failed", reason=str(exc)))
            continue
        planned.append((prod.name, result, main, comb))
    done = run_jobs(planned, settings, compute_kwargs or {}) if planned else []
    return done + failed
