"""Argument checking and input normalisation shared by the reference and compiled kernels.

Both kernels go through the same helpers, so they see identical (native byte order,
C-contiguous, fixed dtype) arrays and identical option codes.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ..options import UNLIMITED

__all__ = [
    "KernelOptions",
    "PreparedTile",
    "check_pass_limit",
    "check_sigma",
    "parse_options",
    "prepare_tile",
    "run_tile_kernel",
    "clip_mode",
    "MODE_MAD",
    "MODE_REJECT",
]

_ALL_REJECTED = ("keep", "reject")
_SCALES = ("std", "mad_std")
#: Bits of the integer clip mode passed to the compiled code.
MODE_REJECT, MODE_MAD = 1, 2
_EMPTY_LANE = ("zero", "nan")
_NO_VALID = ("zero", "nan")


class KernelOptions(NamedTuple):
    """Option strings turned into the flags the kernels use.

    Attributes
    ----------
    reject : int
        Clip mode bits: ``MODE_REJECT`` for ``all_rejected == "reject"`` (astropy 8
        behaviour), ``MODE_MAD`` for ``scale == "mad_std"``.
    empty_nan : bool
        ``empty_lane == "nan"`` (rateints integration mean with no valid sample).
    none_nan : bool
        ``no_valid == "nan"`` (combined value of a pixel with no surviving sample).
    """

    reject: int
    empty_nan: bool
    none_nan: bool


class PreparedTile(NamedTuple):
    """Normalised kernel inputs.

    Attributes
    ----------
    sci, err : numpy.ndarray
        Native float32, C-contiguous, shaped (N, P) in rate mode and (N, T, P) in
        rateints mode, P being the number of pixels of the tile.
    dq : numpy.ndarray
        Native uint32, same shape as ``sci``.
    overlaps : numpy.ndarray
        Native bool, shape (N,).
    out_shape : tuple of int
        Spatial shape of the tile, i.e. the shape of every output.
    """

    sci: np.ndarray
    err: np.ndarray
    dq: np.ndarray
    overlaps: np.ndarray
    out_shape: tuple[int, ...]


def _choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(
            f"invalid value {value!r} for {name!r}; choose one of "
            + ", ".join(repr(c) for c in choices)
        )
    return value


def check_all_rejected(all_rejected: str) -> bool:
    """Validate ``all_rejected`` and return True for ``"reject"``.

    Parameters
    ----------
    all_rejected : {"keep", "reject"}
        Policy when a clipping pass empties the buffer (algorithm page A.11).

    Returns
    -------
    bool
    """
    return _choice("all_rejected", all_rejected, _ALL_REJECTED) == "reject"


def clip_mode(all_rejected: str, scale: str = "std") -> int:
    """Integer clip mode for the compiled code: bit 0 reject-all policy, bit 1 MAD scale.

    Parameters
    ----------
    all_rejected : {"keep", "reject"}
        Policy when a clipping pass empties the buffer (algorithm page A.11).
    scale : {"std", "mad_std"}
        Scale of the clip: the reference's population standard deviation about the mean,
        or 1.4826 × the median absolute deviation (``clip_scale="mad_std"``), which can
        reject a single outlier in small stacks.
    """
    mode = MODE_REJECT if check_all_rejected(all_rejected) else 0
    if _choice("scale", scale, _SCALES) == "mad_std":
        mode |= MODE_MAD
    return mode


def parse_options(all_rejected: str, empty_lane: str, no_valid: str,
                  scale: str = "std") -> KernelOptions:
    """Validate the string options of the combine kernels.

    Parameters
    ----------
    all_rejected : {"keep", "reject"}
        See :func:`daskbkg.kernels.clip_lane_bounds`.
    empty_lane : {"zero", "nan"}
        Value of a rateints integration mean without valid integration.
    no_valid : {"zero", "nan"}
        SCI_bk of a pixel without surviving background sample.
    scale : {"std", "mad_std"}
        See :func:`clip_mode`.

    Returns
    -------
    KernelOptions
    """
    return KernelOptions(
        clip_mode(all_rejected, scale),
        _choice("empty_lane", empty_lane, _EMPTY_LANE) == "nan",
        _choice("no_valid", no_valid, _NO_VALID) == "nan",
    )


def check_pass_limit(pass_limit: int) -> int:
    """Validate a normalised pass limit.

    Parameters
    ----------
    pass_limit : int
        ``UNLIMITED`` (-1) or a positive integer, as returned by
        :func:`daskbkg.options.normalize_maxiters`.

    Returns
    -------
    int

    Raises
    ------
    TypeError
        If ``pass_limit`` is not an integer.
    ValueError
        If it is neither ``UNLIMITED`` nor positive.
    """
    if isinstance(pass_limit, (bool, np.bool_)) or not isinstance(
        pass_limit, (int, np.integer)
    ):
        raise TypeError(f"pass_limit must be an integer, not {pass_limit!r}")
    pass_limit = int(pass_limit)
    if pass_limit != UNLIMITED and pass_limit < 1:
        raise ValueError(
            f"pass_limit must be UNLIMITED (-1) or positive, not {pass_limit}; "
            "use daskbkg.options.normalize_maxiters to convert a maxiters value"
        )
    return pass_limit


def check_sigma(sigma: float) -> float:
    """Return ``sigma`` as a Python float (float64).

    Parameters
    ----------
    sigma : float
        Clip threshold in standard deviations.

    Returns
    -------
    float
    """
    value = float(sigma)
    if math.isnan(value):
        raise ValueError("sigma must be a number, not NaN")
    return value


def _as_native(a: np.ndarray, dtype: type) -> np.ndarray:
    """Return ``a`` as a native-order, C-contiguous array of ``dtype`` (copy only if needed)."""
    return np.ascontiguousarray(a, dtype=dtype)


def prepare_tile(sci, err, dq, overlaps, *, rateints: bool) -> PreparedTile:
    """Check shapes and convert the combine-kernel inputs.

    Parameters
    ----------
    sci, err : array_like
        Background SCI and ERR stacks, (N, ty, tx) in rate mode or (N, T, ty, tx) in
        rateints mode (any number of trailing spatial axes is accepted). Floating point
        data are converted to float32, which is exact for float32 input of either byte
        order; float64 input is rounded to float32 like the reference's data models do.
    dq : array_like
        DQ stack of the same shape, converted to uint32.
    overlaps : array_like of bool
        One flag per background, shape (N,).
    rateints : bool
        Selects the expected layout.

    Returns
    -------
    PreparedTile
    """
    sci = np.asarray(sci)
    err = np.asarray(err)
    dq = np.asarray(dq)
    lead = 2 if rateints else 1
    if sci.ndim < lead:
        layout = "(N, T, ...)" if rateints else "(N, ...)"
        raise ValueError(f"sci must have the layout {layout}, got shape {sci.shape}")
    if err.shape != sci.shape or dq.shape != sci.shape:
        raise ValueError(
            f"sci, err and dq must have the same shape, got {sci.shape}, {err.shape}, "
            f"{dq.shape}"
        )
    for name, arr in (("sci", sci), ("err", err)):
        if arr.dtype.kind not in "fiub":
            raise TypeError(f"{name} must be a real numeric array, not {arr.dtype}")
    if dq.dtype.kind not in "iub":
        raise TypeError(f"dq must be an integer array, not {dq.dtype}")
    overlaps = np.ascontiguousarray(overlaps, dtype=bool).reshape(-1)
    n_bkg = sci.shape[0]
    if overlaps.shape != (n_bkg,):
        raise ValueError(
            f"overlaps must have one flag per background ({n_bkg}), got {overlaps.size}"
        )
    out_shape = tuple(int(s) for s in sci.shape[lead:])
    n_pix = math.prod(out_shape)
    flat = sci.shape[:lead] + (n_pix,)
    return PreparedTile(
        _as_native(sci, np.float32).reshape(flat),
        _as_native(err, np.float32).reshape(flat),
        _as_native(dq, np.uint32).reshape(flat),
        overlaps,
        out_shape,
    )


def run_tile_kernel(rate_impl, rateints_impl, sci, err, dq, overlaps, sigma, pass_limit, *,
                    rateints, all_rejected, empty_lane, no_valid, scale="std"):
    """Check arguments, normalise the tile and run a compiled combine implementation.

    ``rate_impl(sci, err, dq, overlaps, sigma, pass_limit, reject, none_nan, *outputs)``
    and ``rateints_impl(..., reject, empty_nan, none_nan, *outputs)`` fill the four flat
    outputs in place. Returns them reshaped to the tile's spatial shape.
    """
    opts = parse_options(all_rejected, empty_lane, no_valid, scale)
    pass_limit = check_pass_limit(pass_limit)
    sigma = check_sigma(sigma)
    tile = prepare_tile(sci, err, dq, overlaps, rateints=rateints)
    n_pix = tile.sci.shape[-1]
    outputs = (np.empty(n_pix, dtype=np.float32), np.empty(n_pix, dtype=np.float32),
               np.empty(n_pix, dtype=np.uint32), np.empty(n_pix, dtype=np.int32))
    if rateints:
        rateints_impl(tile.sci, tile.err, tile.dq, tile.overlaps, sigma, pass_limit,
                      opts.reject, opts.empty_nan, opts.none_nan, *outputs)
    else:
        rate_impl(tile.sci, tile.err, tile.dq, tile.overlaps, sigma, pass_limit,
                  opts.reject, opts.none_nan, *outputs)
    return tuple(out.reshape(tile.out_shape) for out in outputs)
