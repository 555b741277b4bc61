"""Pure per-tile kernels: the exact sigma clip and the combined-background computation.

Two implementations sit behind one interface:

* :func:`combine_tile_reference` (module :mod:`.clip`), NumPy/Python, literal to
  algorithm page A.7-A.13: the single reference, used by the tests as the oracle;
* :func:`combine_tile` (module :mod:`.compiled`), the C extension built with the package
  (sources in ``src/``): a sort-once clip with a proven error bound and the literal
  algorithm for the pixels it cannot decide, bit-identical to the reference.

No kernel touches dask or files, and nothing is compiled at run time.
"""

from __future__ import annotations

from .clip import clip_lane_bounds, clip_lane_mask, clip_mask, combine_tile_reference
from .compiled import (
    BLOCK,
    clip_lane_bounds_compiled,
    combine_tile,
    combine_tile_literal,
)

__all__ = [
    "BLOCK",
    "clip_lane_bounds",
    "clip_lane_bounds_compiled",
    "clip_lane_mask",
    "clip_mask",
    "combine_tile",
    "combine_tile_literal",
    "combine_tile_reference",
]
