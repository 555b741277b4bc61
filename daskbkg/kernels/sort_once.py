"""The sort-once combine kernel as called on a tile.

It picks the compiled code, runs it over whole blocks, and recomputes the few uncertain
pixels with a literal kernel.

The compiled code is the native library when one was built for this source and CPU
(:mod:`.native`), else the numba-compiled :mod:`.blocked`; both are the same machine
code. This module does not import numba unless it needs it.
"""

from __future__ import annotations

import importlib.util

import numpy as np

from ._common import run_tile_kernel
from .clip import combine_tile_reference
from .native import load as load_native
from .workspace import BLOCK, block_scratch, block_workspace, rateints_workspace

__all__ = ["HAVE_NUMBA", "combine_tile_sorted", "compiled_kernels", "kernels_available"]

#: Up to this many uncertain pixels per tile are recomputed by the NumPy reference
#: kernel (no compilation); more go to the compiled literal kernel of :mod:`.fast`.
REFERENCE_RECOMPUTE_LIMIT = 256


#: numba is installed (the compiled kernels can be built, and :mod:`.fast` can run).
HAVE_NUMBA = importlib.util.find_spec("numba") is not None


def kernels_available() -> bool:
    """True if the sort-once kernel can run here (a native library or numba)."""
    return load_native() is not None or HAVE_NUMBA


def combine_tile_fast(*args, **kwargs):
    """:func:`daskbkg.kernels.fast.combine_tile_fast`, imported (with numba) on first use."""
    from .fast import combine_tile_fast as kernel

    return kernel(*args, **kwargs)


def compiled_kernels() -> tuple:
    """``(rate, rateints)``: the native library's entry points, or numba's kernels."""
    native = load_native()
    if native is not None:
        return native.rate, native.rateints
    from .blocked import rate_kernel, rateints_kernel

    return rate_kernel, rateints_kernel


def _recompute_uncertain(uncertain, sci, err, dq, overlaps, sigma, pass_limit, reject,
                         empty_nan, none_nan, outputs, rateints):
    """Overwrite the flagged pixels of ``outputs`` with a literal kernel's results.

    A few pixels go through the NumPy reference (nothing to compile); many, as in
    hand-made data full of ties, through the compiled Wirth kernel. Both are
    bit-identical to the sort-once kernel's exact result.
    """
    index = np.flatnonzero(uncertain)
    if index.size == 0:
        return
    kernel = combine_tile_reference
    if index.size > REFERENCE_RECOMPUTE_LIMIT and HAVE_NUMBA:
        kernel = combine_tile_fast
    results = kernel(sci[..., index], err[..., index], dq[..., index], overlaps, sigma,
                     pass_limit, rateints=rateints,
                     all_rejected="reject" if reject else "keep",
                     empty_lane="nan" if empty_nan else "zero",
                     no_valid="nan" if none_nan else "zero")
    for out, values in zip(outputs, results):
        out[index] = values


def _run_in_blocks(kernel, sci, err, dq, middle, outputs):
    """Run a compiled combine ``kernel`` over a tile of any width; return the uncertain flags.

    The compiled kernels only take whole blocks of ``BLOCK`` pixels (fixed trip counts
    let LLVM vectorise their loops), so the last, partial block goes through the same
    kernel once more, padded with lanes that hold nothing valid (SCI NaN).
    """
    n_pix = sci.shape[-1]
    uncertain = np.zeros(n_pix, dtype=np.bool_)
    kernel(sci, err, dq, *middle, *outputs, uncertain)
    start = n_pix - n_pix % BLOCK
    if start < n_pix:
        padded = []
        for a, fill in ((sci, np.nan), (err, 0.0), (dq, 0)):
            block = np.full(a.shape[:-1] + (BLOCK,), fill, dtype=a.dtype)
            block[..., : n_pix - start] = a[..., start:]
            padded.append(block)
        tail = [np.zeros(BLOCK, dtype=out.dtype) for out in (*outputs, uncertain)]
        kernel(*padded, *middle, *tail)
        for out, values in zip((*outputs, uncertain), tail):
            out[start:] = values[: n_pix - start]
    return uncertain


def combine_rate_blocked(sci, err, dq, overlaps, sigma, pass_limit, reject, none_nan,
                         *outputs, kernel=None):
    """Rate-mode tile, inputs (N, P) prepared by ``prepare_tile``; outputs filled in place.

    ``kernel`` overrides the compiled code chosen by :func:`compiled_kernels`.
    """
    middle = (overlaps, sigma, pass_limit, reject, none_nan,
              block_scratch(sci.shape[0], np.float32), block_workspace(sci.shape[0]))
    uncertain = _run_in_blocks(kernel or compiled_kernels()[0], sci, err, dq, middle, outputs)
    _recompute_uncertain(uncertain, sci, err, dq, overlaps, sigma, pass_limit, reject,
                         False, none_nan, outputs, rateints=False)


def combine_rateints_blocked(sci, err, dq, overlaps, sigma, pass_limit, reject, empty_nan,
                             none_nan, *outputs, kernel=None):
    """Rateints tile, inputs (N, T, P) prepared by ``prepare_tile``; outputs filled in place.

    ``kernel`` overrides the compiled code chosen by :func:`compiled_kernels`.
    """
    middle = (overlaps, sigma, pass_limit, reject, empty_nan, none_nan,
              block_scratch(sci.shape[1]), block_scratch(sci.shape[0]),
              block_workspace(sci.shape[0]), rateints_workspace(sci.shape[0]))
    uncertain = _run_in_blocks(kernel or compiled_kernels()[1], sci, err, dq, middle, outputs)
    _recompute_uncertain(uncertain, sci, err, dq, overlaps, sigma, pass_limit, reject,
                         empty_nan, none_nan, outputs, rateints=True)


def combine_tile_sorted(sci, err, dq, overlaps, sigma: float, pass_limit: int, *,
                        rateints: bool, all_rejected: str = "keep", empty_lane: str = "zero",
                        no_valid: str = "zero", scale: str = "std"):
    """Combine one tile with the sort-once kernel (the default, fastest kernel).

    Same contract and bit-identical results as
    :func:`daskbkg.kernels.combine_tile_reference` and
    :func:`daskbkg.kernels.combine_tile_fast`; releases the GIL while it runs.
    """
    if scale != "std":  # the MAD scale is order-independent: the literal kernel is exact
        return combine_tile_fast(sci, err, dq, overlaps, sigma, pass_limit, rateints=rateints,
                                 all_rejected=all_rejected, empty_lane=empty_lane,
                                 no_valid=no_valid, scale=scale)
    return run_tile_kernel(combine_rate_blocked, combine_rateints_blocked, sci, err, dq,
                           overlaps, sigma, pass_limit, rateints=rateints,
                           all_rejected=all_rejected, empty_lane=empty_lane, no_valid=no_valid)
