"""Build the lazy combined-background graph (sigma-clipped mean of the backgrounds).

One dask task per spatial tile reads every background's overlap for that tile (SCI, ERR
and DQ as three aligned stacks) and one kernel call per tile produces the combined SCI,
ERR, DQ and the number of backgrounds kept, packed in one structured block.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ._units import in_unit
from .geometry import Window, place_background, window_for
from .io.exposure import Exposure, as_exposure
from .options import ClipParams, ReferenceCompat
from .plan import TilePlan, plan_tiles
from .stack import BackgroundStack, PlacedArray

__all__ = ["CombinedBackground", "build_combined_background", "PACKED_DTYPE"]

#: Per-pixel outputs of one kernel pass, packed so that one task yields all four.
PACKED_DTYPE = np.dtype([("sci", "<f4"), ("err", "<f4"), ("dq", "<u4"), ("nbkg", "<i4")])

#: The mean over zero planes as the reference computes it (0/0): the negative quiet NaN.
EMPTY_MEAN = np.uint32(0xFFC00000).view(np.float32)
_FILLS = {"sci": (math.nan, "float32"), "err": (math.nan, "float32"), "dq": (0, "uint32")}


@dataclass(frozen=True)
class CombinedBackground:
    """Lazy combined background image, shaped like one plane of the target.

    Attributes
    ----------
    sci, err : dask.array.Array
        float32 clipped mean and its uncertainty.
    dq : dask.array.Array
        uint32 bitwise OR of the overlapping backgrounds' DQ.
    nbkg : dask.array.Array
        int32 number of background values kept by the clip at each pixel.
    key : str
        Deterministic token of this graph (the image and its tiling).
    image_key : str
        Token of the image alone: equal image keys mean identical arrays, whatever
        the tiling (backgrounds by path, size and mtime, parameters, target window
        and mode).
    backgrounds : tuple of Exposure
        The backgrounds, in summation order.
    overlaps : tuple of bool
        Whether each background overlaps the target window.
    """

    sci: object
    err: object
    dq: object
    nbkg: object
    key: str
    backgrounds: tuple[Exposure, ...]
    overlaps: tuple[bool, ...]
    params: ClipParams
    compat: ReferenceCompat
    image_key: str = ""

    @property
    def arrays(self) -> dict[str, object]:
        """The four arrays by extension name."""
        return {"SCI": self.sci, "ERR": self.err, "DQ": self.dq, "NBKG": self.nbkg}

    def compute_arrays(self, **compute_kwargs) -> dict[str, np.ndarray]:
        """Compute the four arrays together (one pass over the backgrounds).

        With a scheduler that runs in this process (threads, synchronous), each tile is
        stored into the preallocated results as soon as it is computed, so the peak
        memory is the results plus the tiles in flight (``dask.compute`` holds every
        tile's blocks until it concatenates them: three times the results). Any other
        scheduler (processes, a distributed cluster) computes elsewhere, where stores
        would land in copies: the blocks are then gathered by ``dask.compute``.
        """
        import dask
        import dask.array as da

        lazy = list(self.arrays.values())
        if not _runs_in_this_process(compute_kwargs.get("scheduler"), lazy):
            return dict(zip(self.arrays.keys(), dask.compute(*lazy, **compute_kwargs)))
        arrays = {name: np.empty(a.shape, dtype=a.dtype) for name, a in self.arrays.items()}
        da.store(lazy, list(arrays.values()), lock=False, **compute_kwargs)
        return arrays

    def with_arrays(self, arrays: dict[str, np.ndarray]) -> "CombinedBackground":
        """The same combined background with its values given (computed elsewhere).

        ``arrays`` must be the result of :meth:`compute_arrays` for an equal
        ``image_key``; the new lazy arrays keep this object's tiling. Their blocks are
        views of ``arrays`` (``dask.array.from_array`` would copy each array first: 64
        MiB per product for a 2048² image, while products sharing it run side by side).
        """
        lazy = {name: _tile_array(_view, f"combined-{name.lower()}-{self.key}", array.chunks,
                                  arrays[name].dtype, data=arrays[name])
                for name, array in self.arrays.items()}
        return dataclasses.replace(self, sci=lazy["SCI"], err=lazy["ERR"], dq=lazy["DQ"],
                                   nbkg=lazy["NBKG"])


def _combine_block(sci, err, dq, *, overlaps, sigma, pass_limit, rateints, all_rejected,
                   empty_lane, no_valid, scale):
    """Run the combination kernel on one tile and pack its four outputs."""
    from .kernels import combine_tile

    sci, err, dq = (_single_block(x) for x in (sci, err, dq))

    out_sci, out_err, out_dq, n_good = combine_tile(
        sci, err, dq, overlaps, sigma, pass_limit, rateints=rateints,
        all_rejected=all_rejected, empty_lane=empty_lane, no_valid=no_valid, scale=scale,
    )
    packed = np.empty(out_sci.shape, dtype=PACKED_DTYPE)
    packed["sci"] = out_sci
    packed["err"] = out_err
    packed["dq"] = out_dq
    packed["nbkg"] = n_good
    return packed


def _take_field(block, tag):
    return block[str(tag)]


def _field(packed, field: str, key: str):
    """One output of the packed kernel blocks, as its own fusion unit.

    The field name comes from a one-task constant array, so every field task has two
    dependencies: dask's linear fusion then never merges the kernel task into a field
    task, whichever outputs are computed (see :mod:`daskbkg._units`).
    """
    import dask.array as da

    name = f"bkg{field}-{key}"
    tag = in_unit(da.from_array(np.array(field), chunks=(), name=f"{name}-tag"), f"{name}-tag")
    dtype = PACKED_DTYPE[field]
    out = da.blockwise(_take_field, "yx", packed, "yx", tag, "", dtype=dtype, name=name,
                       meta=np.empty((0, 0), dtype=dtype))
    return in_unit(out, name, packed, tag)


def _read_and_combine(region, *, stacks, **kernel_options):
    """One tile, one task: read every background's SCI, ERR and DQ there, and combine them.

    Reading and combining in the same task means no stack of samples ever travels
    between dask workers; only the packed result (16 bytes per pixel) does.
    """
    sci, err, dq = (stack[(slice(None),) * (stack.ndim - 2) + region] for stack in stacks)
    return _combine_block(sci, err, dq, **kernel_options)


def _runs_in_this_process(scheduler, collections) -> bool:
    """Whether dask would compute ``collections`` with ``scheduler`` in this process.

    True for the threaded and synchronous schedulers, whether named, given as functions
    or chosen by default; False for processes and distributed clusters.
    """
    import dask.local
    import dask.threaded
    from dask.base import get_scheduler

    get = get_scheduler(scheduler=scheduler, collections=collections)
    get = getattr(get, "func", get)  # a functools.partial of a scheduler function
    return get in (dask.threaded.get, dask.local.get_sync)


def _view(array: np.ndarray, region: tuple[slice, slice]) -> np.ndarray:
    return array[region]


def _tile_array(kernel, name: str, chunks: tuple[tuple[int, ...], tuple[int, ...]],
                dtype: np.dtype = PACKED_DTYPE, data: np.ndarray | None = None):
    """A dask array whose block (i, j) is ``kernel((rows_i, cols_j))`` (no input arrays).

    With ``data``, the block is ``kernel(data, (rows_i, cols_j))`` and ``data`` is one
    node of the graph that every block depends on: a distributed scheduler moves it to a
    worker once, instead of with every task.
    """
    import dask.array as da
    from dask.highlevelgraph import HighLevelGraph

    row_starts = np.cumsum((0,) + chunks[0])
    col_starts = np.cumsum((0,) + chunks[1])
    graph: dict = {}
    head: tuple = (kernel,)
    if data is not None:
        graph[f"{name}-data"] = data
        head = (kernel, f"{name}-data")
    for i in range(len(chunks[0])):
        for j in range(len(chunks[1])):
            region = (slice(int(row_starts[i]), int(row_starts[i + 1])),
                      slice(int(col_starts[j]), int(col_starts[j + 1])))
            graph[(name, i, j)] = head + (region,)
    layers = HighLevelGraph.from_collections(name, graph, dependencies=())
    return da.Array(layers, name, chunks=chunks, meta=np.empty((0, 0), dtype=dtype))


def _single_block(blocks):
    """Unwrap the nested one-element lists blockwise passes for contracted axes."""
    while isinstance(blocks, list):
        if len(blocks) != 1:
            raise ValueError("the background stack axis must be a single chunk")
        blocks = blocks[0]
    return blocks


def stack_planes(target: Exposure, placements: list, compat: ReferenceCompat) -> tuple[int, ...]:
    """Shape of one placed background: (ny, nx), or (nints, ny, nx) in rateints mode."""
    if target.ndim == 2:
        return tuple(target.shape)
    if compat.rateints_geometry == "jwst-3.0":
        nints = max([p.out_shape[0] for p in placements if p is not None], default=1)
        return (nints,) + tuple(target.shape[-2:])
    return tuple(target.shape)


def build_combined_background(
    target: Exposure,
    backgrounds: Sequence[Exposure],
    params: ClipParams,
    compat: ReferenceCompat,
    tiles: TilePlan | None = None,
    *,
    chunks: tuple[int, int] | None = None,
    memory_limit: int | None = None,
    threads: int | None = None,
) -> CombinedBackground:
    """Build the lazy combined background for ``target``.

    Backgrounds are checked in list order; the first one that cannot be combined raises
    (as the reference does) before any graph exists.

    Parameters
    ----------
    target : Exposure
        Defines the window, the image shape and the mode (2-D rate, 3-D rateints).
    backgrounds : sequence of Exposure or path
        Background exposures in summation order (may be empty); paths are opened and
        checked one at a time, so the first unusable background decides the error.
    params : ClipParams
        Clip threshold and pass limit.
    compat : ReferenceCompat
        Reference-compatibility switches.
    tiles : TilePlan, optional
        Tile shape; planned from ``chunks``/``memory_limit``/``threads`` when omitted
        (see :func:`daskbkg.plan.plan_tiles`).

    Returns
    -------
    CombinedBackground
    """
    import dask.array as da
    from dask.array.core import normalize_chunks
    from dask.base import tokenize

    target_window: Window = window_for(target.meta, target.shape, target.path)
    opened, placements = [], []
    for item in backgrounds:  # open and check one by one, in list order, like the reference
        bkg = as_exposure(item)
        window = window_for(bkg.meta, bkg.shape, bkg.path)
        placements.append(
            place_background(target_window, target.shape, window, bkg.shape, compat, bkg.path)
        )
        opened.append(bkg)
    backgrounds = tuple(opened)
    plane = stack_planes(target, placements, compat)
    image = tuple(target.shape[-2:])
    nints = plane[0] if len(plane) == 3 else 1
    if tiles is None:
        tiles = plan_tiles(image, len(backgrounds), nints, chunks=chunks,
                           memory_limit=memory_limit, threads=threads)
    overlaps = tuple(p is not None for p in placements)
    image_key = tokenize(
        "daskbkg-combined", [b.identity for b in backgrounds], params, compat,
        target_window, target.ndim, plane,
    )
    key = tokenize(image_key, tiles)
    image_chunks = tiles.chunks_for(image)
    if not backgrounds:
        # Reference with zero backgrounds: mean over no planes is 0/0, ERR 0/0 -> 0, DQ 0.
        # On IEEE hardware 0/0 gives the default NaN, negative (0xFFC00000): that exact
        # pattern, not NumPy's positive np.nan, reaches the subtracted SCI.
        return CombinedBackground(
            sci=da.full(image, EMPTY_MEAN, dtype=np.float32, chunks=image_chunks),
            err=da.zeros(image, dtype=np.float32, chunks=image_chunks),
            dq=da.zeros(image, dtype=np.uint32, chunks=image_chunks),
            nbkg=da.zeros(image, dtype=np.int32, chunks=image_chunks),
            key=key, backgrounds=(), overlaps=(), params=params, compat=compat,
            image_key=image_key,
        )
    stacks = []
    for ext, (fill, dtype) in _FILLS.items():
        members = [
            PlacedArray(source=getattr(b, ext) if p is not None else None, placement=p,
                        shape=plane, fill=fill, dtype_name=dtype)
            for b, p in zip(backgrounds, placements)
        ]
        stacks.append(BackgroundStack.of(members, plane, dtype))
    kernel = functools.partial(
        _read_and_combine, stacks=tuple(stacks), overlaps=np.array(overlaps, dtype=bool),
        sigma=params.sigma, pass_limit=params.pass_limit, rateints=len(plane) == 3,
        all_rejected=compat.clip_all_rejected, empty_lane=compat.rateints_empty_lane,
        no_valid=compat.no_valid_background, scale=compat.clip_scale,
    )
    packed = _tile_array(kernel, f"bkgcombine-{key}", normalize_chunks(image_chunks, image))
    # Reads and kernel form one fusion unit, each output field another (daskbkg._units).
    in_unit(packed, f"bkgcombine-{key}")
    fields = {f: _field(packed, f, key) for f in PACKED_DTYPE.names}
    return CombinedBackground(
        **fields, key=key, backgrounds=backgrounds, overlaps=overlaps, params=params,
        compat=compat, image_key=image_key,
    )

