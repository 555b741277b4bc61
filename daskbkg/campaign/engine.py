"""The campaign engine: every product in flight, finished products kept at once.

A :class:`Campaign` submits one job per product (:func:`~daskbkg.campaign.jobs.run_product`)
to a backend, never more than a window of a few times the backend's threads at once,
and refills the window as products finish (``as_completed``). Products that share a
background list share one combined background, computed once by its own job
(:func:`~daskbkg.campaign.jobs.combine_group`) and passed to their jobs as a future;
each product still finishes, and fails, on its own. Workers read, compute and write;
the client only expands the inputs, submits small job records and records outcomes.

Every outcome is appended to ``OUT/.daskbkg/manifest.jsonl`` the moment it arrives, and
the ``--report`` file is rewritten (atomically, at most once a second), so even a killed
client leaves a record. Ctrl-C or SIGTERM stops the campaign: nothing more is submitted,
queued jobs are cancelled, running local jobs stop at their next tile and remove their
temporary files, every finished product is kept, and the report lists the state of every
product.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from pathlib import Path
from typing import Any, Sequence

from ..settings import RunSettings
from .backends import Backend, make_backend
from .items import CampaignItem, items_from_inputs
from .jobs import STOP, ProductJob, combine_group, run_product
from .markers import MARKER_DIR
from .outcome import (
    CampaignReport,
    Manifest,
    Outcome,
    failure_outcome,
    interrupted,
    log_outcome,
    not_started,
)
from .progress import Progress

__all__ = ["Campaign", "CampaignInterrupted", "WINDOW_PER_SLOT", "prepare_output_dir"]

log = logging.getLogger("daskbkg")

#: Products in flight per thread of the backend (refilled as products finish).
WINDOW_PER_SLOT = 2


class CampaignInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped a campaign; ``report`` holds every product's state."""

    def __init__(self, report: CampaignReport):
        super().__init__("campaign interrupted")
        self.report = report


