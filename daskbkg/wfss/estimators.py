"""WFSS scale-factor estimators and per-block subtraction kernels (pure NumPy).

* :func:`robust_mean`, :func:`robust_scale`, :func:`apply_robust`: the reference's
  estimator (algorithm page W.2, W.6, W.7), float32 rules included.
* :func:`weighted_scale`, :func:`apply_weighted`: the error-weighted iterative estimator
  of jwst >= 1.17 (W.9).
* :func:`pixel_test`: the "enough background pixels" rules (W.5).

Everything here works on whole in-memory images (the reductions need exact global
percentiles and sums in row-major order); only the two ``apply_*`` kernels run per block.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from .errors import WfssEmptyMeanError, WfssParameterValueError

__all__ = [
    "PIXEL_TEST_MODES", "PixelTest", "RobustScale", "WeightedScale", "quartile_limits",
    "robust_mean", "pixel_test", "zero_nan", "robust_scale", "weighted_scale",
    "apply_robust", "apply_weighted",
]

#: Pixel-test modes: the four ``wfss_pixel_test`` options plus the user-mask rule of W.9.
PIXEL_TEST_MODES = ("jwst-1.13", "jwst-1.12", "fixed", "jwst-3.0", "user-mask")


# -- robust mean (W.6) ----------------------------------------------------------------------
def _finite_values(x) -> np.ndarray:
    v = np.asarray(x)
    if v.dtype.kind != "f":
        v = v.astype(np.float64)
    v = v.reshape(-1)
    v = v[~np.isnan(v)]
    if v.size == 0:
        raise WfssEmptyMeanError("robust mean of an empty selection: every value is NaN")
    return v


def quartile_limits(x) -> tuple[float, float]:
    """Return the 25th and 75th percentiles of the non-NaN values (linear method, float64).

    Raises
    ------
    WfssEmptyMeanError
        Nothing but NaN (an ``IndexError``).
    """
    with np.errstate(invalid="ignore"):
        lo, hi = np.percentile(_finite_values(x), [25, 75])
    return float(lo), float(hi)


def robust_mean(x) -> float:
    """Compute the reference's robust mean of a 1-D sample (algorithm page W.6), bit for bit.

    NaN values are dropped (infinities stay). The 25th/75th percentiles are computed with
    :func:`numpy.percentile` on the float32 values, **rounded to the sample's dtype**
    (float32) and used as inclusive limits, as NumPy 1.x did when it compared a float64
    scalar with a float32 array. The result is the float64-accumulated mean of the kept
    values, in their given (row-major) order.

    Parameters
    ----------
    x : array_like
        Sample, normally float32 values of the masked pixels in row-major order.

    Returns
    -------
    float
        The mean (NaN when no value lies between the rounded limits, with the reference).

    Raises
    ------
    WfssEmptyMeanError
        Nothing but NaN (an ``IndexError``, as in the reference).
    """
    v = _finite_values(x)
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # inf - inf, empty mean -> NaN
        lo, hi = np.percentile(v, [25, 75])
        lo, hi = v.dtype.type(lo), v.dtype.type(hi)
        keep = v[(v >= lo) & (v <= hi)]
        return float(np.mean(keep, dtype=np.float64))


# -- pixel test (W.5, W.9) -----------------------------------------------------------------
@dataclass(frozen=True)
class PixelTest:
    """Outcome of the "enough background pixels" test.

    Attributes
    ----------
    passed : bool
    count : int
        Pixels counted by the rule.
    threshold : int
        The number compared with ``count``.
    rule : str
        Human-readable rule, for messages.
    """

    passed: bool
    count: int
    threshold: int
    rule: str


def pixel_test(bkgmask: np.ndarray, dq: np.ndarray, mode: str = "jwst-1.13",
               ref: np.ndarray | None = None) -> PixelTest:
    """Apply one of the pixel-count rules of algorithm page W.5 (and the W.9 user-mask rule).

    Parameters
    ----------
    bkgmask : numpy.ndarray of bool
        True = background.
    dq : numpy.ndarray of uint32
        The target's DQ.
    mode : str
        ``"jwst-1.13"`` (default; the reference's precedence bug: DQ == 1 excluded),
        ``"jwst-1.12"``, ``"fixed"``, ``"jwst-3.0"`` (needs ``ref``, the raw reference
        image: NaN counts as nonzero) or ``"user-mask"``.

    Returns
    -------
    PixelTest
    """
    usable = None if mode == "jwst-1.12" else (np.asarray(dq) & np.uint32(1)) == 0
    if mode == "jwst-1.13":
        count, threshold, strict = np.count_nonzero(bkgmask & (np.asarray(dq) != 1)), 100, False
        rule = "mask pixels with DQ != 1 >= 100"
    elif mode == "jwst-1.12":
        count, threshold, strict = np.count_nonzero(bkgmask), 100, False
        rule = "mask pixels >= 100"
    elif mode == "fixed":
        count, threshold, strict = np.count_nonzero(bkgmask & usable), 100, True
        rule = "mask pixels without DO_NOT_USE > 100"
    elif mode == "jwst-3.0":
        if ref is None:
            raise ValueError("pixel test 'jwst-3.0' needs the reference image")
        count = np.count_nonzero(bkgmask & (np.asarray(ref) != 0) & usable)
        threshold, strict = int(0.05 * np.asarray(bkgmask).size), True
        rule = "mask pixels with nonzero reference and without DO_NOT_USE > 5 % of the image"
    elif mode == "user-mask":
        count, threshold, strict = np.count_nonzero(bkgmask & usable), 0, True
        rule = "user-mask pixels without DO_NOT_USE > 0"
    else:
        raise ValueError(f"unknown pixel-test mode {mode!r}; choose one of {PIXEL_TEST_MODES}")
    count = int(count)
    passed = count > threshold if strict else count >= threshold
    return PixelTest(passed=bool(passed), count=count, threshold=int(threshold), rule=rule)


# -- robust scale and subtraction (W.2, W.7) ------------------------------------------------
@dataclass(frozen=True)
class RobustScale:
    """Result of :func:`robust_scale`.

    Attributes
    ----------
    sci_mean, ref_mean : float
        Robust means of the science and the NaN-zeroed reference over the mask.
    factor : float or None
        ``sci_mean / ref_mean`` (float64); None when ``ref_mean == 0`` (no subtraction).
    factor32 : numpy.float32 or None
        ``float32(factor)``, the value actually used by :func:`apply_robust`.
    """

    sci_mean: float
    ref_mean: float
    factor: float | None
    factor32: np.float32 | None

    @property
    def subtract(self) -> bool:
        """False when the reference mean is zero (the data are left as they are)."""
        return self.factor is not None


def zero_nan(ref: np.ndarray) -> np.ndarray:
    """Copy of ``ref`` with every NaN replaced by 0.0 (infinities kept): ``REF0``."""
    ref = np.asarray(ref)
    return np.where(np.isnan(ref), ref.dtype.type(0), ref)


def robust_scale(sci: np.ndarray, ref: np.ndarray, bkgmask: np.ndarray) -> RobustScale:
    """Compute the reference's scale factor (algorithm page W.2 steps 1, 4, 5 and W.7).

    Parameters
    ----------
    sci : numpy.ndarray
        Target SCI (float32, 2-D).
    ref : numpy.ndarray
        Background reference SCI (float32, same shape); NaN is replaced by 0.
    bkgmask : numpy.ndarray of bool
        True = background; the same mask selects both samples.

    Raises
    ------
    WfssEmptyMeanError
        Every masked science value is NaN.
    """
    ref0 = zero_nan(ref)
    sci_mean = robust_mean(np.asarray(sci)[bkgmask])
    ref_mean = robust_mean(ref0[bkgmask])
    if ref_mean == 0:
        return RobustScale(sci_mean, ref_mean, None, None)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        factor = float(np.float64(sci_mean) / np.float64(ref_mean))
        factor32 = np.float32(factor)
    return RobustScale(sci_mean, ref_mean, factor, factor32)


def apply_robust(sci: np.ndarray, ref0: np.ndarray, f32) -> np.ndarray:
    """``float32(SCI - float32(f32 * REF0))``: the reference's subtraction (W.7), per block.

    ``ref0`` must already have its NaNs replaced by 0 (:func:`zero_nan`).
    """
    scaled = np.multiply(ref0, np.float32(f32), dtype=np.float32)
    return np.subtract(sci, scaled, dtype=np.float32)


# -- weighted scale (W.9) -----------------------------------------------------------------
@dataclass(frozen=True)
class WeightedScale:
    """Result of :func:`weighted_scale`.

    Attributes
    ----------
    factor : float
        Final weighted factor (float64; may be NaN or infinite).
    passes : int
        Rejection passes completed (the pass stopped by the RMS rule is not counted).
    rms_stop_pass : int or None
        Index of the pass at which the RMS rule stopped the iteration.
    n_rejected : int
        Mask pixels excluded by the outlier rejections.
    n_used : int
        Pixels contributing to the final denominator.
    rms : tuple of float
        RMS of the dispersion profile per pass (empty when the RMS rule is off).
    """

    factor: float
    passes: int
    rms_stop_pass: int | None
    n_rejected: int
    n_used: int
    rms: tuple = ()

    @property
    def finite(self) -> bool:
        """Whether the factor can be applied (the step fails otherwise)."""
        return math.isfinite(self.factor)


def weighted_scale(sci: np.ndarray, err: np.ndarray, ref: np.ndarray, bkgmask: np.ndarray, *,
                   maxiter: int = 5, rms_stop: float = 0.0, outlier_percent: float = 1.0,
                   dispaxis=None, sci_nan: str = "keep") -> WeightedScale:
    """Error-weighted iterative scale factor (algorithm page W.9, parity target jwst 3.0.0).

    Parameters
    ----------
    sci, err, ref : numpy.ndarray
        Target SCI and ERR and the reference SCI (float32, same 2-D shape; reference NaNs
        are kept).
    bkgmask : numpy.ndarray of bool
        True = background.
    maxiter : int
        Rejection passes.
    rms_stop : float
        Percent RMS-improvement stop; 0 switches it off.
    outlier_percent : float
        Percentile rejected at each end per pass.
    dispaxis : int or None
        ``DISPAXIS``; must be 1 or 2 when ``rms_stop > 0``.
    sci_nan : {"keep", "exclude"}
        ``"keep"`` reproduces the quirk that a non-finite science pixel stays in the
        denominator; ``"exclude"`` removes it from the fit at the start.

    Returns
    -------
    WeightedScale

    Raises
    ------
    WfssParameterValueError
        ``rms_stop > 0`` with ``DISPAXIS`` not 1 or 2 (a ``ValueError``), before any
        computation.
    """
    thr = float(rms_stop) / 100.0
    if thr > 0 and dispaxis not in (1, 2):
        raise WfssParameterValueError(
            f"wfss_rms_stop needs DISPAXIS 1 or 2 in the SCI header, not {dispaxis!r}"
        )
    if sci_nan not in ("keep", "exclude"):
        raise ValueError(f"sci_nan must be 'keep' or 'exclude', not {sci_nan!r}")
    p = float(outlier_percent)
    S = np.array(sci, dtype=np.float32, copy=True)
    V = np.multiply(err, err, dtype=np.float32)
    B = np.array(ref, dtype=np.float32, copy=True)
    R = ~np.asarray(bkgmask, dtype=bool)
    if sci_nan == "exclude":
        R |= ~np.isfinite(S)
    excluded_at_start = int(np.count_nonzero(R))

    def blank(where):
        S[where] = np.nan
        B[where] = np.nan
        V[where] = np.nan

    def factor_now():
        blank(V == 0)
        num_terms = np.divide(np.multiply(S, B, dtype=np.float32), V, dtype=np.float32)
        den_terms = np.divide(np.multiply(B, B, dtype=np.float32), V, dtype=np.float32)
        num = np.nansum(num_terms, dtype=np.float64)
        den = np.nansum(den_terms, dtype=np.float64)
        return np.float64(num) / np.float64(den), int(np.count_nonzero(~np.isnan(den_terms)))

    blank(R)
    rms_prev = np.float64(np.inf)
    rms_values = []
    stop = None
    passes = 0
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices, 0/0
        for i in range(int(maxiter)):
            f, _ = factor_now()
            res = S.astype(np.float64) - f * B.astype(np.float64)
            if thr > 0:
                prof = np.nanmedian(res, axis=int(dispaxis) - 1)
                rms = np.sqrt(np.nanmean(prof ** 2, dtype=np.float64))
                rms_values.append(float(rms))
                if (rms_prev - rms) / rms_prev < thr:
                    stop = i
                    break
                rms_prev = rms
            lo, hi = np.nanpercentile(res, [p, 100.0 - p])
            R |= (res < lo) | (res > hi)
            blank(R)
            passes += 1
        factor, n_used = factor_now()
    return WeightedScale(factor=float(factor), passes=passes, rms_stop_pass=stop,
                         n_rejected=int(np.count_nonzero(R)) - excluded_at_start,
                         n_used=n_used, rms=tuple(rms_values))


def apply_weighted(sci: np.ndarray, ref: np.ndarray, factor: float) -> np.ndarray:
    """``float32(float64(SCI) - factor * float64(REF))`` (W.9), per block; NaN propagates."""
    out = np.asarray(sci, dtype=np.float64) - np.float64(factor) * np.asarray(ref, dtype=np.float64)
    return out.astype(np.float32)
