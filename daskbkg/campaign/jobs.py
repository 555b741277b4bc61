"""What runs on a worker: one product's whole life, and a shared combined background.

:func:`run_product` is the unit of work of a campaign. On the worker (or in a local
thread or process) it identifies the inputs, skips a product that is already complete,
reads the headers, checks every input, builds the lazy product, computes it tile by
tile and streams it into the output files, renames them into place, writes the
completion marker and returns a small :class:`~daskbkg.campaign.outcome.Outcome`. The
client only ever sees these records: no pixel and no output byte passes through it.

Products that share a background list get the combined background from
:func:`combine_group`, computed once on a worker and handed to each product's job as
NumPy arrays (dask moves them to the worker that runs the product, usually the same
one). Header scans are cached per process by (path, size, mtime), so a file shared by
many products is scanned once per worker process.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..settings import RunSettings
from .items import CampaignItem, as_input
from .markers import MARKER_DIR, is_complete, mark_done, product_key
from .outcome import Outcome, failure_outcome, interrupted

__all__ = ["ProductJob", "SharedCombined", "run_product", "combine_group", "open_exposure",
           "STOP", "Stopped", "output_paths"]

log = logging.getLogger("daskbkg")

#: Set to stop every job of this process at its next tile (campaign interrupted).
STOP = threading.Event()


class Stopped(Exception):
    """Raised inside a job's computation when :data:`STOP` is set."""


# ------------------------------------------------------------------------- header cache

_CACHE_SIZE = 1024
_cache: "OrderedDict[tuple, Any]" = OrderedDict()
_cache_lock = threading.Lock()
_opening: dict[tuple, threading.Lock] = {}  # files being read right now


def open_exposure(path: Any):
    """Open an exposure once per process and file version (path, size, mtime).

    Returns the cached :class:`~daskbkg.io.Exposure` when the file has not changed;
    errors are not cached (the next call tries again and raises the same error).
    """
    from ..io.exposure import read_exposure
    from ..io.source import stat_input

    st = stat_input(path)
    key = (st.path, st.size, st.version)
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
            return hit
        opening = _opening.setdefault(key, threading.Lock())
    with opening:  # one thread reads a file's headers; the others wait for its result
        with _cache_lock:
            hit = _cache.get(key)
        if hit is not None:
            return hit
        try:
            exposure = read_exposure(path)
        finally:
            with _cache_lock:
                _opening.pop(key, None)
        with _cache_lock:
            _cache[key] = exposure
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    return exposure


def _opened_or_path(path: Any):
    """The cached exposure, or the path itself if it cannot be opened.

    Validation then opens the path again and reports the error in the reference's
    order (target first, then backgrounds in list order).
    """
    try:
        return open_exposure(path)
    except Exception:  # noqa: BLE001 - reported by validation, in order
        return path


# ------------------------------------------------------------------------------ the jobs

@dataclass(frozen=True)
class ProductJob:
    """Everything a worker needs to make one product (small and picklable).

    ``inner`` is the dask scheduler used inside the job: ``"sync"`` when many jobs run
    side by side (each job is one task), ``"threads"`` for a single product run alone
    on this machine, ``"cluster"`` to spread the product's tiles over the whole cluster
    (a campaign with fewer products than worker threads). ``index`` is the product's
    position in the campaign.
    """

    item: CampaignItem
    settings: RunSettings
    resume: bool = True
    inner: str = "sync"
    progress: bool = False
    index: int = 0


@dataclass(frozen=True)
class SharedCombined:
    """A combined background computed once for several products.

    ``arrays`` maps SCI/ERR/DQ/NBKG to arrays: :class:`~daskbkg.io.scratch.ScratchArray`
    views of the file ``scratch`` (local output folders: the image is never held in
    memory), or NumPy arrays (object-store outputs). ``image_key`` identifies the image
    (backgrounds, parameters, target window and mode). ``error`` is set instead when the
    shared computation failed: each product then computes (and reports) its own.
    """

    image_key: str | None = None
    arrays: dict = field(default_factory=dict)
    backgrounds: tuple = ()
    error: str | None = None
    scratch: str | None = None

    def discard(self) -> None:
        """Delete the scratch file holding the arrays, if any (once no product needs it)."""
        if self.scratch:
            path = Path(self.scratch)
            path.unlink(missing_ok=True)
            try:
                path.parent.rmdir()  # kept while another group's file is in it
            except OSError:
                pass


def output_paths(item: CampaignItem, settings: RunSettings) -> tuple[Any, Any]:
    """Main and combined-background output locations of a product."""
    from ..io.naming import output_name
    from ..io.source import join

    root, sep = item.output_root()
    ext = ".zarr" if settings.fmt == "zarr" else ".fits"
    main = join(settings.output_dir, output_name(root, sep, settings.suffix, ext))
    comb = None
    if settings.save_combined:
        comb = join(settings.output_dir, output_name(root, sep, "combinedbackground", ext))
    return main, comb


