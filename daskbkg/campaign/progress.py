"""What a batch user sees while a campaign runs, on every scheduler.

Each product prints its lines the moment it is finished: ``<name>: wrote <file>`` on
standard output, or ``daskbkg: error: <reason>`` on standard error. On a terminal a
product counter (done, failed, rate, ETA) is also redrawn in place on standard error;
when standard error is redirected (a batch job's log) no counter is drawn.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

__all__ = ["Progress"]


class Progress:
    """Count finished products and show the campaign's progress on ``stream``.

    Parameters
    ----------
    total : int
        Number of products.
    enabled : bool
        Show anything at all.
    link : str, optional
        The dask dashboard address, printed once at the start.
    stream, out : file, optional
        Standard error and standard output (defaults ``sys.stderr``, ``sys.stdout``).
    """

    def __init__(self, total: int, *, enabled: bool = True, link: str | None = None,
                 stream: TextIO | None = None, out: TextIO | None = None):
        self.total = total
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.out = out or sys.stdout
        self.counts: dict[str, int] = {}
        self.start = time.monotonic()
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._drawn = False
        if enabled and link:
            print(f"dask dashboard: {link}", file=self.stream, flush=True)

    def line(self) -> str:
        """The counter: ``N/M products (a done, b skipped, c failed), r/s, ETA t``."""
        finished = sum(self.counts.values())
        elapsed = max(time.monotonic() - self.start, 1e-9)
        rate = finished / elapsed
        parts = ", ".join(f"{n} {s}" for s, n in sorted(self.counts.items()))
        text = f"{finished}/{self.total} products ({parts}), {rate:.2f}/s"
        if 0 < finished < self.total:
            text += f", ETA {(self.total - finished) / rate:.0f} s"
        return text

    def update(self, outcome: Any) -> None:
        """Count a finished product and print its lines."""
        self.counts[outcome.state] = self.counts.get(outcome.state, 0) + 1
        if not self.enabled:
            return
        if self._drawn:
            self.stream.write("\r\033[K")
        if outcome.state == "failed":
            print(f"daskbkg: error: {outcome.reason}", file=self.stream)
        else:
            note = "" if outcome.state == "done" else f" ({outcome.state}: {outcome.reason})"
            verb = "wrote " if outcome.state == "done" else ""
            for path in outcome.outputs:
                print(f"{outcome.name}: {verb}{path}{note}", file=self.out)
            self.out.flush()
        if self.tty and self.total > 1:
            self.stream.write(self.line())
            self._drawn = True
        self.stream.flush()

    def close(self, report: Any = None) -> None:
        """End the redrawn line."""
        if self.enabled and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
