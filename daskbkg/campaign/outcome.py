"""Outcomes of products and the campaign report (summary table, JSON, manifest).

Product states:

``done``
    outputs written and marked complete in this run;
``skipped``
    complete from an earlier run (resume), or the step itself was skipped
    (``S_BKDSUB = SKIPPED``: NIRSpec grating tilts, empty list with ``skip``);
``failed``
    with a one-line reason and an exit code: 2 for bad input, 1 for anything else;
``interrupted``
    running when the campaign was stopped; nothing of it was kept;
``not started``
    the campaign was stopped before the product was submitted.
"""

from __future__ import annotations

import json
import logging
import os
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["Outcome", "CampaignReport", "Manifest", "failure_outcome", "is_input_problem",
           "log_outcome", "not_started", "interrupted", "STATES"]

log = logging.getLogger("daskbkg")

STATES = ("done", "skipped", "failed", "interrupted", "not started")


@dataclass
class Outcome:
    """What happened to one product.

    Attributes
    ----------
    name : str
        Product name.
    state : str
        One of :data:`STATES`.
    outputs : list
        Files (or zarr groups) written, or found complete.
    reason : str, optional
        Why a product failed or was skipped (one line).
    status : str, optional
        ``S_BKDSUB`` of the product (``COMPLETE``, ``SKIPPED`` or ``FAILED``).
    combined_key : str, optional
        Token of the combined background used (equal tokens: one computation).
    code : int
        Exit code a failure maps to (2 bad input, 1 anything else; 0 otherwise).
    seconds : float
        Time the product took on its worker.
    detail : str, optional
        Traceback of an internal error (logged, not printed).
    """

    name: str
    state: str
    outputs: list = field(default_factory=list)
    reason: str | None = None
    status: str | None = None
    combined_key: str | None = None
    code: int = 0
    seconds: float = 0.0
    detail: str | None = None

    def to_json(self) -> dict:
        """JSON-serialisable record (paths as strings, no traceback)."""
        record = asdict(self)
        record["outputs"] = [os.fspath(p) for p in self.outputs]
        record.pop("detail")
        return record


def is_input_problem(exc: BaseException) -> bool:
    """True for errors that mean the user's input is unusable (exit code 2).

    daskbkg's own input errors (:class:`~daskbkg.errors.InputError`) and files that
    cannot be opened at all. Any other exception is a runtime or internal failure.
    """
    from ..errors import InputError, OutputError

    if isinstance(exc, OutputError):
        return False
    return isinstance(exc, (InputError, FileNotFoundError, IsADirectoryError, PermissionError))


def failure_outcome(name: str, exc: BaseException, seconds: float = 0.0) -> Outcome:
    """The failed outcome of ``exc``: bad input (2), runtime I/O failure or internal error (1)."""
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    if is_input_problem(exc):
        return Outcome(name, "failed", reason=line, code=2, seconds=seconds)
    if isinstance(exc, OSError):
        return Outcome(name, "failed", reason=line, code=1, seconds=seconds)
    detail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return Outcome(name, "failed", code=1, seconds=seconds, detail=detail,
                   reason=f"internal error ({type(exc).__name__}: {line}); please report it")


