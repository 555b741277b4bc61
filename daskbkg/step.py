r"""Optional stpipe face of daskbkg: ``DaskBackgroundStep``, a drop-in ``BackgroundStep``.

This is the only module of daskbkg that imports :mod:`stpipe`; the core package never
does, so ``import daskbkg`` works without it. Install it with ``pip install
'daskbkg[jwst]'`` (stpipe and stdatamodels; the jwst package and CRDS are *not* needed:
the step has no reference files and asks CRDS for no parameters).

Use it where the reference's background step is used::

    from daskbkg.step import DaskBackgroundStep

    result = DaskBackgroundStep.call(model, [bkg1, "bkg2_rate.fits"], sigma=3.0)
    result.meta.cal_step.bkg_subtract            # "COMPLETE" or "SKIPPED"

It takes a datamodel or a path (or a level-2 association) and backgrounds as paths or
datamodels, and returns a datamodel of the target's type, like the reference. Nothing is
written unless the pipeline asks (``save_results``, ``save_combined_background``).

With ``campaign=True`` the step runs daskbkg's campaign instead (as ``daskbkg run``): it
writes ``<root>_bkgsub.fits`` (or zarr) for every product itself, resumes, and returns
the list of :class:`daskbkg.runner.Outcome` records::

    strun daskbkg.step.DaskBackgroundStep jw01234-o001_image2_asn.json \\
        --campaign=True --output_dir=out --scheduler=tcp://host:8786
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
from .io.asn import is_association, read_association
from .options import COMPAT_CHOICES, ClipParams, make_compat
from .plan import parse_chunks, parse_memory
from .runner import Outcome, RunSettings, run_association, run_target
from .scheduling import use_scheduler

__all__ = ["DaskBackgroundStep"]

log = logging.getLogger("daskbkg.step")

#: Compatibility switches exposed as step parameters (None = value of the ``compat`` preset).
_SWITCHES = tuple(name for name in COMPAT_CHOICES if name != "compat")


def _option(name: str) -> str:
    """Spec line of one compatibility switch (None = the preset's value)."""
    choices = COMPAT_CHOICES[name]
    if choices == (False, True):
        kind = "boolean(default=None)"
    else:
        kind = "option(" + ", ".join(f'"{c}"' for c in choices) + ", default=None)"
    return f"        {name} = {kind}  # None = value of the compat preset\n"


def _chunks(value: Any) -> tuple[int, int] | None:
    """Parse a tile shape given as ``64``, ``"64,-1"``, ``["64", "-1"]`` or ``(64, -1)``."""
    if value is None:
        return None
    items = value if isinstance(value, (list, tuple)) else [value]
    return parse_chunks(",".join(str(item) for item in items))


class DaskBackgroundStep(Step):
    """Subtract combined background exposures from a target, as a parallel dask computation.

    The parameters carry the reference ``BackgroundStep``'s names and defaults
    (``bkg_list``, ``save_combined_background``, ``sigma``, ``maxiters``, ``wfss_*``,
    ``soss_*``), daskbkg's execution options (``scheduler``, ``chunks``, ``memory_limit``)
    and every compatibility switch (``compat`` and its individual options). ``campaign``,
    ``output_format``, ``shards`` and ``resume`` apply to the campaign mode.
    """

    class_alias = "daskbkg"

    spec = """
        bkg_list = force_list(default=None)  # Backgrounds of a single-exposure input (ignored for associations)
        save_combined_background = boolean(default=False)  # Also save the combined background
        sigma = float(default=3.0)  # Clipping threshold
        maxiters = integer(default=None)  # Clip passes; None or 0 = until converged
        soss_source_percentile = float(default=35.0)  # Reference parameter; NIS_SOSS is not supported
        soss_bkg_percentile = float_list(min=2, max=2, default=None)  # Reference parameter; NIS_SOSS is not supported
        wfss_mmag_extract = float(default=None)  # WFSS faintest catalog magnitude used for source boxes
        wfss_maxiter = integer(default=5)  # WFSS weighted estimator: maximum passes
        wfss_rms_stop = float(default=0)  # WFSS weighted estimator: RMS-improvement stop (percent)
        wfss_outlier_percent = float(default=1)  # WFSS weighted estimator: percentile clipped per end
        wfss_bkg_ref = string(default=None)  # WFSS background reference image (no CRDS lookup)
        wavelengthrange = string(default=None)  # WFSS WAVELENGTHRANGE reference (default: R_WAVRAN next to the target)
        wfss_mask = string(default=None)  # WFSS user background mask (nonzero = background)
        scheduler = string(default=None)  # threads (default), processes, synchronous, tcp://host:port or a scheduler file
        chunks = force_list(default=None)  # Tile shape ROWS or ROWS,COLS (default: sized by memory_limit)
        memory_limit = string(default=None)  # Working-set budget of the tiles in flight, e.g. 512MiB
        campaign = boolean(default=False)  # Write every product of the input itself and return outcome records
        output_format = option("fits", "zarr", default="fits")  # Campaign output format
        shards = boolean(default=False)  # Campaign zarr output: store each dask chunk as one shard
        resume = boolean(default=False)  # Campaign: skip products whose outputs are already complete
        output_ext = string(default=".fits")  # Extension of saved datamodels
        compat = option("jwst-1.13", "jwst-3.0", default="jwst-1.13")  # Behaviour preset
""" + "".join(_option(name) for name in _SWITCHES)  # noqa: E501

    reference_file_types: list = []
    prefetch_references = False

    #: Suffix of the saved combined background, as in the reference.
    bkg_suffix = "combinedbackground"

    # -- datamodels without CRDS -----------------------------------------------------------
    @classmethod
    def _datamodels_open(cls, init, **kwargs):
        from stdatamodels.jwst import datamodels

        return datamodels.open(init, **kwargs)

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

    # -- parameters --------------------------------------------------------------------------
    def compat_options(self):
        """The :class:`~daskbkg.ReferenceCompat` of the ``compat`` preset and the switches."""
        switches = {name: getattr(self, name) for name in _SWITCHES}
        return make_compat(self.compat, **switches)

    def settings(self) -> RunSettings:
        """Map the step parameters onto :class:`daskbkg.runner.RunSettings` (validated)."""
        return RunSettings(
            output_dir=Path(os.path.expandvars(os.path.expanduser(self.output_dir or "."))),
            params=ClipParams(sigma=self.sigma, maxiters=self.maxiters),
            compat=self.compat_options(), save_combined=bool(self.save_combined_background),
            fmt=self.output_format, suffix=self.suffix or self.default_suffix(),
            chunks=_chunks(self.chunks), memory_limit=parse_memory(self.memory_limit),
            shards=bool(self.shards),
        )

    def _wfss(self) -> dict | None:
        if not self.wfss_bkg_ref:
            return None
        return {"bkg_ref": self.make_input_path(self.wfss_bkg_ref),
                "wavelengthrange": self.wavelengthrange, "source_mask": self.wfss_mask,
                "mmag_extract": self.wfss_mmag_extract, "maxiter": self.wfss_maxiter,
                "rms_stop": self.wfss_rms_stop, "outlier_percent": self.wfss_outlier_percent}

    def _backgrounds(self, given: Any) -> list[Any]:
        """Backgrounds: the positional list, else ``bkg_list``; paths resolved like inputs."""
        from .step_models import background_items

        items = background_items(given if given is not None else self.bkg_list)
        return [self.make_input_path(i) if isinstance(i, (str, os.PathLike)) else i
                for i in items]

    # -- the work ------------------------------------------------------------------------------
    def process(self, step_input: Any, input_bkg_list: Any = None):
        """Background-subtract a datamodel, a file or every product of an association.

        Parameters
        ----------
        step_input : datamodel, str or path-like
            A target (datamodel or FITS path) or a level-2 association (``.json``:
            backgrounds come from the association).
        input_bkg_list : list or str, optional
            Backgrounds (paths, datamodels, or a comma-separated string); overrides the
            ``bkg_list`` parameter.

        Returns
        -------
        datamodel, list of datamodel, or list of daskbkg.runner.Outcome
            The subtracted target (same type as the input), one per product for an
            association of several products, or the campaign's outcome records when
            ``campaign=True``.
        """
        if self.campaign:
            return self._campaign(step_input, input_bkg_list)
        with use_scheduler(self.scheduler) as compute_kwargs:
            if isinstance(step_input, (str, os.PathLike)) and is_association(
                    self.make_input_path(os.fspath(step_input))):
                products = read_association(self.make_input_path(os.fspath(step_input)))
                results = [self._one(p.science, list(p.backgrounds), compute_kwargs)
                           for p in products if p.science is not None]
                return results[0] if len(results) == 1 else results
            target = step_input
            if isinstance(target, (str, os.PathLike)):
                target = self.make_input_path(os.fspath(target))
            return self._one(target, self._backgrounds(input_bkg_list), compute_kwargs)

    def _one(self, target: Any, backgrounds: list[Any], compute_kwargs: dict):
        from .step_models import StepRun, combined_model, subtract_model

        run = StepRun(sigma=self.sigma, maxiters=self.maxiters, compat=self.compat_options(),
                      chunks=_chunks(self.chunks), memory_limit=self.memory_limit,
                      compute_kwargs=compute_kwargs, wfss=self._wfss())
        result, computed = subtract_model(target, backgrounds, run)
        if (self.save_combined_background and computed is not None
                and computed.combined is not None):
            path = self.save_model(combined_model(computed, result), suffix=self.bkg_suffix,
                                   force=True)
            log.info("combined background written to %s", path)
        return result

    def _campaign(self, step_input: Any, bkg_list: Any) -> list[Outcome]:
        """Run daskbkg's campaign on an association or one target file (writes outputs)."""
        if not isinstance(step_input, (str, os.PathLike)):
            raise InputError(f"campaign mode takes a file path (FITS exposure or "
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
                backgrounds = [os.fspath(b) for b in self._backgrounds(bkg_list)]
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
