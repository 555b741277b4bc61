"""The compiled combine kernel (C extension :mod:`daskbkg.kernels._ckernels`).

The extension (sources in ``daskbkg/kernels/src/``) is built with the package by
setuptools; nothing is compiled at run time. For ``clip_scale="std"`` and a finite,
non-negative sigma it sorts each lane once and decides every pass with a proven error
bound, falling back to the literal Wirth-selection algorithm, in the same call, for the
rare pixels it cannot decide (``docs/algorithm-exactness.md``). Otherwise it runs the
literal algorithm on every pixel. Either way the results are the bits of
:func:`daskbkg.kernels.combine_tile_reference`. The GIL is released while it runs.
"""

from __future__ import annotations

import numpy as np

from . import _ckernels
from ._common import check_pass_limit, check_sigma, clip_mode, run_tile_kernel

__all__ = ["BLOCK", "clip_lane_bounds_compiled", "combine_tile", "combine_tile_literal",
           "literal_pixel_count"]

#: Pixels clipped together by the sort-once path.
BLOCK = _ckernels.BLOCK


def _implementations(literal: bool, counts: list | None = None):
    """The ``(rate, rateints)`` callables :func:`run_tile_kernel` expects.

    ``counts``, if given, receives the number of pixels the extension computed with the
    literal algorithm.
    """

    def record(n_literal):
        if counts is not None:
            counts.append(n_literal)

    def rate(sci, err, dq, overlaps, sigma, pass_limit, mode, none_nan, *outputs):
        record(_ckernels.combine(sci, err, dq, overlaps, sci.shape[0], 1, sci.shape[1], False,
                                 sigma, pass_limit, mode, False, none_nan, literal, *outputs))

    def rateints(sci, err, dq, overlaps, sigma, pass_limit, mode, empty_nan, none_nan,
                 *outputs):
        n_bkg, n_int, n_pix = sci.shape
        record(_ckernels.combine(sci, err, dq, overlaps, n_bkg, n_int, n_pix, True, sigma,
                                 pass_limit, mode, empty_nan, none_nan, literal, *outputs))

    return rate, rateints


_SORTED = _implementations(literal=False)
_LITERAL = _implementations(literal=True)


def _combine(impls, sci, err, dq, overlaps, sigma, pass_limit, *, rateints, all_rejected,
             empty_lane, no_valid, scale):
    return run_tile_kernel(*impls, sci, err, dq, overlaps, sigma, pass_limit,
                           rateints=rateints, all_rejected=all_rejected,
                           empty_lane=empty_lane, no_valid=no_valid, scale=scale)


def combine_tile(sci, err, dq, overlaps, sigma: float, pass_limit: int, *, rateints: bool,
                 all_rejected: str = "keep", empty_lane: str = "zero", no_valid: str = "zero",
                 scale: str = "std"):
    """Combine the backgrounds of one tile: compiled, bit-identical to the reference.

    Parameters
    ----------
    sci, err : array_like
        Background SCI and ERR stacks, (N, ty, tx) in rate mode or (N, T, ty, tx) in
        rateints mode; any byte order and layout (converted to native float32 first).
    dq : array_like
        DQ stack of the same shape (converted to uint32).
    overlaps : array_like of bool, shape (N,)
        False for backgrounds that do not overlap the target (D = E = NaN, DQ ignored).
    sigma : float
        Clip threshold.
    pass_limit : int
        ``UNLIMITED`` (-1) or a positive number of passes.
    rateints : bool
        Rate (algorithm page A.7) or rateints (A.8) per-background planes.
    all_rejected : {"keep", "reject"}
        Clip policy of algorithm page A.11.
    empty_lane : {"zero", "nan"}
        Rateints integration mean without valid integration.
    no_valid : {"zero", "nan"}
        SCI_bk where no background sample survives.
    scale : {"std", "mad_std"}
        Clip scale.

    Returns
    -------
    sci_bk, err_bk : numpy.ndarray of float32, shape (ty, tx)
    dq_bk : numpy.ndarray of uint32, shape (ty, tx)
    n_good : numpy.ndarray of int32, shape (ty, tx)
        Number of background samples kept by the cross-exposure clip.
    """
    return _combine(_SORTED, sci, err, dq, overlaps, sigma, pass_limit, rateints=rateints,
                    all_rejected=all_rejected, empty_lane=empty_lane, no_valid=no_valid,
                    scale=scale)


def combine_tile_literal(sci, err, dq, overlaps, sigma: float, pass_limit: int, *,
                         rateints: bool, all_rejected: str = "keep", empty_lane: str = "zero",
                         no_valid: str = "zero", scale: str = "std"):
    """:func:`combine_tile` with the compiled literal (Wirth) algorithm on every pixel.

    The path the sort-once kernel falls back to for undecidable pixels; exposed so that
    the tests can check it on whole tiles. Same parameters and results as
    :func:`combine_tile`.
    """
    return _combine(_LITERAL, sci, err, dq, overlaps, sigma, pass_limit, rateints=rateints,
                    all_rejected=all_rejected, empty_lane=empty_lane, no_valid=no_valid,
                    scale=scale)


def literal_pixel_count(sci, err, dq, overlaps, sigma: float, pass_limit: int, *,
                        rateints: bool, **options) -> int:
    """Number of pixels of a tile that :func:`combine_tile` computes literally.

    These are the pixels the sort-once path cannot decide with certainty (every pixel for
    ``scale="mad_std"`` or a negative or infinite sigma). A diagnostic for tests and
    benchmarks; same arguments as :func:`combine_tile`.
    """
    counts: list[int] = []
    run_tile_kernel(*_implementations(False, counts), sci, err, dq, overlaps, sigma,
                    pass_limit, rateints=rateints, **{**_DEFAULTS, **options})
    return counts[0]


_DEFAULTS = dict(all_rejected="keep", empty_lane="zero", no_valid="zero", scale="std")


def clip_lane_bounds_compiled(lane, sigma: float, pass_limit: int, all_rejected: str = "keep",
                              scale: str = "std"):
    """Compiled equivalent of :func:`daskbkg.kernels.clip_lane_bounds` (the literal clip).

    Parameters
    ----------
    lane : array_like, 1-D
        Samples in stack order, any real dtype (converted to float64).
    sigma : float
        Clip threshold.
    pass_limit : int
        ``UNLIMITED`` (-1) or a positive number of passes.
    all_rejected : {"keep", "reject"}
        Policy of algorithm page A.11.
    scale : {"std", "mad_std"}
        Clip scale.

    Returns
    -------
    lo, hi : float
        Final bounds, bit-identical to the reference.
    """
    mode = clip_mode(all_rejected, scale)
    pass_limit = check_pass_limit(pass_limit)
    sigma = check_sigma(sigma)
    values = np.asarray(lane)
    if values.ndim != 1:
        raise ValueError(f"a lane must be one-dimensional, got shape {values.shape}")
    if values.dtype.kind not in "fiub":
        raise TypeError(f"a lane must be real numeric, not {values.dtype}")
    values = np.ascontiguousarray(values, dtype=np.float64)
    return _ckernels.lane_bounds(values, sigma, pass_limit, mode)
