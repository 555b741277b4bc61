"""The one type of deferred output: a file or zarr group laid out, waiting for its data.

The FITS and zarr writers (``compute=False``) return a :class:`WriteJob`. Its ``stores``
are (array, target) pairs for one ``dask.array.store``; several jobs are stored in one
computation so that shared graph parts (a combined background used by a product and by
its own file) are computed once. ``finalize`` renames the finished output into place and
returns its path; ``abort`` removes the temporary output.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

__all__ = ["WriteJob", "run_write_jobs"]


@dataclass(frozen=True)
class WriteJob:
    """A deferred output.

    Attributes
    ----------
    path : path-like
        Final location of the output.
    stores : list of (array, target)
        What remains to be stored (dask or NumPy arrays into region writers).
    finalize : callable
        Renames the finished output into place (or marks a zarr group complete on an
        object store); returns ``path``.
    abort : callable
        Removes the temporary output; safe to call more than once.
    """

    path: Any
    stores: list
    finalize: Callable[[], Any]
    abort: Callable[[], None]


def run_write_jobs(jobs: Sequence[WriteJob], **compute_kwargs) -> list:
    """Store every job's data in one dask computation, then finalize them all.

    On any failure (or interruption) every job's temporary output is removed and the
    exception propagates. Returns the final paths, in job order.
    """
    from .fits_writer import store_all

    try:
        store_all([pair for job in jobs for pair in job.stores], **compute_kwargs)
        return [job.finalize() for job in jobs]
    except BaseException:
        for job in jobs:
            job.abort()
        raise
