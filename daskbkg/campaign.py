"""Campaigns: many products in one run, shared backgrounds, resume, per-product outcomes.

A :class:`Campaign` turns its inputs (associations, target lists) into products, skips
the ones whose outputs are already complete (resume), groups the rest by combined
background (same background files, parameters and target window: computed once per
group), and writes each group in one dask computation. A group that fails is retried
product by product, so one bad input fails alone. Every outcome lands in a summary table
and a JSON report.

Completion markers live in ``OUT/.daskbkg/<output name>.json``. A marker is written only
after the product's files were renamed into place, and records a key of the inputs
(path, size, mtime), the parameters and the output settings, plus each output's size.
A rerun skips a product only if its marker key matches and its outputs are intact.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from .errors import DaskbkgError, exit_code_for
from .runner import Outcome, RunSettings, plan_target

__all__ = ["CampaignItem", "Campaign", "items_from_inputs"]

log = logging.getLogger("daskbkg")

_MARKER_DIR = ".daskbkg"
# Failures of one product that must not stop the others.
_PRODUCT_ERRORS = (DaskbkgError, OSError, ValueError, IndexError, TypeError, AttributeError,
                   KeyError)


@dataclass(frozen=True)
class CampaignItem:
    """One product to make: a target, its backgrounds and its output root."""

    name: str
    target: Path | None
    backgrounds: tuple[Path, ...] = ()
    root: str | None = None
    sep: str = "_"
    error: str | None = None
    sourcecat: Path | None = None


def items_from_inputs(inputs: Sequence[str], backgrounds: Sequence[str] = ()) -> list[CampaignItem]:
    """Expand CLI/API inputs into campaign items.

    Each input is an association (``*.json``), a list file (``@list.txt``: one input per
    line), a glob pattern, or a target FITS file (which then uses ``backgrounds``).
    """
    import glob

    from .io.asn import is_association, read_association

    items: list[CampaignItem] = []
    for entry in inputs:
        entry = str(entry)
        if entry.startswith("@"):
            lines = Path(entry[1:]).read_text().splitlines()
            folder = Path(entry[1:]).parent
            listed = [str(folder / ln.strip()) for ln in lines if ln.strip() and not ln.startswith("#")]
            items += items_from_inputs(listed, backgrounds)
            continue
        if any(ch in entry for ch in "*?[") and not os.path.exists(entry):
            matches = sorted(glob.glob(entry))
            if not matches:
                items.append(CampaignItem(entry, None, error=f"{entry}: no file matches this pattern"))
            items += items_from_inputs(matches, backgrounds)
            continue
        if is_association(entry):
            for prod in read_association(entry):
                items.append(CampaignItem(prod.name, prod.science, prod.backgrounds,
                                          root=prod.name, error=prod.error,
                                          sourcecat=prod.sourcecat))
            continue
        items.append(CampaignItem(os.path.basename(entry), _as_input(entry),
                                  tuple(_as_input(b) for b in backgrounds)))
    return items


def _as_input(path: Any) -> Path | str:
    """Local inputs as Paths, URLs as strings (a Path would mangle ``s3://``)."""
    from .io.source import is_url

    return os.fspath(path) if is_url(path) else Path(path)


def _identity(path: Any) -> list:
    from .errors import InputFileNotFoundError
    from .io.source import stat_input

    st = stat_input(path)
    if not st.exists:
        raise InputFileNotFoundError(f"{st.path}: file not found")
    return [st.path, st.size, st.version]


@dataclass
class _Planned:
    item: CampaignItem
    result: Any
    main: Path
    comb: Path | None
    key: str
    root: str


@dataclass
class CampaignReport:
    """Outcomes of a campaign run, with timing."""

    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0

    def counts(self) -> dict[str, int]:
        """Number of products per state."""
        result: dict[str, int] = {}
        for o in self.outcomes:
            result[o.state] = result.get(o.state, 0) + 1
        return result

    @property
    def ok(self) -> bool:
        """True when no product failed."""
        return all(o.state != "failed" for o in self.outcomes)

    def table(self) -> str:
        """Plain-text summary table (one row per product)."""
        rows = [("product", "state", "S_BKDSUB", "detail")]
        for o in self.outcomes:
            detail = o.reason or ", ".join(p.name for p in o.outputs)
            rows.append((o.name, o.state, o.status or "-", detail))
        widths = [min(max(len(r[i]) for r in rows), 60) for i in range(3)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r[:3], widths)) + "  " + r[3] for r in rows]
        counts = ", ".join(f"{n} {s}" for s, n in sorted(self.counts().items()))
        lines.append(f"{len(self.outcomes)} products: {counts} in {self.seconds:.1f} s")
        return "\n".join(lines)

    def to_json(self) -> dict:
        """JSON-serialisable form of the report."""
        def encode(o: Outcome) -> dict:
            d = asdict(o)
            d["outputs"] = [str(p) for p in o.outputs]
            return d

        return {"seconds": self.seconds, "counts": self.counts(),
                "products": [encode(o) for o in self.outcomes]}

    def write(self, path: Path) -> Path:
        """Write the JSON report atomically."""
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2))
        os.replace(tmp, path)
        return path


