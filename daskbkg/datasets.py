"""Synthetic JWST-like exposures and datasets for the demo, the tests and the benchmarks.

* :func:`make_exposure_arrays` draws SCI/ERR/DQ arrays: a smooth background with a gentle
  detector-coordinate gradient, Gaussian noise, optional point sources, NaNs flagged
  DO_NOT_USE and random DQ bits (some with bit 31 set, to exercise the BZERO encoding).
* :func:`write_exposure` writes one level-2 FITS file with the stdatamodels layout.
* :func:`make_dataset` writes targets, backgrounds and an ``image2`` association with
  JWST-style file names.

Everything is deterministic for a given seed; sizes are parametric (:func:`full_frame` and
:func:`subarray_window` take a ``scale`` so that tests can use tiny frames).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from daskbkg._fitsmaker import DETECTORS, atomic_write, write_exposure
from daskbkg._version import __version__
from daskbkg._wfss_scene import WfssScene, make_wfss_scene  # noqa: F401  (WFSS test scene)

__all__ = [
    "DETECTORS", "SUBARRAYS", "DQ_DO_NOT_USE", "Dataset", "full_frame", "subarray_window",
    "make_exposure_arrays", "write_exposure", "make_dataset",
]

#: JWST DQ bit DO_NOT_USE (bit 0).
DQ_DO_NOT_USE = 1
_DQ_HOT = 1 << 11
_DQ_REFERENCE_PIXEL = 1 << 31
#: Flag combinations given to the ``dq_fraction`` pixels (index 0 carries bit 31).
_DQ_CHOICES = np.array([
    _DQ_REFERENCE_PIXEL | DQ_DO_NOT_USE,   # reference pixel (bit 31: BZERO round trip)
    _DQ_HOT,                               # hot pixel (gets ``hot_value`` when given)
    1 << 2,                                # JUMP_DET
    1 << 12,                               # WARM
    1 << 13,                               # LOW_QE
    1 << 16,                               # NONLINEAR
    (1 << 24) | (1 << 16),                 # UNRELIABLE_SLOPE | NONLINEAR
    (1 << 30) | DQ_DO_NOT_USE,             # OTHER_BAD_PIXEL | DO_NOT_USE
    (1 << 10) | DQ_DO_NOT_USE,             # DEAD | DO_NOT_USE
], dtype=np.uint32)

#: Subarray windows ``(xstart, ystart, xsize, ysize)`` (1-based, full-size detector pixels).
#: The MIRI imager values follow the instrument's documented subarrays; the NIRCam ones are
#: realistic-looking corner windows, enough for the geometry code paths.
SUBARRAYS: dict[str, dict[str, tuple[int, int, int, int]]] = {
    "NIRCAM": {"FULL": (1, 1, 2048, 2048), "SUB640": (1, 1, 640, 640),
               "SUB320": (1, 1, 320, 320), "SUB160": (1, 1, 160, 160),
               "SUB400P": (1, 1, 400, 400), "SUB64P": (1, 1, 64, 64)},
    "MIRI": {"FULL": (1, 1, 1032, 1024), "BRIGHTSKY": (457, 51, 512, 512),
             "SUB256": (413, 51, 256, 256), "SUB128": (1, 889, 136, 128),
             "SUB64": (1, 779, 72, 64)},
}

_DEFAULT_SCALE = 1 / 8  # default make_dataset frame: NIRCam 256 x 256, MIRI 128 x 129
_BASE_DATE = "2024-01-01"
_BASE_MJD = 60310.0  # 2024-01-01T00:00:00 UTC


@dataclass(frozen=True)
class Dataset:
    """Files written by :func:`make_dataset`.

    Parameters
    ----------
    outdir : pathlib.Path
        Directory holding every file.
    targets : tuple of pathlib.Path
        Target (science) exposures, one per association product.
    backgrounds : tuple of pathlib.Path
        Background exposures, in association member order.
    asn : pathlib.Path or None
        The level-2 association, or None when it was not written.
    """

    outdir: Path
    targets: tuple[Path, ...]
    backgrounds: tuple[Path, ...]
    asn: Path | None


def _preset(instrument: str) -> dict[str, Any]:
    try:
        return DETECTORS[instrument.upper()]
    except KeyError:
        raise ValueError(f"unknown instrument {instrument!r}; known: {sorted(DETECTORS)}") from None


def full_frame(instrument: str = "NIRCAM", scale: float = 1.0) -> tuple[int, int]:
    """Full-frame shape ``(ny, nx)`` of an instrument, optionally scaled down.

    Parameters
    ----------
    instrument : str
        A key of :data:`DETECTORS`.
    scale : float
        Linear scale factor, e.g. ``1/32`` gives a 64 x 64 NIRCam frame.

    Returns
    -------
    tuple of int
        ``(ny, nx)``, each at least 1.
    """
    ny, nx = _preset(instrument)["full"]
    return max(1, round(ny * scale)), max(1, round(nx * scale))


def _scale_window(window: Sequence[int], full: tuple[int, int],
                  frame: tuple[int, int]) -> tuple[int, int, int, int]:
    """Map a full-size window ``(xstart, ystart, xsize, ysize)`` onto a smaller frame."""
    out = []
    for start, size, n_full, n_frame in ((window[0], window[2], full[1], frame[1]),
                                         (window[1], window[3], full[0], frame[0])):
        factor = n_frame / n_full
        new_size = min(n_frame, max(1, round(size * factor)))
        new_start = min(math.floor((start - 1) * factor), n_frame - new_size)
        out.append((new_start + 1, new_size))
    (xs, xn), (ys, yn) = out
    return xs, ys, xn, yn


def subarray_window(instrument: str, name: str, scale: float = 1.0) -> tuple[int, int, int, int]:
    """Window ``(xstart, ystart, xsize, ysize)`` of a subarray preset, optionally scaled.

    Parameters
    ----------
    instrument : str
        A key of :data:`SUBARRAYS`.
    name : str
        Subarray name, e.g. ``"SUB640"`` or ``"BRIGHTSKY"``.
    scale : float
        Same factor as given to :func:`full_frame`; the window stays inside that frame.

    Returns
    -------
    tuple of int
        1-based ``(xstart, ystart, xsize, ysize)``.
    """
    window = SUBARRAYS[instrument.upper()][name.upper()]
    full = _preset(instrument)["full"]
    return _scale_window(window, full, full_frame(instrument, scale))


def _background_plane(ny: int, nx: int, level: float, gradient: float,
                      origin: Sequence[int], detector_shape: Sequence[int]) -> np.ndarray:
    """Smooth background: ``level`` times a gentle gradient in detector coordinates."""
    det_ny, det_nx = detector_shape
    y = ((origin[1] - 1 + np.arange(ny)) / max(det_ny - 1, 1) - 0.5)[:, np.newaxis]
    x = ((origin[0] - 1 + np.arange(nx)) / max(det_nx - 1, 1) - 0.5)[np.newaxis, :]
    return level * (1.0 + gradient * (0.8 * x + 0.5 * y + 0.6 * x * y - 0.3 * y * y))


def _add_sources(plane: np.ndarray, rng: np.random.Generator, n_sources: int,
                 flux: float) -> None:
    """Add small Gaussian blobs (peak up to ``flux``) to ``plane`` in place."""
    ny, nx = plane.shape
    ys, xs = rng.uniform(0, ny, n_sources), rng.uniform(0, nx, n_sources)
    sigmas = rng.uniform(0.8, 2.0, n_sources)
    peaks = flux * rng.uniform(0.2, 1.0, n_sources)
    for yc, xc, sig, peak in zip(ys, xs, sigmas, peaks):
        r = math.ceil(4 * sig)
        y0, y1 = max(0, int(yc) - r), min(ny, int(yc) + r + 1)
        x0, x1 = max(0, int(xc) - r), min(nx, int(xc) + r + 1)
        yy = (np.arange(y0, y1) + 0.5 - yc)[:, np.newaxis]
        xx = (np.arange(x0, x1) + 0.5 - xc)[np.newaxis, :]
        plane[y0:y1, x0:x1] += peak * np.exp(-(yy * yy + xx * xx) / (2 * sig * sig))


def make_exposure_arrays(shape: Sequence[int], *, level: float = 1.0, noise: float = 0.01,
                         seed: Any = 0, nan_fraction: float = 0.0, n_sources: int = 0,
                         source_flux: float = 50.0, dq_fraction: float = 0.0,
                         hot_value: float | None = None, origin: Sequence[int] = (1, 1),
                         detector_shape: Sequence[int] | None = None,
                         gradient: float = 0.05) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw SCI, ERR and DQ arrays of a synthetic rate (2-D) or rateints (3-D) exposure.

    Parameters
    ----------
    shape : sequence of int
        ``(ny, nx)`` or ``(nints, ny, nx)``.
    level : float
        Mean background level (DN/s).
    noise : float
        Standard deviation of the Gaussian noise (DN/s), independent per integration.
    seed : int or numpy.random.SeedSequence
        Anything :func:`numpy.random.default_rng` accepts; equal seeds give equal arrays.
    nan_fraction : float
        Fraction of pixels set to NaN in SCI and ERR and flagged DO_NOT_USE in DQ.
    n_sources : int
        Number of point sources (Gaussian blobs, sigma 0.8-2 px), static across integrations.
    source_flux : float
        Largest source peak above the background (DN/s).
    dq_fraction : float
        Fraction of pixels given random DQ flags (from a realistic set; at least one of them
        carries bit 31). Flags containing DO_NOT_USE also make the pixel NaN, as in real
        rate files.
    hot_value : float, optional
        When given, SCI of pixels flagged HOT (bit 11) is set to this value (outliers that
        the clipping must reject).
    origin : (int, int)
        1-based detector position ``(xstart, ystart)`` of pixel [0, 0]; with
        ``detector_shape`` it places the gradient so that a subarray matches a full frame.
    detector_shape : (int, int), optional
        ``(ny, nx)`` over which the gradient is defined; default the array's own.
    gradient : float
        Relative amplitude of the background gradient across the detector.

    Returns
    -------
    sci, err, dq : numpy.ndarray
        float32, float32 and uint32 arrays of ``shape``. Bad pixels are static: the same
        in every integration.
    """
    shape = tuple(int(n) for n in shape)
    if len(shape) not in (2, 3) or min(shape) < 1:
        raise ValueError(f"shape must be (ny, nx) or (nints, ny, nx), got {shape}")
    ny, nx = shape[-2:]
    nints = shape[0] if len(shape) == 3 else 1
    rng = np.random.default_rng(seed)
    background = _background_plane(ny, nx, level, gradient, origin, detector_shape or (ny, nx))
    model = np.array(background, dtype=np.float64)
    if n_sources:
        _add_sources(model, rng, n_sources, source_flux)
    scale = max(abs(level), noise, 1e-12)
    err_plane = noise * np.sqrt(1.0 + np.maximum(model - background, 0.0) / scale)

    dq_plane = np.zeros((ny, nx), dtype=np.uint32)
    flat = dq_plane.reshape(-1)
    n_bad = round(dq_fraction * ny * nx)
    if n_bad:
        where = rng.choice(ny * nx, size=n_bad, replace=False)
        flags = rng.choice(_DQ_CHOICES, size=n_bad)
        flags[0] = _DQ_CHOICES[0]
        flat[where] |= flags
    n_nan = round(nan_fraction * ny * nx)
    if n_nan:
        flat[rng.choice(ny * nx, size=n_nan, replace=False)] |= DQ_DO_NOT_USE
    bad = (dq_plane & DQ_DO_NOT_USE) != 0
    if hot_value is not None:
        model[(dq_plane & _DQ_HOT) != 0] = hot_value

    sci = np.empty((nints, ny, nx), dtype=np.float32)
    for k in range(nints):
        sci[k] = model
        sci[k] += np.float32(noise) * rng.standard_normal((ny, nx), dtype=np.float32)
        sci[k][bad] = np.nan
    err_plane = err_plane.astype(np.float32)
    err_plane[bad] = np.nan
    err = np.broadcast_to(err_plane, sci.shape).copy()
    dq = np.broadcast_to(dq_plane, sci.shape).copy()
    if len(shape) == 2:
        return sci[0], err[0], dq[0]
    return sci, err, dq


