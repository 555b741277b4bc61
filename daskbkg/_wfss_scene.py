"""A small synthetic WFSS scene for tests, demos and benchmarks (no grism WCS needed).

:func:`make_wfss_scene` writes, into one folder:

* a NIRCam WFSS target (``EXP_TYPE = NRC_WFSS``, F356W + GRISMR, ``DISPAXIS`` in the SCI
  header, ``SUBSTRT``/``SUBSIZE``, ``SCATFILE``, ``R_WAVRAN``): science = ``scale`` x the
  true background + dispersed sources inside their boxes + Gaussian noise, with NaN pixels
  flagged DO_NOT_USE (some also HOT), a few finite DO_NOT_USE pixels and a few
  zero-variance (ERR = 0) pixels;
* a background reference image (SCI, DQ, ERR and a ``DQ_DEF`` table; a NaN corner patch,
  random NaNs and WARM pixels), optionally with non-standard DQ bits that ``DQ_DEF``
  translates;
* an analytic box table (``label, order, xmin, xmax, ymin, ymax``) covering every source,
  so the box-table route replaces the grism WCS;
* a source catalog with the 11 required columns (fake sky corners) and a WAVELENGTHRANGE
  ASDF file, for the catalog-route error paths.

Everything is deterministic for a given seed. Files are written with
:func:`daskbkg.datasets.write_exposure`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._fitsmaker import write_exposure  # re-exported as daskbkg.datasets.write_exposure

__all__ = ["WfssScene", "make_wfss_scene", "write_source_catalog", "write_wavelengthrange",
           "append_dq_def"]

_DNU, _HOT, _WARM = 1, 1 << 11, 1 << 12
#: DQ_DEF rows of the reference: (bit, value, name) with standard values ...
_STANDARD_DQ_DEF = ((0, 1, "DO_NOT_USE"), (11, _HOT, "HOT"), (12, _WARM, "WARM"))
#: ... or with compact non-standard bits (translated by name; "SCENE_ONLY" is ignored).
_REMAPPED_DQ_DEF = ((0, 1, "DO_NOT_USE"), (1, 2, "WARM"), (2, 4, "HOT"), (3, 8, "SCENE_ONLY"))


@dataclass(frozen=True)
class WfssScene:
    """Files written by :func:`make_wfss_scene`.

    Attributes
    ----------
    outdir : pathlib.Path
    target, reference, boxes, catalog, wavelengthrange : pathlib.Path
        Target, background reference, box table (ECSV), source catalog and
        WAVELENGTHRANGE file.
    scale : float
        True scale of the reference in the science image.
    shape : (int, int)
        Target shape.
    n_boxes : int
        Rows of the box table.
    """

    outdir: Path
    target: Path
    reference: Path
    boxes: Path
    catalog: Path
    wavelengthrange: Path
    scale: float
    shape: tuple
    n_boxes: int


def write_wavelengthrange(path: os.PathLike | str, *, filter_name: str = "F356W",
                          orders=(1, 2), limits=(3.1, 4.0), exp_type: str = "NRC_WFSS") -> Path:
    """Write a minimal WAVELENGTHRANGE ASDF file for one filter."""
    import asdf

    tree = {
        "meta": {"exposure": {"type": exp_type}, "instrument": {"name": "NIRCAM"},
                 "reftype": "wavelengthrange", "description": "daskbkg synthetic"},
        "wavelengthrange": [[int(o), filter_name, float(limits[0]), float(limits[1])]
                            for o in orders],
        "extract_orders": [[filter_name, [int(o) for o in orders]]],
    }
    asdf.AsdfFile(tree).write_to(path)
    return Path(path)


def write_source_catalog(path: os.PathLike | str, labels, x, y, magnitudes, *,
                         half_size: float = 2.0, masked=None) -> Path:
    """Write an ECSV source catalog with the 11 columns the WFSS step requires.

    Sky positions are a fake linear map of the pixel positions (1e-5 degree per pixel).

    Parameters
    ----------
    path : path-like
    labels, x, y, magnitudes : array_like
        One value per object (``magnitudes`` may hold NaN).
    half_size : float
        Half size of the sky bounding box in pixels.
    masked : array_like of bool, optional
        Objects whose magnitude is written as masked.
    """
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from astropy.table import MaskedColumn, QTable

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)

    def sky(px, py):
        return SkyCoord(ra=(53.16 + 1e-5 * px) * u.deg, dec=(-27.79 + 1e-5 * py) * u.deg)

    table = QTable()
    table["label"] = np.asarray(labels, dtype=np.int64)
    table["xcentroid"] = x * u.pix
    table["ycentroid"] = y * u.pix
    table["sky_centroid"] = sky(x, y)
    mags = np.asarray(magnitudes, dtype=np.float64)
    table["isophotal_abmag"] = MaskedColumn(mags, mask=np.zeros(mags.shape, bool)
                                            if masked is None else np.asarray(masked, bool))
    table["isophotal_abmag_err"] = np.full(mags.shape, 0.05, dtype=np.float32)
    for name, dx, dy in (("ll", -1, -1), ("lr", 1, -1), ("ul", -1, 1), ("ur", 1, 1)):
        table[f"sky_bbox_{name}"] = sky(x + dx * half_size, y + dy * half_size)
    table["is_extended"] = np.zeros(mags.shape, dtype=bool)
    table.write(path, format="ascii.ecsv", overwrite=True)
    return Path(path)


def _true_background(ny: int, nx: int, level: float) -> np.ndarray:
    yy, xx = np.mgrid[0:ny, 0:nx]
    u, v = xx / max(nx - 1, 1) - 0.5, yy / max(ny - 1, 1) - 0.5
    return level * (1.0 + 0.08 * u - 0.05 * v + 0.04 * u * v
                    + 0.02 * np.sin(6.0 * u) * np.cos(4.0 * v))


def _draw_boxes(rng, ny: int, nx: int, n_sources: int, dispaxis: int) -> list[tuple]:
    """Analytic (label, order, xmin, xmax, ymin, ymax) boxes, some partly off the frame."""
    nd, nc = (nx, ny) if dispaxis == 1 else (ny, nx)
    boxes = []
    for k in range(n_sources):
        length = int(rng.uniform(0.2, 0.4) * nd)
        width = int(rng.integers(5, 12))
        d0 = int(rng.uniform(-0.15 * nd, nd - 0.7 * length))
        c0 = int(rng.uniform(-2, nc - width + 2))
        spans = [(1, d0, d0 + length - 1)]
        if k % 3 == 0:  # a shorter second order further along the dispersion
            spans.append((2, d0 + length // 2, d0 + length // 2 + length // 3))
        for order, dmin, dmax in spans:
            if dispaxis == 1:
                boxes.append((k + 1, order, dmin, dmax, c0, c0 + width - 1))
            else:
                boxes.append((k + 1, order, c0, c0 + width - 1, dmin, dmax))
    return boxes


def _add_spectra(image: np.ndarray, boxes, rng, flux: float, dispaxis: int) -> None:
    """Add a trace inside each box (and only there): Gaussian across, smooth along."""
    ny, nx = image.shape
    for _, order, xmin, xmax, ymin, ymax in boxes:
        x0, x1, y0, y1 = max(xmin, 0), min(xmax + 1, nx), max(ymin, 0), min(ymax + 1, ny)
        if x0 >= x1 or y0 >= y1:
            continue
        peak = flux * rng.uniform(0.2, 1.0) / order
        ys, xs = np.mgrid[y0:y1, x0:x1]
        if dispaxis == 1:
            across, centre, sig = ys, (ymin + ymax) / 2, (ymax - ymin + 1) / 6
            along = (xs - xmin) / max(xmax - xmin, 1)
        else:
            across, centre, sig = xs, (xmin + xmax) / 2, (xmax - xmin + 1) / 6
            along = (ys - ymin) / max(ymax - ymin, 1)
        image[y0:y1, x0:x1] += peak * np.exp(-0.5 * ((across - centre) / sig) ** 2) \
            * (0.6 + 0.4 * np.sin(np.pi * along))


def make_wfss_scene(outdir: os.PathLike | str, *, shape=(256, 256), scale: float = 0.42,
                    seed: int = 0, n_sources: int = 12, level: float = 1.0,
                    noise: float = 0.015, source_flux: float = 2.0, dispaxis: int = 1,
                    n_bad: int = 40, remap_dq: bool = False, window=None,
                    root: str = "jw01234001001_02101_00001_nrcalong",
                    overwrite: bool = False) -> WfssScene:
    """Write a synthetic WFSS scene: target, reference, box table, catalog, wavelengthrange.

    Parameters
    ----------
    outdir : path-like
        Output folder (created if needed).
    shape : (int, int)
        Full-frame ``(ny, nx)`` of the scene and of the reference image.
    scale : float
        True factor between the science background and the reference.
    seed : int
        Random seed (everything is deterministic for a given seed).
    n_sources : int
        Dispersed sources (every third one also gets an order-2 box).
    level, noise, source_flux : float
        Reference level, science noise sigma and largest trace peak.
    dispaxis : {1, 2}
        ``DISPAXIS`` (1 = dispersion along x).
    n_bad : int
        NaN/DO_NOT_USE pixels in the target (as many again in the reference).
    remap_dq : bool
        Give the reference non-standard DQ bits that its ``DQ_DEF`` translates.
    window : (int, int, int, int), optional
        1-based ``(xstart, ystart, xsize, ysize)``: write the target as this subarray of
        the scene (the reference stays full frame).
    root : str
        File-name root of the target (``<root>_rate.fits``).
    overwrite : bool
        Replace existing files.

    Returns
    -------
    WfssScene
    """
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    ny, nx = (int(n) for n in shape)
    rng = np.random.default_rng(seed)
    truth = _true_background(ny, nx, level)

    # Background reference: the true background with a little structure noise and defects.
    ref = (truth + rng.normal(0.0, 0.002 * level, (ny, nx))).astype(np.float32)
    ref_dq = np.zeros((ny, nx), dtype=np.uint32)
    patch = max(2, ny // 42)
    ref[:patch, :patch] = np.nan
    flat = rng.choice(ny * nx, size=2 * n_bad, replace=False)
    ref.flat[flat[:n_bad]] = np.nan
    codes = dict((name, value) for _, value, name in (_REMAPPED_DQ_DEF if remap_dq
                                                      else _STANDARD_DQ_DEF))
    ref_dq[np.isnan(ref)] = codes["DO_NOT_USE"]
    ref_dq.flat[flat[n_bad:]] |= np.uint32(codes["WARM"])
    if remap_dq:
        ref_dq.flat[flat[n_bad:n_bad + 5]] |= np.uint32(codes["SCENE_ONLY"])

    # Science: scaled true background + traces inside the boxes + noise.
    boxes = _draw_boxes(rng, ny, nx, n_sources, dispaxis)
    sources = np.zeros((ny, nx), dtype=np.float64)
    _add_spectra(sources, boxes, rng, source_flux, dispaxis)
    sci = (scale * truth + sources + rng.normal(0.0, noise, (ny, nx))).astype(np.float32)
    err = np.sqrt(noise ** 2 + 0.01 * sources).astype(np.float32)
    dq = np.zeros((ny, nx), dtype=np.uint32)
    bad = rng.choice(ny * nx, size=n_bad + 10, replace=False)
    nan_pix, finite_dnu, zero_var = bad[:n_bad], bad[n_bad:n_bad + 5], bad[n_bad + 5:]
    sci.flat[nan_pix] = np.nan
    err.flat[nan_pix] = np.nan
    dq.flat[nan_pix] = _DNU
    dq.flat[nan_pix[::3]] |= np.uint32(_HOT)
    dq.flat[finite_dnu] = _DNU
    err.flat[zero_var] = 0.0

    x_start, y_start, x_size, y_size = window if window is not None else (1, 1, nx, ny)
    cut = (slice(y_start - 1, y_start - 1 + y_size), slice(x_start - 1, x_start - 1 + x_size))
    labels = sorted({b[0] for b in boxes})
    first = {b[0]: b for b in reversed(boxes)}
    cat_name, wr_name = f"{root}_cat.ecsv", "synth_nircam_wavelengthrange.asdf"
    catalog = write_source_catalog(
        outdir / cat_name, labels, [(first[k][2] + first[k][3]) / 2 for k in labels],
        [(first[k][4] + first[k][5]) / 2 for k in labels],
        rng.uniform(19.0, 27.0, len(labels)))
    wavelengthrange = write_wavelengthrange(outdir / wr_name)
    primary = {"FILTER": "F356W", "PUPIL": "GRISMR", "DETECTOR": "NRCALONG",
               "SCATFILE": cat_name, "R_WAVRAN": wr_name}
    target = write_exposure(outdir / f"{root}_rate.fits", sci[cut], err[cut], dq[cut],
                            instrument="NIRCAM", exp_type="NRC_WFSS",
                            substrt=(x_start, y_start), extra_primary=primary,
                            extra_sci={"DISPAXIS": int(dispaxis)}, overwrite=overwrite)
    reference = write_exposure(outdir / "synth_wfssbkg.fits", ref, np.full((ny, nx), 0.001,
                                                                           np.float32), ref_dq,
                               instrument="NIRCAM", exp_type="NRC_WFSS", var_arrays=False,
                               asdf_extension=False, err_before_dq=False,
                               extra_primary={"FILTER": "F356W", "PUPIL": "GRISMR",
                                              "REFTYPE": "WFSSBKG"}, overwrite=overwrite)
    append_dq_def(reference, _REMAPPED_DQ_DEF if remap_dq else _STANDARD_DQ_DEF)

    from .wfss.boxes import Box
    from .wfss.boxtable import write_box_table

    box_path = write_box_table(
        [Box(*b, partial=b[2] < 0 or b[3] > nx - 1 or b[4] < 0 or b[5] > ny - 1) for b in boxes],
        outdir / f"{root}_boxes.ecsv", overwrite=overwrite)
    return WfssScene(outdir=outdir, target=target, reference=reference, boxes=box_path,
                     catalog=catalog, wavelengthrange=wavelengthrange, scale=float(scale),
                     shape=(int(y_size), int(x_size)), n_boxes=len(boxes))


def append_dq_def(path: os.PathLike | str, rows) -> None:
    """Append a DQ_DEF binary table (BIT, VALUE, NAME, DESCRIPTION) to a FITS file.

    ``rows`` is a sequence of ``(bit, value, name)``.
    """
    from astropy.io import fits

    columns = [
        fits.Column("BIT", "J", array=np.array([r[0] for r in rows], dtype=np.int32)),
        fits.Column("VALUE", "K", array=np.array([r[1] for r in rows], dtype=np.int64)),
        fits.Column("NAME", "40A", array=np.array([r[2] for r in rows])),
        fits.Column("DESCRIPTION", "80A", array=np.array([f"{r[2]} flag" for r in rows])),
    ]
    table = fits.BinTableHDU.from_columns(columns, name="DQ_DEF")
    with fits.open(path, mode="append") as hdul:
        hdul.append(table)