class Campaign:
    """Background-subtract many products with shared work, resume and isolation.

    Parameters
    ----------
    items : sequence of CampaignItem
        Products to make (see :func:`items_from_inputs`).
    settings : RunSettings
        Output folder, parameters and format.
    resume : bool
        Skip products whose outputs are complete and match the current inputs.
    progress : bool
        Show a progress bar for each computation (on standard error).
    raise_errors : bool
        Let a product's exception propagate (with its traceback) instead of recording
        it as a failed outcome; for debugging.
    """

    def __init__(self, items: Sequence[CampaignItem], settings: RunSettings, *,
                 resume: bool = True, progress: bool = False, raise_errors: bool = False):
        self.items = list(items)
        self.settings = settings
        self.resume = resume
        self.progress = progress
        self.raise_errors = raise_errors

    @classmethod
    def from_inputs(cls, inputs: Sequence[str], settings: RunSettings, *,
                    backgrounds: Sequence[str] = (), **kwargs: Any) -> "Campaign":
        """Campaign over associations, list files, globs or target files."""
        return cls(items_from_inputs(inputs, backgrounds), settings, **kwargs)

    # -- keys and markers ------------------------------------------------------------
    def _key(self, item: CampaignItem) -> str:
        from dask.base import tokenize

        s = self.settings
        files = [_identity(item.target)] + [_identity(b) for b in item.backgrounds]
        wfss = [_identity(p) if p is not None and Path(p).exists() else str(p)
                for p in (s.wfss.bkg_ref, s.wfss.wavelengthrange, s.wfss.source_mask,
                          s.wfss.source_boxes, item.sourcecat or s.wfss.source_catalog)]
        return tokenize(files, wfss, s.wfss.params, s.params, s.compat, s.fmt, s.suffix,
                        s.save_combined, item.root)

    def _marker(self, main: Any):
        from .io.source import join

        return join(join(self.settings.output_dir, _MARKER_DIR),
                    f"{os.path.basename(os.fspath(main))}.json")

    def _is_complete(self, main: Any, key: str) -> bool:
        from .io.source import read_text, total_size

        try:
            record = json.loads(read_text(self._marker(main)))
        except (OSError, ValueError):
            return False
        if record.get("key") != key:
            return False
        return all(total_size(o["path"]) == o["size"] for o in record.get("outputs", []))

    def _mark_done(self, planned: _Planned, outputs: list) -> None:
        from .io.source import join, makedirs, total_size, write_text

        makedirs(join(self.settings.output_dir, _MARKER_DIR))
        record = {"key": planned.key, "product": planned.item.name,
                  "outputs": [{"path": os.fspath(p), "size": total_size(p)} for p in outputs]}
        write_text(self._marker(planned.main), json.dumps(record))

    # -- planning --------------------------------------------------------------------
    def plan(self) -> tuple[list[_Planned], list[Outcome]]:
        """Open inputs and build lazy products; returns (to run, already settled)."""
        from .io.naming import split_root
        from .runner import _paths

        todo, settled = [], []
        for item in self.items:
            if item.error or item.target is None:
                if self.raise_errors:
                    from .errors import AssociationError

                    raise AssociationError(item.error or f"{item.name}: no science member")
                settled.append(Outcome(item.name, "failed", reason=item.error, code=2))
                continue
            root, sep = (item.root, item.sep) if item.root else split_root(item.target)
            try:
                key = self._key(item)
                main, _ = _paths(self.settings, root, sep)
                if self.resume and self._is_complete(main, key):
                    log.info("%s: outputs complete, skipped (resume)", item.name)
                    settled.append(Outcome(item.name, "skipped", [main],
                                           reason="already complete (resume)"))
                    continue
                result, main, comb = plan_target(item.target, item.backgrounds, self.settings,
                                                 root=root, sep=sep, sourcecat=item.sourcecat)
            except _PRODUCT_ERRORS as exc:
                if self.raise_errors:
                    raise
                settled.append(_failed(item.name, exc))
                continue
            todo.append(_Planned(item, result, main, comb, key, root))
        return todo, settled

    # -- running ---------------------------------------------------------------------
    def _write_group(self, group: list[_Planned], compute_kwargs: dict) -> list[Outcome]:
        from .result import write_outputs

        jobs, outcomes = [], []
        try:
            for p in group:
                if self.settings.fmt == "zarr":
                    jobs.append(p.result.zarr_jobs(p.main, p.comb, shards=self.settings.shards))
                else:
                    jobs.append(p.result.fits_jobs(p.main, p.comb))
            with self._progress_bar(compute_kwargs):
                written = write_outputs([j for js in jobs for j in js], **compute_kwargs)
        except BaseException:
            for js in jobs:
                for job in js:
                    job[2]()
            raise
        position = 0
        for p, js in zip(group, jobs):
            outputs = written[position:position + len(js)]
            position += len(js)
            if self.settings.wfss.save_boxes and p.result.product.info.get("wfss_boxes"):
                from .wfss import save_wfss_boxes

                boxes = save_wfss_boxes(p.result.product, self.settings.output_dir,
                                        root=p.root, overwrite=True)
                if boxes is not None:
                    outputs.append(boxes)
            self._mark_done(p, outputs)
            state = "skipped" if p.result.status == "SKIPPED" else "done"
            reason = "; ".join(p.result.product.notes) or None if state == "skipped" else None
            outcomes.append(Outcome(p.item.name, state, outputs, reason=reason,
                                    status=p.result.status,
                                    combined_key=_combined_key(p.result)))
        return outcomes

    def _progress_bar(self, compute_kwargs: dict):
        import contextlib

        if not self.progress:
            return contextlib.nullcontext()
        scheduler = compute_kwargs.get("scheduler")
        if hasattr(scheduler, "dashboard_link"):
            return contextlib.nullcontext()  # distributed: the dashboard shows progress
        import sys

        from dask.diagnostics import ProgressBar

        return ProgressBar(out=sys.stderr, minimum=1.0)

    def run(self, compute_kwargs: dict | None = None, report_path: Path | None = None) -> CampaignReport:
        """Plan and write every product; return (and optionally save) the report."""
        compute_kwargs = compute_kwargs or {}
        start = time.perf_counter()
        from .io.source import makedirs

        makedirs(self.settings.output_dir)
        todo, outcomes = self.plan()
        groups: dict[str, list[_Planned]] = {}
        for p in todo:
            groups.setdefault(_combined_key(p.result) or p.key, []).append(p)
        shared = sum(len(g) for g in groups.values() if len(g) > 1)
        if shared:
            log.info("%d products share %d combined backgrounds; each is computed once",
                     shared, sum(1 for g in groups.values() if len(g) > 1))
        for group in groups.values():
            outcomes += self._run_group(group, compute_kwargs)
        order = {}
        for index, item in enumerate(self.items):
            order.setdefault(item.name, index)
        outcomes.sort(key=lambda o: order.get(o.name, len(order)))
        report = CampaignReport(outcomes, time.perf_counter() - start)
        if report_path is not None:
            report.write(report_path)
        return report

    def _run_group(self, group: list[_Planned], compute_kwargs: dict) -> list[Outcome]:
        try:
            return self._write_group(group, compute_kwargs)
        except _PRODUCT_ERRORS as exc:
            if self.raise_errors:
                raise
            if len(group) == 1:
                log.debug("%s failed", group[0].item.name, exc_info=True)
                return [_failed(group[0].item.name, exc)]
        # Retry one by one so that only the broken product fails.
        return [o for p in group for o in self._run_group([p], compute_kwargs)]


def _combined_key(result: Any) -> str | None:
    comb = result.combined_background
    return comb.key if comb is not None else None


def _failed(name: str, exc: BaseException) -> Outcome:
    return Outcome(name, "failed", reason=_one_line(exc), code=exit_code_for(exc))


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