@contextlib.contextmanager
def inner_scheduler(inner: str):
    """The dask scheduler a job computes its tiles with.

    ``"cluster"`` hands the tiles back to the cluster through a ``worker_client`` (the
    job's own worker thread seceding while they run); ``"threads"`` and ``"sync"`` are
    dask's local schedulers.
    """
    if inner == "cluster":
        from distributed import worker_client

        with worker_client() as client:
            yield client
        return
    from ..scheduling import local_scheduler

    get = local_scheduler(inner)
    if inner == "threads":
        # Called from a job's thread, dask's threaded scheduler would start a pool of
        # ThreadPoolExecutor's default size (CPU count + 4): more tiles in flight than
        # the tile plan counts on (three times the memory on 2 cores).
        get = functools.partial(get, num_workers=os.cpu_count() or 1)
    yield get


def _current_worker():
    """The dask worker running this job, or None (never imports distributed itself)."""
    distributed = sys.modules.get("distributed")
    if distributed is None:
        return None
    try:
        return distributed.get_worker()
    except ValueError:
        return None


def _tile_budget(settings: RunSettings, inner: str) -> dict:
    """Tile planning for this job: one tile at a time (sync) or all threads (threads).

    On a dask worker the budget also respects the worker's memory limit per thread.
    """
    threads = 1 if inner == "sync" else None  # else: the tiles of every thread
    limit = settings.memory_limit
    worker = _current_worker()
    mem = getattr(getattr(worker, "memory_manager", None), "memory_limit", None)
    if mem:
        cap = int(mem) // (4 * max(worker.state.nthreads, 1))
        limit = min(limit, cap) if limit else min(64 * 2**20, cap)
    return {"threads": threads, "memory_limit": limit}


def _build_result(job: ProductJob, shared: SharedCombined | None):
    """The lazy :class:`~daskbkg.result.BackgroundResult` of a job's product."""
    from ..result import BackgroundResult
    from ..subtract import build_product
    from ..validate import prepare_inputs

    item, settings = job.item, job.settings
    target = open_exposure(item.target)
    product = _wfss_product(target, item, settings)
    if product is None:
        backgrounds = shared.backgrounds if shared and shared.arrays else \
            [_opened_or_path(b) for b in item.backgrounds]
        target, backgrounds = prepare_inputs(target, list(backgrounds), settings.compat,
                                             strict=settings.strict)
        product = build_product(target, backgrounds, settings.params, settings.compat,
                                chunks=settings.chunks, shared=shared,
                                **_tile_budget(settings, job.inner))
    return BackgroundResult(product)


def _wfss_product(exposure, item: CampaignItem, settings: RunSettings):
    """The WFSS product of ``exposure``, or None when it is not a WFSS target."""
    if not exposure.meta.takes_wfss_path(settings.compat.compat):
        return None  # the imaging path never imports the WFSS package
    from ..wfss import WfssParams, build_wfss_product
    from ..wfss.errors import WfssParameterValueError

    w = settings.wfss
    if w.bkg_ref is None:
        raise WfssParameterValueError(
            f"{exposure.path}: WFSS target (EXP_TYPE {exposure.meta.exp_type}) needs a "
            "background reference image (--wfss-bkg-ref REF.fits)")
    if item.backgrounds:
        log.warning("%s: WFSS target: the background exposures are ignored (as in the "
                    "reference)", exposure.path)
    return build_wfss_product(
        exposure, bkg_ref=w.bkg_ref, wavelengthrange=w.wavelengthrange,
        source_catalog=item.sourcecat or w.source_catalog, source_mask=w.source_mask,
        source_boxes=w.source_boxes, params=WfssParams(**(w.params or {})),
        compat=settings.compat, chunks=settings.chunks)


def _stop_callback():
    """A dask callback that stops the computation once :data:`STOP` is set."""
    from dask.callbacks import Callback

    def pretask(key, dsk, state):
        if STOP.is_set():
            raise Stopped("campaign interrupted")

    return Callback(pretask=pretask)


def _progress_bar(job: ProductJob):
    import contextlib

    if not job.progress:
        return contextlib.nullcontext()
    import sys

    from dask.diagnostics import ProgressBar

    return ProgressBar(out=sys.stderr, minimum=1.0)


def _write(job: ProductJob, result, main, comb) -> list:
    """Compute the product and stream it into its files; return the files written."""
    from ..result import write_outputs

    settings = job.settings
    if result.product.combined is None:
        comb = None
    if settings.fmt == "zarr":
        writers = result.zarr_jobs(main, comb, shards=settings.shards)
    else:
        writers = result.fits_jobs(main, comb)
    with _stop_callback(), _progress_bar(job), inner_scheduler(job.inner) as scheduler:
        outputs = write_outputs(writers, scheduler=scheduler)
    if settings.wfss.save_boxes and result.product.info.get("wfss_boxes"):
        from ..wfss import save_wfss_boxes

        root, _ = job.item.output_root()
        boxes = save_wfss_boxes(result.product, settings.output_dir, root=root, overwrite=True)
        if boxes is not None:
            outputs.append(boxes)
    return outputs


def _state_of(status: str) -> str:
    """Campaign state of a written product from its ``S_BKDSUB``."""
    return {"COMPLETE": "done", "SKIPPED": "skipped"}.get(status, "failed")