def _mjd_keywords(mjd: float, duration_s: float) -> dict[str, Any]:
    """DATE-OBS/TIME-OBS/EXPSTART/EXPMID/EXPEND for an exposure starting on _BASE_DATE."""
    seconds = (mjd - _BASE_MJD) * 86400.0
    hh, rest = divmod(seconds, 3600.0)
    mm, ss = divmod(rest, 60.0)
    end = mjd + duration_s / 86400.0
    return {"DATE-OBS": _BASE_DATE, "TIME-OBS": f"{int(hh):02d}:{int(mm):02d}:{ss:06.3f}",
            "EXPSTART": mjd, "EXPMID": (mjd + end) / 2, "EXPEND": end}


def _target_window(target_subarray: Any, instrument: str,
                   frame: tuple[int, int]) -> tuple[tuple[int, int, int, int], str]:
    if target_subarray is None:
        return (1, 1, frame[1], frame[0]), "FULL"
    if isinstance(target_subarray, str):
        name = target_subarray.upper()
        window = SUBARRAYS[instrument][name]
        return _scale_window(window, _preset(instrument)["full"], frame), name
    xs, ys, xn, yn = (int(v) for v in target_subarray)
    if xs < 1 or ys < 1 or xn < 1 or yn < 1 or xs - 1 + xn > frame[1] or ys - 1 + yn > frame[0]:
        raise ValueError(f"target_subarray {target_subarray!r} does not fit the frame {frame}")
    return (xs, ys, xn, yn), "FULL" if (xn, yn) == (frame[1], frame[0]) else f"SUB{xn}X{yn}"


