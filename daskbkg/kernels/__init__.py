"""Pure per-tile kernels: the exact sigma clip and the combined-background computation.

Three implementations sit behind one interface:

* :func:`combine_tile_reference` (module :mod:`.clip`), NumPy/Python, literal to
  ``imaging.md`` §5-§7;
* :func:`combine_tile_fast` (module :mod:`.fast`), numba, the same algorithm compiled,
  bit-identical to it;
* :func:`combine_tile_sorted` (modules :mod:`.sortclip`, :mod:`.blocked`), numba, sorts
  each lane once and proves per pass that its decisions equal the literal algorithm's
  (pixels where it cannot are recomputed by a literal kernel), bit-identical and several
  times faster.

:func:`combine_tile` is the sort-once kernel when numba is importable and the reference
kernel otherwise. No kernel touches dask or files.
"""

from __future__ import annotations

from .clip import clip_lane_bounds, clip_lane_mask, clip_mask, combine_tile_reference

try:
    from .blocked import combine_tile_sorted
    from .fast import clip_lane_bounds_fast, combine_tile_fast
except ModuleNotFoundError as exc:  # numba not installed: fall back to the reference kernel
    if exc.name not in ("numba", "llvmlite"):
        raise
    clip_lane_bounds_fast = None
    combine_tile_fast = None
    combine_tile_sorted = None
    combine_tile = combine_tile_reference
    HAVE_NUMBA = False
else:
    combine_tile = combine_tile_sorted
    HAVE_NUMBA = True

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
    """Compile (or load from the on-disk cache) the default kernel by running it once.

    Fills the numba cache: called by the build backend after an editable install
    (``daskbkg/_build``), by ``daskbkg demo`` and when the container image is built.
    Calling it again loads the compiled code from the cache.
    """
    import numpy as np

    shape = (2, 2, 1, 1) if rateints else (2, 1, 1)
    values = np.ones(shape, dtype=np.float32)
    combine_tile(values, values, np.zeros(shape, dtype=np.uint32), np.ones(2, dtype=bool),
                 3.0, -1, rateints=rateints)