def _group_key(item: CampaignItem) -> tuple | None:
    """Products with the same (non-empty) background list can share a combined background."""
    if item.error or item.target is None or not item.backgrounds:
        return None
    return tuple(os.fspath(b) for b in item.backgrounds)


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
        Show progress on standard error: a product counter (a redrawn line on a
        terminal, one line per product otherwise).
    raise_errors : bool
        Raise the first failed product's error instead of recording it (debugging).
    """

    def __init__(self, items: Sequence[CampaignItem], settings: RunSettings, *,
                 resume: bool = True, progress: bool = False, raise_errors: bool = False):
        if not isinstance(settings, RunSettings):
            raise TypeError(f"settings must be a daskbkg.RunSettings, not {type(settings).__name__}")
        self.items = list(items)
        self.settings = settings
        self.resume = resume
        self.progress = progress
        self.raise_errors = raise_errors
        self.report: CampaignReport | None = None

    @classmethod
    def from_inputs(cls, inputs: Sequence[str], settings: RunSettings, *,
                    backgrounds: Sequence[str] = (), **kwargs: Any) -> "Campaign":
        """Campaign over associations, list files, globs or target files."""
        return cls(items_from_inputs(inputs, backgrounds), settings, **kwargs)

    # ------------------------------------------------------------------------------ run
    def run(self, compute_kwargs: dict | None = None,
            report_path: str | os.PathLike | None = None) -> CampaignReport:
        """Make every product; return (and optionally save) the report.

        Parameters
        ----------
        compute_kwargs : dict, optional
            ``{"scheduler": ...}``: ``"threads"`` (default), ``"processes"``,
            ``"synchronous"``, or a ``distributed.Client``; ``num_workers`` sets the
            local pool size.
        report_path : path-like, optional
            JSON report, rewritten as outcomes arrive and complete at the end.

        Raises
        ------
        CampaignInterrupted
            After Ctrl-C or SIGTERM, once every finished product is kept and the
            report written (a ``KeyboardInterrupt``; ``.report`` has every state).
        """
        from ..io.source import is_url

        compute_kwargs = dict(compute_kwargs or {})
        start = time.perf_counter()
        prepare_output_dir(self.settings)
        out = self.settings.output_dir
        manifest = Manifest(None if is_url(out) else Path(out) / MARKER_DIR / "manifest.jsonl",
                            Path(report_path) if report_path is not None else None)
        outcomes: list[Outcome | None] = [None] * len(self.items)

        def snapshot() -> CampaignReport:
            return CampaignReport([o if o is not None else not_started(item.name)
                                   for o, item in zip(outcomes, self.items)],
                                  time.perf_counter() - start)

        backend = make_backend(compute_kwargs.get("scheduler"), compute_kwargs.get("num_workers"))
        progress = Progress(len(self.items), enabled=self.progress, link=backend.dashboard_link)
        runner = _Runner(self, backend, outcomes, manifest, progress, snapshot)
        try:
            runner.run()
        except KeyboardInterrupt:
            report = runner.stop()
            self.report = report
            manifest.close(report)
            progress.close(report)
            raise CampaignInterrupted(report) from None
        finally:
            STOP.clear()
            runner.discard_shared()
        backend.close()
        report = snapshot()
        self.report = report
        manifest.close(report)
        progress.close(report)
        return report


def prepare_output_dir(settings: RunSettings) -> None:
    """Create the output folder; refuse one that cannot be written.

    Raises
    ------
    OutputError
        FITS output to a URL, a folder that cannot be created or is not writable.
    """
    from ..errors import OutputError
    from ..io.source import is_url, makedirs

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


class _Runner:
    """One run of a campaign: the submission window and the outcome loop."""

    def __init__(self, campaign: Campaign, backend: Backend, outcomes: list, manifest,
                 progress, snapshot):
        self.campaign = campaign
        self.backend = backend
        self.outcomes = outcomes
        self.manifest = manifest
        self.progress = progress
        self.snapshot = snapshot
        self.pending: dict[Any, int] = {}
        self.shared: dict[tuple, Any] = {}  # group key -> future of the combined background
        self.members: dict[tuple, tuple] = {}  # group key -> the products sharing it
        self.remaining: dict[tuple, int] = {}  # group key -> products not yet finished
        self.finished = 0
        self.inline: int | None = None  # index of a product running in this thread
        self.run_id = uuid.uuid4().hex[:12]  # task keys unique to this run

    # -- submission ------------------------------------------------------------------
    def _groups(self) -> None:
        """Products grouped by background list (only lists used by several products)."""
        members: dict[tuple, list] = {}
        for item in self.campaign.items:
            key = _group_key(item)
            if key is not None:
                members.setdefault(key, []).append(item)
        self.members = {k: tuple(v) for k, v in members.items() if len(v) > 1}
        self.remaining = {k: len(v) for k, v in self.members.items()}

    def _shared_future(self, key: tuple):
        if key not in self.shared:
            c = self.campaign
            from dask.base import tokenize

            self.shared[key] = self.backend.submit(
                combine_group, self.members[key], c.settings, c.resume, self._wide(),
                retries=c.settings.retries,
                key=f"daskbkg-combined-{tokenize(key, c.settings)}")
        return self.shared[key]

    def _wide(self) -> str:
        """Inner scheduler of a job that should use more than its own thread."""
        if self.backend.distributed:
            return "cluster"
        return "sync" if self.backend.inline else "threads"

    def _submit(self, index: int) -> None:
        c = self.campaign
        item = c.items[index]
        if item.error or item.target is None:
            self._record(index, Outcome(item.name, "failed", code=2,
                                        reason=item.error or f"{item.name}: no science member"))
            return
        alone = len(c.items) == 1 and self.backend.kind == "threads"
        few = self.backend.distributed and len(c.items) < self.backend.slots
        job = ProductJob(item, c.settings, resume=c.resume, index=index,
                         inner=self._wide() if alone or few else "sync",
                         progress=alone and c.progress)
        if alone:  # a single product: run it here, its tiles on all threads
            self.inline = index
            self._record(index, run_product(job))
            self.inline = None
            return
        args: tuple = (job,)
        group = _group_key(item)
        if group in self.remaining:
            args = (job, self._shared_future(group))
        future = self.backend.submit(run_product, *args, retries=c.settings.retries,
                                     key=f"daskbkg-product-{self.run_id}-{index}")
        self.pending[future] = index
        self.backend.add(future)

    # -- outcomes --------------------------------------------------------------------
    def _record(self, index: int, outcome: Outcome) -> None:
        c = self.campaign
        if c.raise_errors and outcome.state == "failed":
            raise RuntimeError(f"{outcome.name}: {outcome.reason}\n{outcome.detail or ''}")
        self.outcomes[index] = outcome
        self.finished += 1
        log_outcome(outcome, self.finished, len(c.items))
        self.manifest.record(outcome, self.snapshot)
        self.progress.update(outcome)
        group = _group_key(c.items[index])
        if group in self.remaining:
            self.remaining[group] -= 1
            if self.remaining[group] == 0:
                self._discard(self.shared.pop(group, None))

    @staticmethod
    def _discard(future) -> None:
        """Release a shared combined background whose products are all finished.

        Dropping the future frees its result on a cluster; the scratch file is deleted.
        """
        if future is None or not future.done() or future.cancelled():
            return
        try:
            shared = future.result()
        except BaseException:  # noqa: BLE001 - failed: nothing was kept
            return
        shared.discard()

    def discard_shared(self) -> None:
        """Release every shared combined background still held (end of run, interrupt)."""
        for key in list(self.shared):
            self._discard(self.shared.pop(key))

    def _result(self, future, index: int) -> Outcome:
        name = self.campaign.items[index].name
        try:
            return future.result()
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - worker lost, cancelled, ...
            outcome = failure_outcome(name, exc)
            outcome.code = 1
            return outcome

    def run(self) -> None:
        """Submit within the window, record outcomes as they arrive."""
        self._groups()
        items = self.campaign.items
        next_index = 0
        last_refresh = time.monotonic()
        while next_index < len(items) or self.pending:
            window = self.backend.slots * (1 if self.backend.inline else WINDOW_PER_SLOT)
            while next_index < len(items) and len(self.pending) < window:
                self._submit(next_index)
                next_index += 1
            if not self.pending:
                continue
            future = self.backend.next_done()
            index = self.pending.pop(future, None)
            if index is None:
                continue
            self._record(index, self._result(future, index))
            if time.monotonic() - last_refresh > 5.0:
                self.backend.refresh()
                last_refresh = time.monotonic()

    def stop(self) -> CampaignReport:
        """After Ctrl-C: cancel, let running local jobs clean up, report every state."""
        STOP.set()
        log.info("interrupted: no new product is started; finished products are kept")
        self.backend.cancel(list(self.pending))
        self.backend.close(interrupted=True)
        for future, index in list(self.pending.items()):
            if future.done() and not future.cancelled():
                try:
                    outcome = future.result()
                except BaseException:  # noqa: BLE001 - stopped or lost
                    continue
                if self.outcomes[index] is None:
                    self.outcomes[index] = outcome
        report = self.snapshot()
        running = list(self.pending.values()) + ([self.inline] if self.inline is not None else [])
        for index in running:
            if self.outcomes[index] is None:
                report.outcomes[index] = interrupted(self.campaign.items[index].name,
                                                     remote=self.backend.distributed)
        report.interrupted = True
        return report
