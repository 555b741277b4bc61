"""Choose the dask scheduler for a run: threads, processes, synchronous or distributed."""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Iterator

from .errors import ParameterError

__all__ = ["use_scheduler", "limit_native_threads", "local_scheduler"]

log = logging.getLogger("daskbkg")

_LOCAL = ("threads", "processes", "synchronous", "sync", "single-threaded")


def limit_native_threads() -> None:
    """Keep BLAS/OpenMP pools at one thread so dask's threads do not oversubscribe cores."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")


def local_scheduler(name: str):
    """The scheduler function of a local scheduler name.

    Passing the function rather than its name spares dask a check for a distributed
    client, which imports ``distributed`` (about a quarter of a second).
    """
    if name == "threads":
        from dask.threaded import get
    elif name == "processes":
        from dask.multiprocessing import get
    else:
        from dask.local import get_sync as get
    return get


@contextlib.contextmanager
def use_scheduler(spec: str | None = None) -> Iterator[dict]:
    """Yield the keyword arguments that make dask compute on the requested scheduler.

    Parameters
    ----------
    spec : str, optional
        ``"threads"`` (default), ``"processes"``, ``"synchronous"``, the address of a
        running dask scheduler (``tcp://host:port``) or the path of a scheduler file.

    Yields
    ------
    dict
        ``{"scheduler": ...}`` to pass to ``dask.compute`` / ``dask.array.store``.
    """
    limit_native_threads()
    if spec is None or spec in _LOCAL:
        yield {"scheduler": local_scheduler(spec or "threads")}
        return
    if "://" not in spec and not os.path.isfile(spec):
        if spec.endswith((".json", ".yaml", ".yml")) or os.sep in spec:
            raise ParameterError(f"{spec}: scheduler file not found (start the scheduler with "
                                 "'dask scheduler --scheduler-file FILE' first)")
        raise ParameterError(
            f"unknown scheduler {spec!r}; use threads, processes, synchronous, a tcp:// "
            "address or a scheduler file")
    from distributed import Client

    kwargs = {"address": spec} if "://" in spec else {"scheduler_file": spec}
    try:
        client = Client(**kwargs, set_as_default=False, timeout="30s")
    except OSError as exc:
        raise ParameterError(f"{spec}: cannot reach the dask scheduler ({exc})") from None
    try:
        log.info("connected to dask scheduler %s; dashboard: %s", client.scheduler.address,
                 client.dashboard_link)
        yield {"scheduler": client}
    finally:
        client.close()
