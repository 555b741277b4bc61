r"""Optional stpipe face of daskbkg: ``DaskBackgroundStep``.

This is the only module of daskbkg that imports :mod:`stpipe`; the core package never
does, so ``import daskbkg`` works without it. Install it with ``pip install stpipe``
(the jwst package and CRDS are *not* needed: the step has no reference files and asks
CRDS for no parameters).

Use it like the reference's background step::

    from daskbkg.step import DaskBackgroundStep

    DaskBackgroundStep.call("jw01234-o001_image2_asn.json", output_dir="out",
                            save_combined_background=True, scheduler="tcp://host:8786")

or from the shell::

    strun daskbkg.step.DaskBackgroundStep target_rate.fits \\
        --bkg_list=bkg1_rate.fits,bkg2_rate.fits --output_dir=out

The step writes its products itself (``<root>_bkgsub.fits`` and, on request,
``<root>_combinedbackground.fits`` in ``output_dir``), exactly as ``daskbkg run`` does,
and returns the list of :class:`daskbkg.runner.Outcome` records.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

try:
    from stpipe import Step, config_parser
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("daskbkg.step needs stpipe: pip install stpipe "
                      "(the jwst package is not needed)") from exc

from .errors import InputError
from .io.asn import is_association
from .options import ClipParams, make_compat
from .plan import parse_chunks, parse_memory
from .runner import Outcome, RunSettings, run_association, run_target
from .scheduling import use_scheduler

__all__ = ["DaskBackgroundStep"]

log = logging.getLogger("daskbkg.step")

#: Compatibility switches exposed as step parameters (None = value of the ``compat`` preset).
_SWITCHES = ("subarray_placement", "rateints_geometry", "rateints_empty_lane",
             "clip_all_rejected", "no_valid_background", "empty_bkg_list")


def _chunks(value: Any) -> tuple[int, int] | None:
    """Parse a tile shape given as ``64``, ``"64,-1"``, ``["64", "-1"]`` or ``(64, -1)``."""
    if value is None:
        return None
    items = value if isinstance(value, (list, tuple)) else [value]
    return parse_chunks(",".join(str(item) for item in items))


class DaskBackgroundStep(Step):
    """Subtract combined background exposures from targets, as a parallel dask computation.

    Parameters follow the reference ``BackgroundStep`` (``sigma``, ``maxiters``,
    ``save_combined_background``, ``bkg_list``) plus daskbkg's execution options
    (``scheduler``, ``chunks``, ``memory_limit``, ``output_format``, ``shards``,
    ``resume``) and the compatibility switches (``compat`` and its individual options).
    """

    class_alias = "daskbkg"

    spec = """
        bkg_list = force_list(default=None)  # Backgrounds of a single-exposure input (ignored for associations)
        save_combined_background = boolean(default=False)  # Also write <root>_combinedbackground
        sigma = float(default=3.0)  # Clipping threshold
        maxiters = integer(default=None)  # Clip passes; None or 0 = until converged
        scheduler = string(default=None)  # threads (default), processes, synchronous, tcp://host:port or a scheduler file
        chunks = force_list(default=None)  # Tile shape ROWS or ROWS,COLS (default: sized by memory_limit)
        memory_limit = string(default=None)  # Working-set budget of the tiles in flight, e.g. 512MiB
        output_format = option("fits", "zarr", default="fits")  # Output format
        shards = boolean(default=False)  # zarr: store each dask chunk as one shard
        resume = boolean(default=False)  # Skip products whose outputs are already complete
        compat = option("jwst-1.13", "jwst-3.0", default="jwst-1.13")  # Behaviour preset
        subarray_placement = option("reference", "aligned", default=None)  # None = preset value
        rateints_geometry = option("jwst-1.13", "jwst-3.0", default=None)  # None = preset value
        rateints_empty_lane = option("zero", "nan", default=None)  # None = preset value
        clip_all_rejected = option("keep", "reject", default=None)  # None = preset value
        no_valid_background = option("zero", "nan", default=None)  # None = preset value
        empty_bkg_list = option("nan", "skip", default=None)  # None = preset value
        propagate_err = boolean(default=None)  # Output ERR = sqrt(ERR^2 + ERR_bk^2); None = preset
        output_ext = string(default=".fits")  # Not used: the extension follows output_format
    """  # noqa: E501

    reference_file_types: list = []
    prefetch_references = False

    # -- no datamodels, no CRDS ----------------------------------------------------------
    @classmethod
    def _datamodels_open(cls, init, **kwargs):
        raise TypeError("DaskBackgroundStep reads FITS files itself; it opens no datamodels")

    @classmethod
    def _get_crds_parameters(cls, dataset):
        return {}, None

    @classmethod
    def get_config_from_reference(cls, dataset, disable=None, crds_observatory=None):
        """Return an empty configuration: the step has no CRDS parameter reference file."""
        return config_parser.ConfigObj()

    def default_suffix(self) -> str:
        """Suffix of the main product, as for ``daskbkg run``."""
        return "bkgsub"

    # -- the work ------------------------------------------------------------------------
    def settings(self) -> RunSettings:
        """Map the step parameters onto :class:`daskbkg.runner.RunSettings` (validated)."""
        switches = {name: getattr(self, name) for name in _SWITCHES}
        compat = make_compat(self.compat, propagate_err=self.propagate_err, **switches)
        return RunSettings(
            output_dir=Path(os.path.expandvars(os.path.expanduser(self.output_dir or "."))),
            params=ClipParams(sigma=self.sigma, maxiters=self.maxiters),
            compat=compat, save_combined=bool(self.save_combined_background),
            fmt=self.output_format, suffix=self.suffix or self.default_suffix(),
            chunks=_chunks(self.chunks), memory_limit=parse_memory(self.memory_limit),
            shards=bool(self.shards),
        )

    def _backgrounds(self, bkg_list: Any) -> list[str]:
        """Background paths: list or comma-separated string, empty entries dropped."""
        if bkg_list is None:
            return []
        items = [bkg_list] if isinstance(bkg_list, (str, os.PathLike)) else list(bkg_list)
        names = [part.strip() for item in items for part in os.fspath(item).split(",")]
        return [self.make_input_path(name) for name in names if name]

    def process(self, step_input: Any, bkg_list: Any = None) -> list[Outcome]:
        """Run daskbkg on an association or on one exposure with its backgrounds.

        Parameters
        ----------
        step_input : str or path-like
            A level-2 association (``.json``; every product is processed, backgrounds
            from the association) or one target exposure (FITS).
        bkg_list : list of str or str, optional
            Backgrounds of a single-exposure input; overrides the ``bkg_list`` parameter.

        Returns
        -------
        list of daskbkg.runner.Outcome
            One record per target: name, state (``done`` or ``skipped``) and files written.

        Raises
        ------
        daskbkg.errors.InputError
            When the input is not a path, or when a product of an association failed
            (the other products are still written).
        """
        if not isinstance(step_input, (str, os.PathLike)):
            raise InputError(f"DaskBackgroundStep takes a file path (FITS exposure or "
                             f"association), not {type(step_input).__name__}")
        settings = self.settings()
        target = self.make_input_path(os.fspath(step_input))
        with use_scheduler(self.scheduler) as compute_kwargs:
            if is_association(target):
                if bkg_list is not None or self.bkg_list:
                    log.warning("bkg_list is ignored for associations: backgrounds come "
                                     "from the association")
                outcomes = run_association(target, settings, compute_kwargs, resume=self.resume)
            else:
                backgrounds = self._backgrounds(bkg_list if bkg_list is not None
                                                else self.bkg_list)
                if not backgrounds:
                    log.warning("no background given: as in the reference, the output "
                                     "SCI is all NaN (empty_bkg_list='skip' skips instead)")
                outcomes = [run_target(target, backgrounds, settings, compute_kwargs,
                                       resume=self.resume)]
        return self._report(outcomes)

    def _report(self, outcomes: list[Outcome]) -> list[Outcome]:
        failed = [o for o in outcomes if o.state == "failed"]
        for outcome in outcomes:
            for path in outcome.outputs:
                note = "" if outcome.state == "done" else f" ({outcome.state})"
                log.info("%s: wrote %s%s", outcome.name, path, note)
        for outcome in failed:
            log.error("%s: %s", outcome.name, outcome.reason)
        if failed:
            reasons = "; ".join(f"{o.name}: {o.reason}" for o in failed)
            raise InputError(f"{len(failed)} of {len(outcomes)} products failed: {reasons}")
        return outcomes


def _get_steps() -> list[tuple[str, str, bool]]:
    """Entry point of the ``stpipe.steps`` group (lets ``strun daskbkg`` find the step)."""
    return [("daskbkg.step.DaskBackgroundStep", DaskBackgroundStep.class_alias, False)]
