"""Where campaign jobs run: a dask.distributed cluster, or local threads or processes.

Both backends offer the same four operations to the campaign engine: ``submit`` a job
(whose arguments may include futures of earlier jobs), wait for the next finished
future, ``cancel`` futures and ``close``. The distributed backend is
``Client.submit`` with ``retries`` and ``distributed.as_completed``; the local one is a
``concurrent.futures`` pool, with dependencies resolved before a job is queued so no
pool thread ever waits for another.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import queue
import signal
import threading
from typing import Any, Callable

__all__ = ["Backend", "LocalBackend", "DistributedBackend", "make_backend"]

_THREADS = ("threads", "threading", None)
_PROCESSES = ("processes", "multiprocessing")
_SYNC = ("sync", "synchronous", "single-threaded")


class Backend:
    """Interface of the campaign backends.

    Attributes
    ----------
    kind : str
        ``"threads"``, ``"processes"``, ``"sync"`` (jobs run in the calling thread, one
        after the other) or ``"distributed"`` (jobs run on a dask.distributed cluster).
    slots : int
        Jobs that run at once (threads of the cluster, or local workers).
    """

    kind: str = ""
    slots: int = 1
    dashboard_link: str | None = None

    @property
    def inline(self) -> bool:
        """Jobs run in the calling thread, one after the other."""
        return self.kind == "sync"

    @property
    def distributed(self) -> bool:
        """Jobs run on a dask.distributed cluster."""
        return self.kind == "distributed"

    def submit(self, fn: Callable, *args: Any, key: str | None = None, retries: int = 0):
        """Schedule ``fn(*args)``; futures among ``args`` are replaced by their results."""
        raise NotImplementedError

    def add(self, future) -> None:
        """Watch ``future``: :meth:`next_done` returns it once it is finished."""
        raise NotImplementedError

    def next_done(self):
        """Block until a watched future is finished and return it."""
        raise NotImplementedError

    def cancel(self, futures) -> None:
        """Cancel futures that have not run yet (running jobs see ``STOP``)."""

    def close(self, interrupted: bool = False) -> None:
        """Release the workers (local pools are shut down; a Client stays open)."""

    def refresh(self) -> None:
        """Update :attr:`slots` (an adaptive cluster may have grown or shrunk)."""


def _terminate_as_interrupt(signum, frame):  # pragma: no cover - runs in child processes
    raise KeyboardInterrupt


def _child_init() -> None:  # pragma: no cover - runs in child processes
    """Worker processes treat SIGTERM like Ctrl-C, so a stopped job removes its temp files."""
    signal.signal(signal.SIGTERM, _terminate_as_interrupt)


class LocalBackend(Backend):
    """Jobs in local threads or processes (``concurrent.futures``), or inline.

    Parameters
    ----------
    kind : {"threads", "processes", "sync"}
        ``sync`` runs every job in the calling thread.
    workers : int, optional
        Pool size (default: the number of CPUs).
    """

    def __init__(self, kind: str = "threads", workers: int | None = None):
        self.kind = kind
        self.slots = max(1, workers or os.cpu_count() or 1) if kind != "sync" else 1
        self._done: queue.Queue = queue.Queue()
        self._pool: cf.Executor | None = None
        if kind == "threads":
            self._pool = cf.ThreadPoolExecutor(self.slots, thread_name_prefix="daskbkg-job")
        elif kind == "processes":
            import multiprocessing

            self._pool = cf.ProcessPoolExecutor(self.slots, initializer=_child_init,
                                                mp_context=multiprocessing.get_context("spawn"))

    def submit(self, fn, *args, key=None, retries=0):
        """Queue ``fn(*args)`` once every future among ``args`` is done."""
        deps = [a for a in args if isinstance(a, cf.Future)]
        outer: cf.Future = cf.Future()
        started = threading.Lock()

        def start(_=None) -> None:
            if not all(d.done() for d in deps) or not started.acquire(blocking=False):
                return
            if not outer.set_running_or_notify_cancel():
                return
            try:
                values = [a.result() if isinstance(a, cf.Future) else a for a in args]
                if self._pool is None:  # inline; Ctrl-C propagates to the caller
                    outer.set_result(fn(*values))
                    return
                inner = self._pool.submit(fn, *values)
            except Exception as exc:  # noqa: BLE001 - handed to the future's owner
                outer.set_exception(exc)
                return
            inner.add_done_callback(lambda f: _copy(f, outer))

        if not deps:
            start()
        for dep in deps:
            dep.add_done_callback(start)
        return outer

    def add(self, future) -> None:
        """Watch ``future``."""
        future.add_done_callback(self._done.put)

    def next_done(self):
        """The next finished future (waits in short slices so Ctrl-C gets through)."""
        while True:
            try:
                return self._done.get(timeout=0.2)
            except queue.Empty:
                continue

    def cancel(self, futures) -> None:
        """Cancel queued jobs."""
        for future in futures:
            future.cancel()

    def close(self, interrupted: bool = False) -> None:
        """Shut the pool down; after an interrupt, stop the worker processes too."""
        if self._pool is None:
            return
        if interrupted and self.kind == "processes":
            import multiprocessing

            for child in multiprocessing.active_children():
                child.terminate()  # SIGTERM: the job removes its temporary files
        self._pool.shutdown(wait=True, cancel_futures=interrupted)
        self._pool = None


def _copy(source: cf.Future, target: cf.Future) -> None:
    """Hand the pool future's result (or error, or cancellation) to the caller's future."""
    if target.done():
        return
    if source.cancelled():
        target.set_exception(cf.CancelledError())
        return
    exc = source.exception()
    if exc is not None:
        target.set_exception(exc)
    else:
        target.set_result(source.result())


class DistributedBackend(Backend):
    """Jobs as futures on a dask.distributed cluster (``Client.submit``, ``as_completed``)."""

    kind = "distributed"

    def __init__(self, client):
        from distributed import as_completed

        self.client = client
        self._completed = as_completed([], loop=client.loop)
        self.dashboard_link = getattr(client, "dashboard_link", None)
        self.refresh()

    def refresh(self) -> None:
        """Slots = the cluster's threads right now (at least one)."""
        self.slots = max(1, sum(self.client.nthreads().values()))

    def submit(self, fn, *args, key=None, retries=0):
        """``Client.submit`` (futures among ``args`` are resolved on the worker)."""
        return self.client.submit(fn, *args, key=key, pure=False, retries=retries)

    def add(self, future) -> None:
        """Watch ``future``."""
        self._completed.add(future)

    def next_done(self):
        """The next finished future."""
        return next(self._completed)

    def cancel(self, futures) -> None:
        """Cancel futures that have not finished (running tasks finish on their own)."""
        futures = list(futures)
        if futures:
            self.client.cancel(futures)


def make_backend(scheduler: Any = None, workers: int | None = None) -> Backend:
    """The backend for a dask ``scheduler`` argument.

    ``scheduler`` may be a ``distributed.Client``, a name (``threads``, ``processes``,
    ``sync``/``synchronous``) or one of dask's local ``get`` functions.
    """
    if hasattr(scheduler, "submit") and hasattr(scheduler, "nthreads"):
        return DistributedBackend(scheduler)
    name = scheduler
    if callable(scheduler):  # dask's get functions, as daskbkg.scheduling hands them out
        from ..scheduling import local_scheduler

        name = next((n for n in ("threads", "processes", "sync")
                     if scheduler is local_scheduler(n)), scheduler)
    if name in _THREADS:
        return LocalBackend("threads", workers)
    if name in _PROCESSES:
        return LocalBackend("processes", workers)
    if name in _SYNC:
        return LocalBackend("sync")
    from ..errors import ParameterError

    raise ParameterError(f"unknown scheduler {scheduler!r}; use threads, processes, "
                         "synchronous or a distributed Client")
