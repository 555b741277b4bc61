"""Write products as zarr v3 groups, streamed from dask, atomically.

Layout of one product group::

    <root>_bkgsub.zarr/
        sci, err, dq            the output arrays (float32, float32, uint32)
        var_poisson, ...        other image extensions of the target, copied
        hdu_asdf, hdu_int_times raw FITS bytes (uint8) of non-image extensions
        attrs: "daskbkg" (version, status, parameters, options, inputs) and
               "fits_headers" (every HDU's header as [keyword, value, comment] cards)

Every array carries zarr v3 ``dimension_names`` (``y, x`` or ``integration, y, x``; see
:mod:`daskbkg.xarray_view` for the naming convention) and the group has consolidated
metadata, so ``xarray.open_zarr`` opens a product directly.

Zarr chunks equal the dask chunks; when shards are requested every dask chunk is exactly
one shard (asserted), because unaligned shard writes silently lose data.

Local groups are written under a temporary name and renamed into place. Object stores
(``s3://...`` and other fsspec URLs) cannot rename, so a group is written in place and
its attribute ``complete`` is set to true only after every array was stored; a failed
write removes the prefix. The group attribute ``complete`` is set in both cases.
"""

from __future__ import annotations

import math
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from .writejob import WriteJob, run_write_jobs

__all__ = ["header_cards", "write_zarr_group", "ZarrArraySpec"]


def _jsonable(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return _jsonable(float(value))
    return str(value)


def header_cards(header: Any) -> list[list]:
    """A FITS header as a JSON-friendly list of [keyword, value, comment] cards."""
    return [[c.keyword, _jsonable(c.value), c.comment] for c in header.cards]


class _DiskFullGuard:
    """Store target that reports ENOSPC/EDQUOT from zarr as a DiskFullError naming ``path``."""

    def __init__(self, array: Any, path: str):
        self.array = array
        self.path = path
        self.shape = array.shape
        self.dtype = array.dtype
        self.ndim = len(array.shape)

    def __setitem__(self, key, value) -> None:
        from .fits_writer import disk_full_error

        try:
            self.array[key] = value
        except OSError as exc:
            full = disk_full_error(exc, self.path)
            if full is None:
                raise
            raise full from exc


class ZarrArraySpec:
    """One array to write: name, data (dask or NumPy), attributes and dimension names.

    Without ``dims`` the array gets the names of :func:`daskbkg.xarray_view.dims_for`
    (``y, x`` or ``integration, y, x``).
    """

    def __init__(self, name: str, data: Any, attrs: dict | None = None,
                 dims: tuple[str, ...] | None = None):
        self.name = name
        self.data = data
        self.attrs = attrs or {}
        self.dims = dims


def _rechunk_for_zarr(data: Any):
    import dask.array as da

    if not isinstance(data, da.Array):
        data = da.from_array(np.asarray(data), chunks=-1)
    # Zarr needs regular chunks: every chunk but the last of each axis equal.
    regular = tuple(c[0] for c in data.chunks)
    if any(any(n != c[0] for n in c[:-1]) for c in data.chunks):
        data = data.rechunk(regular)
    return data, regular


def _consolidate(path: str) -> None:
    """Gather every array's metadata into the group's ``zarr.json`` (one read to open)."""
    import warnings

    import zarr

    with warnings.catch_warnings():
        # zarr warns that consolidated metadata is not yet part of the v3 specification;
        # zarr-python and xarray read it all the same.
        warnings.simplefilter("ignore", UserWarning)
        zarr.consolidate_metadata(path, zarr_format=3)


def write_zarr_group(path: str | os.PathLike, arrays: list[ZarrArraySpec], attrs: dict, *,
                     shards: bool = False, compute: bool = True, **compute_kwargs):
    """Write a zarr v3 group holding ``arrays`` with group attributes ``attrs``.

    Parameters
    ----------
    path : path-like
        Destination folder (``*.zarr``); replaced only when complete.
    arrays : list of ZarrArraySpec
    attrs : dict
        JSON-serialisable group attributes.
    shards : bool
        Store every dask chunk as one shard (inner chunks of at most 256x256).
    compute : bool
        If False return a :class:`~daskbkg.io.writejob.WriteJob`, like
        :func:`daskbkg.io.fits_writer.write_fits`.
    """
    import zarr

    from ..xarray_view import dims_for
    from .source import is_url, remove_tree

    remote = is_url(path)
    if remote:
        # Object stores cannot rename: write in place, mark completion last (see below).
        path = os.fspath(path)
        tmp = path
    else:
        path = Path(path)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    pending = []
    try:
        group = zarr.open_group(str(tmp), mode="w", zarr_format=3)
        group.attrs.update(attrs)
        for spec in arrays:
            data, chunks = _rechunk_for_zarr(spec.data)
            kwargs: dict = {"chunks": chunks}
            if shards and data.ndim >= 2:
                inner = tuple(chunks[:-2]) + tuple(min(256, c) for c in chunks[-2:])
                if all(c % i == 0 for c, i in zip(chunks, inner)):
                    kwargs = {"chunks": inner, "shards": chunks}
            dims = spec.dims if spec.dims is not None else dims_for(data.ndim)
            target = group.create_array(spec.name, shape=data.shape, dtype=data.dtype,
                                        fill_value=0, dimension_names=dims, **kwargs)
            if "shards" in kwargs:
                assert all(all(n == s for n in c[:-1]) and c[-1] <= s
                           for c, s in zip(data.chunks, kwargs["shards"])), "dask chunks must equal shards"
            target.attrs.update(spec.attrs)
            pending.append((data, _DiskFullGuard(target, str(path))))
    except BaseException as exc:
        remove_tree(tmp) if remote else shutil.rmtree(tmp, ignore_errors=True)
        from .fits_writer import disk_full_error

        full = disk_full_error(exc, path)
        if full is not None:
            raise full from exc
        raise

    def finalize():
        done = zarr.open_group(str(tmp), mode="r+", zarr_format=3)
        done.attrs["complete"] = True  # written last: readers can trust a complete group
        _consolidate(str(tmp))
        if remote:
            return path
        if path.exists():
            trash = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.old")
            os.replace(path, trash)
            os.replace(tmp, path)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, path)
        return path

    def abort() -> None:
        remove_tree(tmp) if remote else shutil.rmtree(tmp, ignore_errors=True)

    job = WriteJob(path, pending, finalize, abort)
    return job if not compute else run_write_jobs([job], **compute_kwargs)[0]
