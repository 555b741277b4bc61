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


def write_outputs(jobs: list, **compute_kwargs) -> list[Path]:
    """Write several deferred outputs in one computation, then rename them all.

    ``jobs`` are :class:`~daskbkg.io.writejob.WriteJob` objects; on failure every
    temporary output is removed.
    """
    from .io.writejob import run_write_jobs

    return run_write_jobs(jobs, **compute_kwargs)


def _finalize_computed(results, status: str, finals: list) -> ComputedResult:
    """Turn the computed blocks of every output array into a :class:`ComputedResult`."""
    values = [func(parts, *args) for parts, (func, args) in zip(results, finals)]
    combined = None
    if len(values) > 3:
        combined = dict(zip(("SCI", "ERR", "DQ", "NBKG"), values[3:]))
    return ComputedResult(sci=values[0], err=values[1], dq=values[2], status=status,
                          combined=combined)


class BackgroundResult:
    """Lazy outcome of :func:`daskbkg.subtract_background` for one target.

    Nothing is read from the inputs until :meth:`compute`, :meth:`to_fits` or
    :meth:`to_zarr` is called. The result is a dask collection: ``dask.compute(result)``
    gives a :class:`ComputedResult`, ``dask.persist(result)`` and :meth:`persist` give a
    result whose arrays are held in memory (or on the cluster), and :meth:`visualize`
    draws the task graph. :meth:`to_xarray` gives a lazy ``xarray.Dataset``.
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

    def arrays(self) -> dict[str, Any]:
        """Every lazy output by name: sci, err, dq, then the combined background's arrays.

        The combined background's arrays are named ``combined_sci``, ``combined_err``,
        ``combined_dq`` and ``nbkg`` (see :mod:`daskbkg.xarray_view` for the convention).
        """
        out = {"sci": self.sci, "err": self.err, "dq": self.dq}
        comb = self.combined_background
        if comb is not None:
            out.update({("nbkg" if name == "NBKG" else f"combined_{name.lower()}"): data
                        for name, data in comb.arrays.items()})
        return out

    # -- notebook and console display --------------------------------------------------
    def _summary(self) -> list[tuple[str, str]]:
        comb = self.combined_background
        return [
            ("target", self.product.target.name),
            ("status", self.status),
            ("backgrounds", str(len(comb.backgrounds) if comb is not None else 0)),
            ("tasks", str(len(self.__dask_graph__()))),
        ]

    def __repr__(self) -> str:
        return (f"BackgroundResult(target={self.product.target.name!r}, status={self.status!r}, "
                f"shape={tuple(self.sci.shape)}, backgrounds="
                f"{len(self.combined_background.backgrounds) if self.combined_background else 0})")

    def _repr_html_(self) -> str:
        from html import escape

        rows = "".join(f"<tr><th style='text-align:left'>{escape(k)}</th><td>{escape(v)}</td></tr>"
                       for k, v in self._summary())
        arrays = "".join(
            f"<tr><td>{escape(name)}</td><td>{escape(str(tuple(a.shape)))}</td>"
            f"<td>{escape(str(a.dtype))}</td><td>{escape(str(a.chunksize))}</td></tr>"
            for name, a in self.arrays().items())
        return ("<div><strong>daskbkg.BackgroundResult</strong> (lazy)"
                f"<table>{rows}</table><table><tr><th>array</th><th>shape</th><th>dtype</th>"
                f"<th>chunk</th></tr>{arrays}</table></div>")

    # -- dask collection protocol ------------------------------------------------------
    def __dask_graph__(self):
        from dask.highlevelgraph import HighLevelGraph

        return HighLevelGraph.merge(*(a.__dask_graph__() for a in self.arrays().values()))

    def __dask_keys__(self) -> list:
        return [a.__dask_keys__() for a in self.arrays().values()]

    def __dask_layers__(self) -> tuple:
        return tuple(layer for a in self.arrays().values() for layer in a.__dask_layers__())

    def __dask_tokenize__(self):
        return ("daskbkg.BackgroundResult", self.status,
                tuple(a.name for a in self.arrays().values()))

    def __dask_optimize__(self, dsk, keys, **kwargs):
        """dask.array's optimisation, keeping every output of this result as a key.

        Some outputs feed others (the combined background feeds the subtraction), and
        dask may ask for the finalising key only: without this, blockwise fusion would
        merge those outputs into their consumers and the finaliser would miss them.
        """
        import dask.array as da
        from dask.core import flatten

        wanted = list(flatten(keys)) + list(flatten(self.__dask_keys__()))
        return da.Array.__dask_optimize__(dsk, wanted, **kwargs)

    @staticmethod
    def __dask_scheduler__(dsk, keys, **kwargs):
        import dask.array as da

        return da.Array.__dask_scheduler__(dsk, keys, **kwargs)

    def __dask_postcompute__(self):
        finals = [a.__dask_postcompute__() for a in self.arrays().values()]
        return _finalize_computed, (self.status, finals)

    def __dask_postpersist__(self):
        rebuilds = [a.__dask_postpersist__() for a in self.arrays().values()]
        return self._rebuild, (rebuilds,)

    def _rebuild(self, dsk, rebuilds, *, rename=None) -> "BackgroundResult":
        import dataclasses

        arrays = [func(dsk, *args, rename=rename) for func, args in rebuilds]
        product = dataclasses.replace(self.product, sci=arrays[0], err=arrays[1], dq=arrays[2])
        if self.product.combined is not None:
            combined = dataclasses.replace(self.product.combined, sci=arrays[3], err=arrays[4],
                                           dq=arrays[5], nbkg=arrays[6])
            product = dataclasses.replace(product, combined=combined)
        return BackgroundResult(product)

    # -- computing ---------------------------------------------------------------------
    def compute(self, **compute_kwargs) -> ComputedResult:
        """Compute every output (and the combined background) in one pass."""
        import dask

        return dask.compute(self, **compute_kwargs)[0]

    def persist(self, **compute_kwargs) -> "BackgroundResult":
        """Compute the arrays and keep them in memory (or on the cluster), still lazy-looking."""
        import dask

        return dask.persist(self, **compute_kwargs)[0]

    def visualize(self, filename: str = "daskbkg-result", format: str | None = None,
                  **kwargs):
        """Draw the task graph with :func:`dask.visualize` (needs graphviz)."""
        import dask

        return dask.visualize(self, filename=filename, format=format, **kwargs)

    def to_xarray(self):
        """The outputs as a lazy ``xarray.Dataset`` (needs the ``daskbkg[xarray]`` extra).

        See :func:`daskbkg.xarray_view.result_dataset`.
        """
        from .xarray_view import result_dataset

        return result_dataset(self)

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
                job.abort()
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
