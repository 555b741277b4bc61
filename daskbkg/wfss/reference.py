"""The WFSS background reference image (CRDS type ``wfssbkg``), read lazily.

The file holds SCI (float32), DQ (uint32) and a ``DQ_DEF`` table; ERR is ignored
(algorithm page W.1). Its DQ is translated to the standard JWST bit values **by flag name**
through ``DQ_DEF``, as the reference's data model does on opening: for every ``DQ_DEF`` row
whose NAME is a standard flag, pixels with any bit of the row's VALUE get that standard
value; rows with unknown names are ignored. Without a ``DQ_DEF`` table the DQ is used as is
(for files that use the standard bits the translation is the identity).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..io.fitsarray import normalize_key
from .errors import WfssFileNotFoundError, WfssKeywordError, WfssShapeError

__all__ = ["STANDARD_DQ_FLAGS", "ReferenceImage", "WindowView", "read_reference_image",
           "translate_dq", "dq_map_from_table"]

log = logging.getLogger("daskbkg")

_FLAG_NAMES = (
    "DO_NOT_USE SATURATED JUMP_DET DROPOUT OUTLIER PERSISTENCE AD_FLOOR CHARGELOSS "
    "UNRELIABLE_ERROR NON_SCIENCE DEAD HOT WARM LOW_QE RC TELEGRAPH NONLINEAR BAD_REF_PIXEL "
    "NO_FLAT_FIELD NO_GAIN_VALUE NO_LIN_CORR NO_SAT_CHECK UNRELIABLE_BIAS UNRELIABLE_DARK "
    "UNRELIABLE_SLOPE UNRELIABLE_FLAT OPEN ADJ_OPEN FLUX_ESTIMATED MSA_FAILED_OPEN "
    "OTHER_BAD_PIXEL REFERENCE_PIXEL"
).split()
#: Standard JWST DQ mnemonics and their values (algorithm page C.1).
STANDARD_DQ_FLAGS = {"GOOD": 0, **{name: 1 << bit for bit, name in enumerate(_FLAG_NAMES)}}


@dataclass(frozen=True)
class WindowView:
    """Picklable lazy view of a 2-D window of another lazy array (e.g. a FitsArray).

    Indexing reads only the requested part of the window from ``base``.
    """

    base: Any
    y0: int
    x0: int
    shape: tuple[int, int]

    @property
    def dtype(self) -> np.dtype:
        """Dtype of the base array."""
        return self.base.dtype

    @property
    def ndim(self) -> int:
        """Always 2."""
        return 2

    def __getitem__(self, key) -> np.ndarray:
        slices, drop = normalize_key(key, self.shape)
        (ys, xs) = slices
        out = self.base[self.y0 + ys.start:self.y0 + ys.stop, self.x0 + xs.start:self.x0 + xs.stop]
        if drop:
            out = out.reshape(tuple(n for i, n in enumerate(out.shape) if i not in drop))
        return out


@dataclass(frozen=True)
class ReferenceImage:
    """A background reference image opened lazily.

    Attributes
    ----------
    path : str
    sci : lazy array
        SCI reader (FitsArray or :class:`WindowView`), float32.
    dq : lazy array or None
        DQ reader (uint32), None when the file has no DQ (treated as zeros).
    dq_map : tuple of (int, int) or None
        ``(file bit value, standard value)`` pairs from ``DQ_DEF``; None = identity.
    identity : tuple
        ``(path, size, mtime_ns)`` of the file (for graph tokens).
    """

    path: str
    sci: Any
    dq: Any
    dq_map: tuple | None
    identity: tuple

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the (possibly cut) SCI image."""
        return tuple(self.sci.shape)

    def read_sci(self) -> np.ndarray:
        """Read the whole SCI plane (float32, native byte order)."""
        return np.asarray(self.sci[...], dtype=np.float32)

    def read_dq(self) -> np.ndarray:
        """Read the whole DQ plane, translated to standard bits (uint32)."""
        if self.dq is None:
            return np.zeros(self.shape, dtype=np.uint32)
        return translate_dq(self.dq[...], self.dq_map)

    def cut(self, window: tuple[int, int, int, int]) -> "ReferenceImage":
        """Cut the reference at a 1-based window ``(xstart, ystart, xsize, ysize)``.

        Raises
        ------
        WfssShapeError
            The window does not lie inside the reference image.
        """
        xs, ys, nx, ny = (int(v) for v in window)
        full_ny, full_nx = self.shape
        if xs < 1 or ys < 1 or xs - 1 + nx > full_nx or ys - 1 + ny > full_ny:
            raise WfssShapeError(
                f"{self.path}: the target window (SUBSTRT {xs},{ys}, SUBSIZE {nx},{ny}) does "
                f"not fit in the reference image of shape {self.shape}"
            )
        sci = WindowView(self.sci, ys - 1, xs - 1, (ny, nx))
        dq = None if self.dq is None else WindowView(self.dq, ys - 1, xs - 1, (ny, nx))
        return replace(self, sci=sci, dq=dq, identity=self.identity + (tuple(window),))


