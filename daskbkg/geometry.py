"""Detector windows of subarrays and where a background's overlap lands in the target.

The rules reproduce the reference step (algorithm page A.3 to A.6):
windows come only from ``SUBSTRT``/``SUBSIZE`` (with full-frame fallbacks), overlap is
strict, and by default the overlap cutout is copied to the target's origin (the
reference's placement quirk). ``subarray_placement="aligned"`` corrects that.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import DimensionError, GeometryError
from .io.exposure import ExposureMeta
from .options import ReferenceCompat

__all__ = ["Window", "window_for", "Placement", "place_background", "fallback_window"]

_FULL_FRAMES = {"MIRI": (1024, 1032)}
_DEFAULT_FULL = (2048, 2048)


@dataclass(frozen=True)
class Window:
    """A detector window, 0-based, half-open: rows [jmin, jmax), columns [imin, imax)."""

    imin: int
    imax: int
    jmin: int
    jmax: int

    @classmethod
    def from_keywords(cls, xstart: int, ystart: int, xsize: int, ysize: int) -> "Window":
        """Window from 1-based FITS ``SUBSTRT1/2`` and ``SUBSIZE1/2`` values."""
        return cls(imin=xstart - 1, imax=xstart - 1 + xsize, jmin=ystart - 1, jmax=ystart - 1 + ysize)

    def overlaps(self, other: "Window") -> bool:
        """True unless the windows are disjoint or only touch at an edge."""
        return not (
            other.imax <= self.imin
            or self.imax <= other.imin
            or other.jmax <= self.jmin
            or self.jmax <= other.jmin
        )


def fallback_window(meta: ExposureMeta, shape: tuple[int, ...], path: str) -> tuple[int, int, int, int] | None:
    """Full-frame keyword values used when a window keyword is missing.

    Returns ``None`` when all four keywords are present, else ``(xstart, ystart, xsize,
    ysize)``.

    Raises
    ------
    AttributeError
        ``INSTRUME`` is missing too (as in the reference).
    GeometryError
        The array is not a full frame of its instrument.
    """
    keys = (meta.substrt1, meta.substrt2, meta.subsize1, meta.subsize2)
    if all(k is not None for k in keys):
        return None
    if meta.instrument is None:
        raise AttributeError(
            f"{path}: SUBSTRT/SUBSIZE keywords and INSTRUME are missing; cannot infer the window"
        )
    full = _FULL_FRAMES.get(meta.instrument.upper(), _DEFAULT_FULL)
    if tuple(shape[-2:]) != full:
        raise GeometryError(
            f"{path}: SUBSTRT/SUBSIZE keywords missing and the {shape[-2]}x{shape[-1]} array is "
            f"not a {meta.instrument} full frame ({full[0]}x{full[1]})"
        )
    return (1, 1, full[1], full[0])


def window_for(meta: ExposureMeta, shape: tuple[int, ...], path: str) -> Window:
    """Detector window of an exposure, from its keywords or the full-frame fallback."""
    fallback = fallback_window(meta, shape, path)
    if fallback is not None:
        return Window.from_keywords(*fallback)
    return Window.from_keywords(meta.substrt1, meta.substrt2, meta.subsize1, meta.subsize2)


@dataclass(frozen=True)
class Placement:
    """How a background's overlap cutout maps into the target-shaped array.

    ``dest`` gives per output axis the half-open range written; ``src`` gives per output
    axis the source range read (same length as ``dest`` unless ``broadcast`` is set for
    that axis, in which case the single source element is replicated).
    """

    out_shape: tuple[int, ...]
    dest: tuple[tuple[int, int], ...]
    src: tuple[tuple[int, int], ...]
    broadcast: tuple[bool, ...]


def _slice_extent(start: int, stop: int, size: int) -> tuple[int, int]:
    """Clamp a non-negative slice to an axis of ``size`` the way NumPy does."""
    start = min(max(start, 0), size)
    stop = min(max(stop, start), size)
    return start, stop


def place_background(
    target_window: Window,
    target_shape: tuple[int, ...],
    bkg_window: Window,
    bkg_shape: tuple[int, ...],
    compat: ReferenceCompat,
    bkg_path: str = "background",
) -> Placement | None:
    """Compute where a background's overlap lands in the target-shaped array.

    Parameters
    ----------
    target_window, bkg_window : Window
        Detector windows of the target and the background.
    target_shape, bkg_shape : tuple of int
        Array shapes (2-D or 3-D).
    compat : ReferenceCompat
        ``subarray_placement`` and ``rateints_geometry`` are used.
    bkg_path : str
        Name used in error messages.

    Returns
    -------
    Placement or None
        None when the windows do not overlap (no pixel is read then).

    Raises
    ------
    GeometryError (a ValueError)
        The cutout cannot be broadcast into the target array, as in the reference
        (2-D target with 3-D background, rateints width not in {nx, 1}, more background
        integrations than target integrations).
    DimensionError (an IndexError)
        3-D target with a 2-D background.
    """
    t, b = target_window, bkg_window
    if not t.overlaps(b):
        return None
    i0, i1 = max(t.imin, b.imin), min(t.imax, b.imax)
    j0, j1 = max(t.jmin, b.jmin), min(t.jmax, b.jmax)
    # Cutout in background array coordinates, clamped by the real array extent.
    rows = _slice_extent(j0 - b.jmin, j1 - b.jmin, bkg_shape[-2])
    cols = _slice_extent(i0 - b.imin, i1 - b.imin, bkg_shape[-1])
    h, w = rows[1] - rows[0], cols[1] - cols[0]
    aligned = compat.subarray_placement == "aligned"
    r_off = j0 - t.jmin if aligned else 0
    c_off = i0 - t.imin if aligned else 0
    target_3d, bkg_3d = len(target_shape) == 3, len(bkg_shape) == 3
    if target_3d and not bkg_3d:
        raise DimensionError(
            f"{bkg_path}: 2-D background cannot be combined with a 3-D (rateints) target"
        )
    if not target_3d and bkg_3d:
        raise GeometryError(
            f"{bkg_path}: 3-D background {bkg_shape} cannot be combined with a 2-D (rate) target"
        )
    ny, nx = target_shape[-2:]
    if not target_3d:
        out_shape = (ny, nx)
        value = (h, w)
        dest = (_slice_extent(r_off, r_off + h, ny), _slice_extent(c_off, c_off + w, nx))
        src = (rows, cols)
    elif compat.rateints_geometry == "jwst-3.0":
        nb = bkg_shape[0]
        out_shape = (nb, ny, nx)
        value = (nb, h, w)
        dest = ((0, nb), _slice_extent(r_off, r_off + h, ny), _slice_extent(c_off, c_off + w, nx))
        src = ((0, nb), rows, cols)
    else:
        # jwst 1.13: P[0:nints_B, 0:h, :] = cutout, the column axis is not sliced.
        nt, nb = target_shape[0], bkg_shape[0]
        out_shape = (nt, ny, nx)
        value = (nb, h, w)
        dest = (_slice_extent(0, nb, nt), _slice_extent(r_off, r_off + h, ny), (0, nx))
        src = ((0, nb), rows, cols)
    broadcast = []
    for axis, (v, (d0, d1)) in enumerate(zip(value, dest)):
        d = d1 - d0
        if v == d:
            broadcast.append(False)
        elif v == 1:
            broadcast.append(True)
        else:
            what = ("integrations", "rows", "columns")[axis - len(value) + 3]
            raise GeometryError(
                f"{bkg_path}: could not broadcast the background overlap {value} into the "
                f"target region {tuple(e - s for s, e in dest)} ({what} differ), as in the "
                "reference; see the rateints_geometry option"
            )
    return Placement(out_shape=out_shape, dest=dest, src=src, broadcast=tuple(broadcast))