def run_product(job: ProductJob, shared: SharedCombined | None = None) -> Outcome:
    """Make one product from start to finish and return its outcome (never raises).

    A product whose outputs are complete from an earlier run (same inputs, parameters
    and settings) is skipped when ``job.resume`` is set. Any failure becomes a failed
    outcome: bad input (exit code 2) or a runtime or internal failure (1, with the
    traceback in ``detail``). Only ``KeyboardInterrupt`` propagates.
    """
    item, settings = job.item, job.settings
    start = time.perf_counter()

    def seconds() -> float:
        return time.perf_counter() - start

    if item.error or item.target is None:
        return Outcome(item.name, "failed", reason=item.error or "no science member", code=2)
    try:
        if STOP.is_set():
            return interrupted(item.name)
        main, comb = output_paths(item, settings)
        key = product_key(item, settings)
        if job.resume:
            done = is_complete(settings.output_dir, main, key)
            if done is not None:
                return Outcome(item.name, "skipped", [as_input(p) for p in done],
                               reason="already complete (resume)",
                               seconds=seconds())
        result = _build_result(job, shared)
        outputs = _write(job, result, main, comb)
        status = result.status
        if status != "FAILED":  # a FAILED step (WFSS) is retried by the next run
            mark_done(settings.output_dir, main, key, item.name, outputs, status)
    except Stopped:
        return interrupted(item.name)
    except Exception as exc:  # noqa: BLE001 - every failure is this product's outcome
        return failure_outcome(item.name, exc, seconds())
    notes = "; ".join(result.product.notes) or None
    state = _state_of(status)
    combined = result.product.combined
    return Outcome(item.name, state, outputs, status=status, seconds=seconds(),
                   reason=notes if state != "done" else None,
                   combined_key=combined.image_key if combined is not None else None,
                   code=1 if state == "failed" else 0)


def _needs_work(item: CampaignItem, settings: RunSettings) -> bool:
    """False when the product is complete from an earlier run (resume)."""
    main, _ = output_paths(item, settings)
    try:
        return is_complete(settings.output_dir, main, product_key(item, settings)) is None
    except Exception:  # noqa: BLE001 - the product's own job reports it
        return True


def _compute_shared(lazy, settings: RunSettings, inner: str) -> SharedCombined:
    """Compute a combined background for the products sharing it.

    In a local output folder it is stored, tile by tile, in a scratch file under
    ``OUT/.daskbkg/shared/`` that the products read (deleted when the last of them is
    done); for an object-store output it is kept in memory.
    """
    from ..io.source import is_url

    if is_url(settings.output_dir):
        with _stop_callback(), inner_scheduler(inner) as scheduler:
            arrays = lazy.compute_arrays(scheduler=scheduler)
        return SharedCombined(lazy.image_key, arrays, lazy.backgrounds)
    import uuid

    import dask.array as da

    from ..io.scratch import create_scratch_file

    path = Path(settings.output_dir) / MARKER_DIR / "shared" / (
        f"{lazy.image_key}-{os.getpid()}-{uuid.uuid4().hex[:12]}.bin")
    stored = create_scratch_file(path, {name: (a.shape, a.dtype)
                                        for name, a in lazy.arrays.items()})
    try:
        with _stop_callback(), inner_scheduler(inner) as scheduler:
            da.store(list(lazy.arrays.values()), list(stored.values()), lock=False,
                     scheduler=scheduler)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return SharedCombined(lazy.image_key, stored, lazy.backgrounds, scratch=str(path))


def combine_group(items: tuple[CampaignItem, ...], settings: RunSettings,
                  resume: bool = True, inner: str = "sync") -> SharedCombined:
    """Compute the combined background shared by ``items`` (same background list).

    The geometry comes from the first target that opens and takes the imaging path.
    ``inner`` is the scheduler of its tiles (see :class:`ProductJob`): the products of
    the group wait for it, so it should use every thread it can.
    Nothing is computed when every product is already complete (``resume``). Never
    raises: a failure is returned as ``SharedCombined(error=...)`` and every product of
    the group then computes its own (and reports its own error).
    """
    from ..combine import build_combined_background
    from ..validate import prepare_inputs

    try:
        if resume and not any(_needs_work(item, settings) for item in items):
            return SharedCombined(error="every product of the group is complete")
        for item in items:
            try:
                target = open_exposure(item.target)
            except Exception:  # noqa: BLE001 - that product will report it
                continue
            if target.meta.takes_wfss_path(settings.compat.compat):
                continue
            backgrounds = [_opened_or_path(b) for b in item.backgrounds]
            target, backgrounds = prepare_inputs(target, backgrounds, settings.compat,
                                                 strict=settings.strict)
            lazy = build_combined_background(target, backgrounds, settings.params,
                                             settings.compat, chunks=settings.chunks,
                                             **_tile_budget(settings, inner))
            return _compute_shared(lazy, settings, inner)
        return SharedCombined(error="no target of the group takes the imaging path")
    except Exception as exc:  # noqa: BLE001 - the products compute their own
        text = str(exc).strip()
        return SharedCombined(error=text.splitlines()[0] if text else type(exc).__name__)