def dq_map_from_table(names, values) -> tuple:
    """``(file value, standard value)`` pairs for the ``DQ_DEF`` rows with standard names."""
    pairs = []
    for name, value in zip(names, values):
        key = str(name).strip()
        standard = STANDARD_DQ_FLAGS.get(key)
        if standard is None:
            log.warning("DQ_DEF flag name %r is not a standard DQ mnemonic; ignored", key)
            continue
        pairs.append((int(value), int(standard)))
    return tuple(pairs)


def translate_dq(dq: np.ndarray, dq_map: tuple | None) -> np.ndarray:
    """Translate DQ values to standard bits through ``dq_map`` (None = identity)."""
    dq = np.asarray(dq, dtype=np.uint32)
    if dq_map is None:
        return dq
    out = np.zeros(dq.shape, dtype=np.uint32)
    for value, standard in dq_map:
        if value and standard:
            out[(dq & np.uint32(value)) != 0] |= np.uint32(standard)
    return out


def _read_dq_def(path: str, layout) -> tuple | None:
    hdu = layout.find("DQ_DEF")
    if hdu is None or hdu.is_image:
        return None
    from astropy.io import fits

    with fits.open(path, memmap=False) as hdul:
        data = hdul[hdu.index].data
        if data is None or len(data) == 0:
            return None
        columns = {c.upper(): c for c in data.columns.names}
        if "NAME" not in columns or "VALUE" not in columns:
            return None
        return dq_map_from_table(list(data[columns["NAME"]]), list(data[columns["VALUE"]]))


def read_reference_image(path: str | os.PathLike) -> ReferenceImage:
    """Open a WFSS background reference image lazily (headers and DQ_DEF only).

    Raises
    ------
    WfssFileNotFoundError
        The file does not exist (``FileNotFoundError``).
    daskbkg.errors.NotFitsError
        Not a FITS file.
    WfssShapeError
        No 2-D SCI image, or a DQ of another shape.
    """
    from ..io.layout import scan_fits

    if not os.path.isfile(path):
        raise WfssFileNotFoundError(f"{path}: WFSS background reference file not found")
    layout = scan_fits(path)
    try:
        sci = layout.array("SCI")
    except KeyError:
        raise WfssShapeError(f"{layout.path}: the background reference has no SCI image") \
            from None
    if len(sci.shape) != 2:
        raise WfssShapeError(f"{layout.path}: the background reference SCI must be 2-D, not "
                             f"{len(sci.shape)}-D")
    try:
        dq = layout.array("DQ")
    except KeyError:
        dq = None
    if dq is not None and dq.shape != sci.shape:
        raise WfssShapeError(f"{layout.path}: reference DQ shape {dq.shape} differs from SCI "
                             f"shape {sci.shape}")
    dq_map = _read_dq_def(layout.path, layout)
    return ReferenceImage(path=layout.path, sci=sci, dq=dq, dq_map=dq_map,
                          identity=(layout.path, layout.size, layout.mtime_ns))


def target_window(header, path) -> tuple[int, int, int, int]:
    """1-based ``(SUBSTRT1, SUBSTRT2, SUBSIZE1, SUBSIZE2)`` of a target (for cutting)."""
    values = [header.get(k) for k in ("SUBSTRT1", "SUBSTRT2", "SUBSIZE1", "SUBSIZE2")]
    if any(v is None for v in values):
        raise WfssKeywordError(f"{path}: SUBSTRT1/2 and SUBSIZE1/2 are needed to cut the "
                               "full-frame background reference at the target's window")
    return tuple(int(v) for v in values)
