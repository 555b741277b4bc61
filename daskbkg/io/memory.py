"""Exposures already in memory: ``astropy.io.fits.HDUList`` objects and JWST datamodels.

An in-memory exposure is an ordinary :class:`~daskbkg.io.exposure.Exposure`:

* its ``layout`` describes the FITS serialisation of the object (headers and byte
  offsets), kept in fsspec's in-process ``memory://`` file system under a name derived
  from the content's SHA-256, so task keys are deterministic and a product still copies
  every other HDU (ERR, VAR_*, ASDF, ...) byte for byte;
* its ``sci``, ``err`` and ``dq`` are :class:`MemoryArray` objects holding native NumPy
  copies of the serialised values, so tasks carry their data with them and run on any
  scheduler (threads, processes, a distributed cluster).

Other image extensions (VAR_POISSON, ...) are read through the ``memory://`` layout, which
lives in the process that opened the input: a zarr product of an in-memory target, which
copies those extensions as arrays, is written with a threaded (or in-process
distributed) scheduler. FITS products copy them in the calling process and work with
any scheduler.

Datamodels are recognised by duck typing (a ``to_fits`` method and a ``meta``
attribute): stdatamodels is never imported here. The serialised bytes are dropped from
the memory file system when the last exposure made from them is garbage collected.
"""

from __future__ import annotations

import hashlib
import io
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .fitsarray import LazyArrayBase, normalize_key

__all__ = ["MemoryArray", "is_hdulist", "is_datamodel", "exposure_from_hdulist",
           "exposure_from_datamodel", "MEMORY_ROOT"]

#: Folder of the serialised in-memory inputs in fsspec's memory file system.
MEMORY_ROOT = "memory://daskbkg-inputs"

_lock = threading.Lock()
_users: dict[str, int] = {}


@dataclass(frozen=True, eq=False)
class MemoryArray(LazyArrayBase):
    """A NumPy array behind the lazy-array interface of :class:`~daskbkg.io.FitsArray`."""

    data: np.ndarray = field(repr=False)
    shape: tuple[int, ...]
    dtype_name: str

    @classmethod
    def of(cls, data: np.ndarray) -> "MemoryArray":
        """Wrap a native-endian, C-contiguous copy of ``data``."""
        array = np.ascontiguousarray(data)
        native = array.dtype.newbyteorder("=")
        array = array.astype(native, copy=True)
        array.setflags(write=False)
        return cls(data=array, shape=tuple(array.shape), dtype_name=native.name)

    @property
    def nbytes(self) -> int:
        """Size of the array in memory."""
        return self.data.nbytes

    def __getitem__(self, key: Any) -> np.ndarray:
        slices, drop = normalize_key(key, self.shape)
        out = np.array(self.data[slices])
        return out.squeeze(axis=drop) if drop else out

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return self.data.copy() if dtype is None else self.data.astype(dtype)

    def read_into(self, slices: tuple[slice, ...], out: np.ndarray) -> None:
        """Copy the region ``slices`` into ``out`` (shaped like the region)."""
        np.copyto(out, self.data[slices], casting="unsafe")


def is_hdulist(item: Any) -> bool:
    """True for an ``astropy.io.fits.HDUList``."""
    from astropy.io import fits

    return isinstance(item, fits.HDUList)


def is_datamodel(item: Any) -> bool:
    """True for an object that looks like a JWST datamodel (``to_fits`` and ``meta``)."""
    return callable(getattr(item, "to_fits", None)) and hasattr(item, "meta") \
        and hasattr(item, "data")


def _release(path: str) -> None:
    import fsspec

    with _lock:
        _users[path] -= 1
        if _users[path]:
            return
        del _users[path]
    fs = fsspec.filesystem("memory")
    if fs.exists(path):
        fs.rm(path)


def _exposure_from_bytes(raw: bytes, name: str):
    """Keep ``raw`` (a FITS file) in the memory file system and open it as an Exposure."""
    import fsspec
    from astropy.io import fits

    from .exposure import Exposure, read_exposure

    digest = hashlib.sha256(raw).hexdigest()[:32]
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name) or "exposure.fits"
    url = f"{MEMORY_ROOT}/{digest}/{safe}"
    fs = fsspec.filesystem("memory")
    with _lock:
        if not fs.exists(url):
            fs.pipe_file(url, raw)
        _users[url] = _users.get(url, 0) + 1
    try:
        opened = read_exposure(url)
        arrays = {}
        with fits.open(io.BytesIO(raw), memmap=False) as hdul:
            for ext in ("sci", "err", "dq"):
                arrays[ext] = MemoryArray.of(hdul[ext.upper()].data)
    except BaseException:
        _release(url)
        raise
    for ext, reader in arrays.items():
        expected = getattr(opened, ext)
        assert reader.shape == expected.shape and reader.dtype == expected.dtype, ext
    exposure = Exposure(layout=opened.layout, meta=opened.meta, **arrays)
    weakref.finalize(exposure, _release, url)
    return exposure


def exposure_from_hdulist(hdulist: Any, name: str | None = None):
    """Exposure over an ``HDUList`` in memory (the object itself is not modified).

    Parameters
    ----------
    hdulist : astropy.io.fits.HDUList
        JWST data-model layout: PRIMARY, SCI, ERR, DQ and any other extensions.
    name : str, optional
        File name used for messages and output names; default the file the list was
        read from, else the PRIMARY ``FILENAME`` keyword, else ``hdulist.fits``.

    Returns
    -------
    Exposure
    """
    import os

    if name is None:
        source = hdulist.filename() if hasattr(hdulist, "filename") else None
        name = os.path.basename(source) if source else None
    if name is None and len(hdulist):
        name = hdulist[0].header.get("FILENAME")
    buffer = io.BytesIO()
    hdulist.writeto(buffer, output_verify="silentfix")
    return _exposure_from_bytes(buffer.getvalue(), str(name or "hdulist.fits"))


def exposure_from_datamodel(model: Any, name: str | None = None):
    """Exposure over a JWST datamodel in memory (serialised with its own ``to_fits``).

    Parameters
    ----------
    model : stdatamodels DataModel
        ImageModel, CubeModel, IFUImageModel, ... with ``data``, ``err`` and ``dq``.
    name : str, optional
        Default ``model.meta.filename``, else ``datamodel.fits``.

    Returns
    -------
    Exposure
    """
    if name is None:
        name = getattr(getattr(model, "meta", None), "filename", None)
    buffer = io.BytesIO()
    model.to_fits(buffer)
    return _exposure_from_bytes(_with_default_arrays(buffer.getvalue()),
                                str(name or "datamodel.fits"))


def _with_default_arrays(raw: bytes) -> bytes:
    """Add the ERR and DQ a datamodel leaves out until first use (its defaults: zeros).

    A new model (``ImageModel((ny, nx))``) serialises only the arrays that were set; the
    reference reads the others as their schema defaults, zero ERR and zero DQ.
    """
    from astropy.io import fits

    with fits.open(io.BytesIO(raw), memmap=False) as hdul:
        names = {hdu.name for hdu in hdul}
        missing = [n for n in ("ERR", "DQ") if n not in names]
        if not missing or "SCI" not in names:
            return raw
        shape = hdul["SCI"].shape
        for extname in missing:
            dtype = np.uint32 if extname == "DQ" else np.float32
            hdul.append(fits.ImageHDU(np.zeros(shape, dtype=dtype), name=extname))
        buffer = io.BytesIO()
        hdul.writeto(buffer)
    return buffer.getvalue()