def make_dataset(outdir: os.PathLike | str, *, instrument: str = "NIRCAM",
                 n_backgrounds: int = 3, rateints: bool = False, nints: int = 3,
                 frame_shape: tuple[int, int] | None = None, target_subarray: Any = None,
                 seed: int = 0, n_targets: int = 1, write_asn: bool = True,
                 prefix: str = "jw01234", overwrite: bool = False,
                 var_arrays: bool = True) -> Dataset:
    """Write a small, realistic background-subtraction dataset.

    Targets come from observation 001 (exposures 00001, 00002, ...) and backgrounds from
    observation 002, e.g. ``jw01234001001_02101_00001_nrca1_rate.fits``.

    Parameters
    ----------
    outdir : path-like
        Output directory, created if needed.
    instrument : str
        A key of :data:`DETECTORS` (sets the detector, filter, level and noise).
    n_backgrounds : int
        Number of background exposures; their levels differ by a few per cent.
    rateints : bool
        Write 3-D ``*_rateints.fits`` files with ``nints`` integrations.
    nints : int
        Integrations per exposure when ``rateints``.
    frame_shape : (int, int), optional
        Full-frame ``(ny, nx)``; default 1/8 of the real detector (256 x 256 for NIRCam).
    target_subarray : (int, int, int, int) or str, optional
        Target window ``(xstart, ystart, xsize, ysize)`` inside the full-frame backgrounds,
        or a :data:`SUBARRAYS` name scaled to ``frame_shape``; default full frame.
    seed : int
        Master seed; every exposure gets its own child seed.
    n_targets : int
        Number of target exposures, one association product each.
    write_asn : bool
        Write ``<prefix>_image2_asn.json`` (``spec2`` for NIRSpec) into ``outdir``.
    prefix : str
        ``jw`` plus the 5-digit program number.
    overwrite : bool
        Replace existing files instead of raising :class:`FileExistsError`.
    var_arrays : bool
        Write the VAR_POISSON/VAR_RNOISE/VAR_FLAT extensions (smaller files without).

    Returns
    -------
    Dataset
        The written paths.
    """
    instrument = instrument.upper()
    preset = _preset(instrument)
    frame = tuple(frame_shape) if frame_shape is not None else full_frame(instrument,
                                                                         _DEFAULT_SCALE)
    window, sub_name = _target_window(target_subarray, instrument, frame)
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    det, suffix = preset["detector"].lower(), "rateints" if rateints else "rate"
    level, noise = preset["level"], preset["noise"]
    seeds = np.random.SeedSequence(seed).spawn(n_targets + n_backgrounds)

    def name(obs: int, expno: int) -> str:
        return f"{prefix}{obs:03d}001_02101_{expno:05d}_{det}_{suffix}.fits"

    def write(fname: str, k: int, shape: tuple[int, int], origin: tuple[int, int],
              sub: str, bkg_level: float, n_src: int, fractions: tuple[float, float],
              mjd: float) -> Path:
        shape3 = (nints, *shape) if rateints else shape
        sci, err, dq = make_exposure_arrays(
            shape3, level=bkg_level, noise=noise, seed=seeds[k], nan_fraction=fractions[0],
            n_sources=n_src, source_flux=40 * level, dq_fraction=fractions[1],
            hot_value=100 * level, origin=origin, detector_shape=frame)
        extra = {"SUBARRAY": sub, **_mjd_keywords(mjd, 300 * (nints if rateints else 1))}
        return write_exposure(outdir / fname, sci, err, dq, instrument=instrument,
                              substrt=origin, extra_primary=extra, overwrite=overwrite,
                              var_arrays=var_arrays)

    tshape = (window[3], window[2])
    targets = tuple(
        write(name(1, i + 1), i, tshape, window[:2], sub_name, level,
              max(2, tshape[0] * tshape[1] // 4096), (0.002, 0.005), _BASE_MJD + 0.01 * i)
        for i in range(n_targets))
    backgrounds = tuple(
        write(name(2, j + 1), n_targets + j, frame, (1, 1), "FULL", level * (0.97 + 0.03 * j),
              max(1, frame[0] * frame[1] // 16384), (0.001, 0.002), _BASE_MJD + 0.2 + 0.01 * j)
        for j in range(n_backgrounds))
    asn = _write_asn(outdir, prefix, instrument, targets, backgrounds, overwrite) \
        if write_asn else None
    return Dataset(outdir=outdir, targets=targets, backgrounds=backgrounds, asn=asn)


def _write_asn(outdir: Path, prefix: str, instrument: str, targets: Sequence[Path],
               backgrounds: Sequence[Path], overwrite: bool) -> Path:
    """Write the level-2 association: one product per target, backgrounds in order."""
    spec = instrument == "NIRSPEC"
    asn_type = "spec2" if spec else "image2"
    match = re.fullmatch(r"jw(\d{5})", prefix)
    products = [{
        "name": re.sub(r"_rate(ints)?\.fits$", "", t.name),
        "members": [{"expname": t.name, "exptype": "science"}]
        + [{"expname": b.name, "exptype": "background"} for b in backgrounds],
    } for t in targets]
    asn = {
        "asn_type": asn_type, "asn_rule": "Asn_Lv2Spec" if spec else "Asn_Lv2Image",
        "version_id": "20240101t000000", "code_version": f"daskbkg {__version__}",
        "degraded_status": "No known degraded exposures in association.",
        "program": match.group(1) if match else prefix, "constraints": "synthetic",
        "asn_id": "o001", "target": "t001", "asn_pool": f"{prefix}_20240101t000000_pool.csv",
        "products": products,
    }
    text = (json.dumps(asn, indent=4) + "\n").encode("utf-8")
    return atomic_write(outdir / f"{prefix}_{asn_type}_asn.json", lambda fh: fh.write(text),
                        overwrite=overwrite)
