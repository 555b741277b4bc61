"""C-callable entry points of the compiled combine kernels, for :mod:`.native`.

Each entry point takes raw pointers and sizes, views them as arrays (``numba.carray``)
and calls the very kernel the numba path runs (:mod:`.blocked`). The argument lists are
spelled out in :mod:`.native`, which calls them through ctypes. Importing this module imports
numba; only building the native library does.
"""

from __future__ import annotations

from numba import carray, njit, types

from .blocked import rate_kernel, rateints_kernel
from .native import RATE_ARGS, RATEINTS_ARGS
from .workspace import BLOCK

__all__ = ["rate_entry", "rateints_entry"]

_NUMBA_TYPES = {"f4": types.float32, "f8": types.float64, "u4": types.uint32,
                "i4": types.int32, "i8": types.int64, "b1": types.boolean}


def _signature(args):
    """Numba signature of an entry point described in :mod:`.native`."""
    return types.void(*(types.CPointer(_NUMBA_TYPES[kind[:-1]]) if kind.endswith("*")
                        else _NUMBA_TYPES[kind] for _, kind in args))


@njit(inline="always")
def _outputs(n_pix, out_sci, out_err, out_dq, out_n, uncertain):
    """The five flat outputs as arrays."""
    return (carray(out_sci, n_pix), carray(out_err, n_pix), carray(out_dq, n_pix),
            carray(out_n, n_pix), carray(uncertain, n_pix))


@njit(inline="always")
def _scratch(buf, npad, pairs, npairs, n_rows, stats, counts):
    """A clip scratch tuple (:func:`.workspace.block_scratch`) from its C arguments."""
    return (carray(buf, (npad, BLOCK)), carray(pairs, (npairs, 2)), n_rows,
            carray(stats, (4, BLOCK)), carray(counts, BLOCK))


@njit(inline="always")
def _work(n_bkg, sums, q, count, squares):
    """The block workspace tuple (:func:`.workspace.block_workspace`) from its C arguments."""
    return (carray(sums, (4, BLOCK)), carray(q, BLOCK), carray(count, BLOCK),
            carray(squares, (n_bkg, BLOCK)))


@njit(_signature(RATE_ARGS), error_model="numpy", nogil=True)
def rate_entry(sci, err, dq, overlaps, n_bkg, n_pix, sigma, pass_limit, reject, none_nan,
               buf, npad, pairs, npairs, stats, counts, sums, q, count, squares,
               out_sci, out_err, out_dq, out_n, uncertain):
    """Rate tile: :func:`~daskbkg.kernels.blocked.rate_kernel` on raw pointers."""
    shape = (n_bkg, n_pix)
    o_sci, o_err, o_dq, o_n, o_unc = _outputs(n_pix, out_sci, out_err, out_dq, out_n,
                                              uncertain)
    rate_kernel(carray(sci, shape), carray(err, shape), carray(dq, shape),
                carray(overlaps, n_bkg), sigma, pass_limit, reject, none_nan,
                _scratch(buf, npad, pairs, npairs, n_bkg, stats, counts),
                _work(n_bkg, sums, q, count, squares), o_sci, o_err, o_dq, o_n, o_unc)


@njit(_signature(RATEINTS_ARGS), error_model="numpy", nogil=True)
def rateints_entry(sci, err, dq, overlaps, n_bkg, n_int, n_pix, sigma, pass_limit, reject,
                   empty_nan, none_nan, buf_t, npad_t, pairs_t, npairs_t, stats_t, counts_t,
                   buf_k, npad_k, pairs_k, npairs_k, stats_k, counts_k, sums, q, count,
                   squares, d, e, int_sum, out_sci, out_err, out_dq, out_n, uncertain):
    """Rateints tile: :func:`~daskbkg.kernels.blocked.rateints_kernel` on raw pointers."""
    shape = (n_bkg, n_int, n_pix)
    means = (carray(d, (n_bkg, BLOCK)), carray(e, (n_bkg, BLOCK)), carray(int_sum, BLOCK))
    o_sci, o_err, o_dq, o_n, o_unc = _outputs(n_pix, out_sci, out_err, out_dq, out_n,
                                              uncertain)
    rateints_kernel(carray(sci, shape), carray(err, shape), carray(dq, shape),
                    carray(overlaps, n_bkg), sigma, pass_limit, reject, empty_nan, none_nan,
                    _scratch(buf_t, npad_t, pairs_t, npairs_t, n_int, stats_t, counts_t),
                    _scratch(buf_k, npad_k, pairs_k, npairs_k, n_bkg, stats_k, counts_k),
                    _work(n_bkg, sums, q, count, squares), means,
                    o_sci, o_err, o_dq, o_n, o_unc)
