"""The lazy result returned by the public API, with compute and writer methods."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .combine import CombinedBackground
from .errors import OutputError
from .subtract import Product

__all__ = ["BackgroundResult", "ComputedResult", "check_output_path", "write_outputs"]


@dataclass(frozen=True)
class ComputedResult:
    """In-memory (NumPy) outputs of a computed :class:`BackgroundResult`."""

    sci: np.ndarray
    err: np.ndarray
    dq: np.ndarray
    status: str
    combined: dict[str, np.ndarray] | None


def check_output_path(path: Path | str, inputs: list[str]) -> None:
    """Refuse an output path that is one of the inputs or sits in a missing/unwritable folder."""
    from .io.source import is_url

    if is_url(path):
        if any(os.fspath(path) == os.fspath(item) for item in inputs):
            raise OutputError(f"{path}: output path is an input file; refusing to overwrite it")
        return
    path = Path(path)
    resolved = path.resolve()
    for item in inputs:
        if resolved == Path(item).resolve() or (
            path.exists() and os.path.exists(item) and os.path.samefile(path, item)
        ):
            raise OutputError(f"{path}: output path is an input file; refusing to overwrite it")
    folder = resolved.parent
    if not folder.is_dir():
        raise OutputError(f"{folder}: output directory does not exist")
    if not os.access(folder, os.W_OK):
        raise OutputError(f"{folder}: output directory is not writable")


def write_outputs(jobs: list[tuple[Any, ...]], **compute_kwargs) -> list[Path]:
    """Run several deferred writers in one dask computation, then rename them all.

    Each job is ``(pending, finalize, abort)`` as returned by the writers with
    ``compute=False``. Shared graph parts (a combined background used by the product and
    by its own file) are computed once. On failure every temporary output is removed.
    """
    from .io.fits_writer import store_all

    pending = [pair for job in jobs for pair in job[0]]
    try:
        store_all(pending, **compute_kwargs)
        return [job[1]() for job in jobs]
    except BaseException:
        for job in jobs:
            job[2]()
        raise


class BackgroundResult:
    """Lazy outcome of :func:`daskbkg.subtract_background` for one target.

    Nothing is read from the inputs until :meth:`compute`, :meth:`to_fits` or
    :meth:`to_zarr` is called.
    """

    def __init__(self, product: Product):
        self.product = product

    # -- lazy arrays -------------------------------------------------------------------
    @property
    def sci(self):
        """Background-subtracted SCI (float32 dask array)."""
        return self.product.sci

    @property
    def err(self):
        """Output ERR (the target's, unchanged unless ``propagate_err``)."""
        return self.product.err

    @property
    def dq(self):
        """Output DQ (uint32 dask array)."""
        return self.product.dq

    @property
    def status(self) -> str:
        """``S_BKDSUB`` value: ``"COMPLETE"`` or ``"SKIPPED"``."""
        return self.product.status

    @property
    def combined_background(self) -> CombinedBackground | None:
        """The lazy combined background (None when the step was skipped)."""
        return self.product.combined

    @property
    def target(self):
        """The target :class:`~daskbkg.io.Exposure`."""
        return self.product.target

    def __repr__(self) -> str:
        return (f"BackgroundResult(target={self.product.target.name!r}, status={self.status!r}, "
                f"shape={tuple(self.sci.shape)}, backgrounds="
                f"{len(self.combined_background.backgrounds) if self.combined_background else 0})")

    # -- computing ---------------------------------------------------------------------
    def compute(self, **compute_kwargs) -> ComputedResult:
        """Compute every output (and the combined background) in one pass."""
        import dask

        arrays: list = [self.sci, self.err, self.dq]
        comb = self.combined_background
        if comb is not None:
            arrays += list(comb.arrays.values())
        values = dask.compute(*arrays, **compute_kwargs)
        combined = None
        if comb is not None:
            combined = dict(zip(comb.arrays.keys(), values[3:]))
        return ComputedResult(sci=values[0], err=values[1], dq=values[2], status=self.status,
                              combined=combined)

    def _inputs(self) -> list[str]:
        paths = [self.product.target.path]
        if self.product.combined is not None:
            paths += [b.path for b in self.product.combined.backgrounds]
        return paths

    def fits_jobs(self, path, combined_path=None) -> list:
        """Deferred FITS writers for the product (and the combined background)."""
        from .io.fits_writer import write_fits
        from .io.products import combined_hdus, product_hdus

        makers = [lambda: write_fits(path, product_hdus(self.product), compute=False)]
        if self._wants_combined(combined_path):
            makers.append(lambda: write_fits(combined_path, combined_hdus(self.combined_background),
                                             compute=False))
        return self._make_jobs([path, combined_path], makers)

    def zarr_jobs(self, path, combined_path=None, *, shards: bool = False) -> list:
        """Deferred zarr writers for the product (and the combined background)."""
        from .io.zarr_product import combined_group, product_group

        makers = [lambda: product_group(self.product, path, shards=shards)]
        if self._wants_combined(combined_path):
            makers.append(lambda: combined_group(self.combined_background, combined_path,
                                                 shards=shards))
        return self._make_jobs([path, combined_path], makers)

    def _wants_combined(self, combined_path) -> bool:
        return combined_path is not None and self.combined_background is not None

    def _make_jobs(self, paths: list, makers: list) -> list:
        """Check every output path, then create the deferred writers (all or none)."""
        for path in paths:
            if path is not None:
                check_output_path(path, self._inputs())
        jobs: list = []
        try:
            for make in makers:
                jobs.append(make())
        except BaseException:
            for job in jobs:
                job[2]()
            raise
        return jobs

    def to_fits(self, path, *, combined_path=None, **compute_kwargs) -> list[Path]:
        """Write the product (and optionally the combined background) as FITS files.

        Parameters
        ----------
        path : path-like
            Output file of the subtracted product.
        combined_path : path-like, optional
            Output file of the combined background (SCI, DQ, ERR, NBKG).
        **compute_kwargs
            Passed to dask (e.g. ``scheduler="threads"``).

        Returns
        -------
        list of Path
            Files written.
        """
        return write_outputs(self.fits_jobs(path, combined_path), **compute_kwargs)

    def to_zarr(self, path, *, combined_path=None, shards: bool = False,
                **compute_kwargs) -> list[Path]:
        """Write the product (and optionally the combined background) as zarr v3 groups."""
        return write_outputs(self.zarr_jobs(path, combined_path, shards=shards), **compute_kwargs)
