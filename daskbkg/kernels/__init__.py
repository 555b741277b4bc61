"""Pure per-tile kernels: the exact sigma clip and the combined-background computation.

Three implementations sit behind one interface:

* :func:`combine_tile_reference` (module :mod:`.clip`), NumPy/Python, literal to
  ``imaging.md`` §5-§7;
* :func:`combine_tile_fast` (module :mod:`.fast`), numba, the same algorithm compiled,
  bit-identical to it;
* :func:`combine_tile_sorted` (modules :mod:`.sort_once`, :mod:`.sortclip`,
  :mod:`.blocked`), numba, sorts each lane once and proves per pass that its decisions
  equal the literal algorithm's (pixels where it cannot are recomputed by a literal
  kernel), bit-identical and several times faster. Where its native library has been
  built (:mod:`.native`), the same machine code runs without importing numba.

:func:`combine_tile` is the sort-once kernel when it can run (numba importable or its
native library built) and the reference kernel otherwise. No kernel touches dask or
files, and importing this package does not import numba.
"""

from __future__ import annotations

from .clip import clip_lane_bounds, clip_lane_mask, clip_mask, combine_tile_reference
from .sort_once import HAVE_NUMBA, combine_tile_sorted, kernels_available
from .workspace import BLOCK

if not kernels_available():  # neither numba nor a native library: the reference kernel
    combine_tile_sorted = None
    combine_tile = combine_tile_reference
else:
    combine_tile = combine_tile_sorted


def __getattr__(name: str):
    """The numba kernels of :mod:`.fast`, imported on first use (None without numba)."""
    if name in ("clip_lane_bounds_fast", "combine_tile_fast"):
        if not HAVE_NUMBA:
            return None
        from . import fast

        return getattr(fast, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "HAVE_NUMBA",
    "clip_lane_bounds",
    "clip_lane_bounds_fast",
    "clip_lane_mask",
    "clip_mask",
    "combine_tile",
    "combine_tile_fast",
    "combine_tile_reference",
    "combine_tile_sorted",
    "preload",
]


def preload(rateints: bool = False) -> None:
    """Compile the default kernel (numba cache and native library) and run it once.

    Called by the build backend after an editable install (``daskbkg/_build``), by
    ``daskbkg demo`` and when the container image is built. With numba it fills the
    numba cache for the ``rateints`` or rate kernel and, where a C compiler is available,
    writes the native library (:mod:`.native`, both modes) that later processes load
    without importing numba. Calling it again finds everything built.
    """
    import numpy as np

    from .sort_once import combine_rate_blocked, combine_rateints_blocked

    shape = (2, 2, BLOCK + 1) if rateints else (2, BLOCK + 1)  # a whole block and a tail
    values = np.ones(shape, dtype=np.float32)
    args = (values, values, np.zeros(shape, dtype=np.uint32), np.ones(2, dtype=bool),
            3.0, -1, 0)
    outputs = [np.empty(BLOCK + 1, dtype=t)
               for t in (np.float32, np.float32, np.uint32, np.int32)]
    if HAVE_NUMBA:
        from . import blocked
        from .native import build

        if rateints:
            combine_rateints_blocked(*args, False, False, *outputs,
                                     kernel=blocked.rateints_kernel)
        else:
            combine_rate_blocked(*args, False, *outputs, kernel=blocked.rate_kernel)
        build()
    combine_tile(values, values, args[2], args[3], 3.0, -1, rateints=rateints)