@dataclass
class CampaignReport:
    """Outcomes of a campaign, one per product, in input order."""

    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0
    interrupted: bool = False

    def counts(self) -> dict[str, int]:
        """Number of products per state."""
        result: dict[str, int] = {}
        for o in self.outcomes:
            result[o.state] = result.get(o.state, 0) + 1
        return result

    @property
    def ok(self) -> bool:
        """True when every product is done or skipped."""
        return all(o.state in ("done", "skipped") for o in self.outcomes)

    @property
    def exit_code(self) -> int:
        """130 if interrupted, else the largest failure code (0 when nothing failed)."""
        if self.interrupted:
            return 130
        return max([o.code or 1 for o in self.outcomes if o.state == "failed"], default=0)

    def table(self) -> str:
        """Plain-text summary table (one row per product) and a closing count line."""
        rows = [("product", "state", "S_BKDSUB", "detail")]
        for o in self.outcomes:
            detail = o.reason or ", ".join(Path(os.fspath(p)).name for p in o.outputs)
            rows.append((o.name, o.state, o.status or "-", detail))
        widths = [min(max(len(r[i]) for r in rows), 60) for i in range(3)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r[:3], widths)) + "  " + r[3] for r in rows]
        counts = ", ".join(f"{n} {s}" for s, n in sorted(self.counts().items()))
        stopped = " (interrupted)" if self.interrupted else ""
        lines.append(f"{len(self.outcomes)} products: {counts} in {self.seconds:.1f} s{stopped}")
        return "\n".join(lines)

    def to_json(self) -> dict:
        """JSON-serialisable form of the report."""
        return {"seconds": round(self.seconds, 3), "interrupted": self.interrupted,
                "counts": self.counts(), "products": [o.to_json() for o in self.outcomes]}

    def write(self, path: str | os.PathLike) -> Path:
        """Write the JSON report atomically (unique temporary name, then rename)."""
        from ..io.source import write_text

        write_text(path, json.dumps(self.to_json(), indent=2))
        return Path(path)


class Manifest:
    """Append-only JSON-lines record of outcomes as they arrive, plus a throttled report.

    Each finished product appends one line to ``path`` (flushed at once), so even a
    ``SIGKILL`` leaves a record of everything that completed. When ``report_path`` is
    set, the whole report is also rewritten atomically at most every ``interval``
    seconds (and always by :meth:`close`).
    """

    def __init__(self, path: Path | None, report_path: Path | None, interval: float = 1.0):
        self.path = path
        self.report_path = report_path
        self.interval = interval
        self._file = None
        self._last = 0.0
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(path, "a", encoding="utf-8")

    def record(self, outcome: Outcome, snapshot) -> None:
        """Append ``outcome``; rewrite the report from ``snapshot()`` if due."""
        if self._file is not None:
            self._file.write(json.dumps({"time": time.time(), **outcome.to_json()}) + "\n")
            self._file.flush()
        now = time.monotonic()
        if self.report_path is not None and now - self._last >= self.interval:
            self._last = now
            snapshot().write(self.report_path)

    def close(self, report: CampaignReport) -> None:
        """Write the final report and close the manifest."""
        if self.report_path is not None:
            report.write(self.report_path)
        if self._file is not None:
            self._file.close()
            self._file = None

    def __del__(self) -> None:  # pragma: no cover - safety net
        if self._file is not None:
            self._file.close()


def log_outcome(outcome: Outcome, done: int, total: int) -> None:
    """One log line per finished product: name, state, seconds (and the reason).

    Logged at INFO: the console shows only warnings by default (the campaign prints
    its own lines), ``--log-file`` and ``--verbose`` get every product.
    """
    extra = f": {outcome.reason}" if outcome.reason else ""
    log.info("[%d/%d] %s %s (%.1f s)%s", done, total, outcome.name, outcome.state,
             outcome.seconds, extra)
    if outcome.detail:  # an internal error: the traceback goes to the log (file)
        log.info("%s: %s", outcome.name, outcome.detail.rstrip())


def not_started(name: str) -> Outcome:
    """Outcome of a product the campaign never submitted."""
    return Outcome(name, "not started", reason="the campaign was stopped before it started")


def interrupted(name: str, remote: bool = False) -> Outcome:
    """Outcome of a product that was running when the campaign was stopped.

    A local job stops at its next tile and removes its temporary files; a job running on
    a cluster worker (``remote``) may still finish there, and the next run skips it.
    """
    if remote:
        return Outcome(name, "interrupted", reason="running on a worker when the campaign "
                                                   "stopped; if it finishes, the next run skips it")
    return Outcome(name, "interrupted", reason="stopped while running; nothing of it was kept")

