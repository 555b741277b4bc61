"""Building a graph reads no pixel and computes nothing; graphs pickle; processes agree."""

from __future__ import annotations

import contextlib
import functools
import pickle
import threading
from collections import Counter

import cloudpickle
import dask
import dask.threaded
import numpy as np
import pytest
from helpers import Maker, assert_bits_equal

import daskbkg
from daskbkg.datasets import make_dataset
from daskbkg.io import fitsarray
from daskbkg.io.fitsarray import FitsArray, close_cached_files

FRAME = (24, 30)


class ReadSpy:
    """Count pixel reads per file (and the regions read); raise while ``forbid`` is set.

    Every reading entry point of :class:`FitsArray` that exists is wrapped
    (``__getitem__``, ``_read_direct``/``_read_raw``/``read_into``, ``runs`` (the byte
    runs of a region queued for the compiled reader) and the astropy fallback
    ``_read_section``), plus the module's hook into the compiled reader, so the spy keeps
    working when the reader's internals are reorganised.
    """

    METHODS = ("__getitem__", "_read_direct", "_read_raw", "read_into", "runs",
               "_read_section")

    def __init__(self, monkeypatch):
        self.forbid = False
        self.reads: Counter = Counter()
        self.regions: list = []
        self._lock = threading.Lock()
        spy = self

        def wrap(original, kind):
            def reader(self, *args, **kwargs):
                if spy.forbid:
                    raise AssertionError(f"pixel read ({kind}) while building the graph")
                with spy._lock:
                    spy.reads[(self.path, kind)] += 1
                    if kind != "__getitem__" and args:
                        spy.regions.append((self.path, tuple(args[0])))
                return original(self, *args, **kwargs)

            return reader

        for name in self.METHODS:
            if name in vars(FitsArray):
                monkeypatch.setattr(FitsArray, name, wrap(vars(FitsArray)[name], name))
        original_read = fitsarray._read_runs

        def pread(runs, *args):
            if spy.forbid:
                raise AssertionError("positional read while building the graph")
            with spy._lock:
                for array, *_ in runs:
                    spy.reads[(array.path, "pread")] += 1
            return original_read(runs, *args)

        monkeypatch.setattr(fitsarray, "_read_runs", pread)

    def count(self, path=None, kind=None):
        """Return the number of reads of ``kind`` (optionally of one file)."""
        return sum(n for (p, k), n in self.reads.items()
                   if (kind is None or k == kind) and (path is None or p == str(path)))

    @contextlib.contextmanager
    def forbidden(self):
        """Make every pixel read raise inside the block."""
        self.forbid = True
        try:
            yield
        finally:
            self.forbid = False


def _no_compute(*args, **kwargs):
    raise AssertionError("dask computed something while the graph was being built")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Write two rate targets sharing three backgrounds."""
    return make_dataset(tmp_path_factory.mktemp("lazy"), frame_shape=FRAME, n_backgrounds=3,
                        n_targets=2, seed=3)


@pytest.fixture(scope="module")
def data_ints(tmp_path_factory):
    """Write a rateints subarray target with two backgrounds."""
    return make_dataset(tmp_path_factory.mktemp("lazyints"), frame_shape=FRAME,
                        n_backgrounds=2, rateints=True, nints=2, target_subarray=(3, 2, 20, 12),
                        seed=4)


@pytest.fixture
def spy(monkeypatch):
    """Fresh read counter (file cache emptied first)."""
    close_cached_files()
    return ReadSpy(monkeypatch)


def _touch_everything(result):
    """Access every lazy attribute of a result without computing."""
    arrays = [result.sci, result.err, result.dq]
    comb = result.combined_background
    if comb is not None:
        arrays += [comb.sci, comb.err, comb.dq, comb.nbkg]
        assert comb.key
    for a in arrays:
        assert a.shape and a.dtype and a.chunks
        a.__dask_graph__()
    assert result.status in ("COMPLETE", "SKIPPED")
    repr(result)
    return arrays


@pytest.mark.parametrize("which", ["rate", "rateints"])
def test_building_reads_no_pixel(request, spy, which):
    """Graph construction and attribute access read no pixel and compute nothing."""
    d = request.getfixturevalue("data" if which == "rate" else "data_ints")
    target, bkgs = d.targets[0], list(d.backgrounds)
    with spy.forbidden(), dask.config.set(scheduler=_no_compute):
        result = daskbkg.subtract_background(target, bkgs, chunks=(5, 7))
        arrays = _touch_everything(result)
        comb = daskbkg.combine_backgrounds(bkgs, target=target)
        comb.sci.__dask_graph__()
        # slicing and arithmetic stay lazy too
        (result.sci[..., 1:3, 2:4] + 1).sum()
    assert spy.count() == 0
    out = result.compute()
    assert spy.count(kind="pread") > 0
    assert spy.count(target) > 0
    for path in bkgs:
        assert spy.count(path) > 0
    assert out.sci.shape == arrays[0].shape


def test_spy_catches_reads(data, spy):
    """The spy is effective: any read path raises while forbidden and is counted after."""
    exposure = daskbkg.read_exposure(data.targets[0])
    with spy.forbidden():
        with pytest.raises(AssertionError, match="while building"):
            exposure.sci[0:2, 0:3]
        with pytest.raises(AssertionError, match="while building"):
            np.asarray(exposure.dq)
    assert spy.count() == 0
    exposure.err[0:2, 0:3]
    assert spy.count(data.targets[0], kind="pread") > 0


def test_building_result_writers_reads_no_pixel(data, spy, tmp_path):
    """Preparing deferred FITS and zarr writers reads nothing either."""
    target, bkgs = data.targets[0], list(data.backgrounds)
    with spy.forbidden(), dask.config.set(scheduler=_no_compute):
        result = daskbkg.subtract_background(target, bkgs)
        jobs = result.fits_jobs(tmp_path / "a.fits", tmp_path / "b.fits")
    assert spy.count() == 0
    for job in jobs:
        job.abort()  # remove the prepared temporary files


def test_graph_is_deterministic(data):
    """Equal inputs give equal graph keys; other parameters change them."""
    target, bkgs = data.targets[0], list(data.backgrounds)
    a = daskbkg.subtract_background(target, bkgs, chunks=(5, 7))
    b = daskbkg.subtract_background(target, bkgs, chunks=(5, 7))
    assert a.sci.name == b.sci.name and a.dq.name == b.dq.name
    assert a.combined_background.key == b.combined_background.key
    c = daskbkg.subtract_background(target, bkgs, sigma=2.5, chunks=(5, 7))
    assert c.combined_background.key != a.combined_background.key


def test_non_overlapping_background_is_never_read(spy, tmp_path):
    """A background that does not overlap is never read."""
    mk = Maker(tmp_path)
    target = mk.const((6, 7), 100.0)
    near = mk.const((6, 7), 10.0)
    far = mk.const((6, 7), 50.0, substrt=(8, 1))  # touches the edge only
    with spy.forbidden():
        result = daskbkg.subtract_background(target, [near, far])
    out = result.compute()
    assert (out.sci == 90.0).all()
    assert spy.count(far) == 0 and spy.count(near) > 0


def test_background_reads_stay_inside_the_overlap(spy, data_ints):
    """Full-frame backgrounds are read only in the subarray target's window."""
    target, bkgs = data_ints.targets[0], list(data_ints.backgrounds)
    daskbkg.subtract_background(target, bkgs, chunks=(4, 8)).compute()
    rows, cols = range(1, 13), range(2, 22)  # target window (3, 2, 20, 12), 0-based
    seen = 0
    for path, key in spy.regions:
        if path not in {str(b) for b in bkgs}:
            continue
        seen += 1
        row_slice, col_slice = key[-2], key[-1]
        assert isinstance(row_slice, slice) and isinstance(col_slice, slice)
        assert row_slice.start in rows and row_slice.stop - 1 in rows
        assert col_slice.start in cols and col_slice.stop - 1 in cols
    assert seen > 0


def test_shared_combined_background_is_read_once(data, spy):
    """Two targets with the same backgrounds and window share one combined background."""
    bkgs = list(data.backgrounds)
    r1 = daskbkg.subtract_background(data.targets[0], bkgs, chunks=(6, -1))
    r2 = daskbkg.subtract_background(data.targets[1], bkgs, chunks=(6, -1))
    assert r1.combined_background.key == r2.combined_background.key
    dask.compute(r1.sci)
    single = sum(spy.count(b) for b in bkgs)
    spy.reads.clear()
    dask.compute(r1.sci, r2.sci, r1.dq, r2.dq)
    assert sum(spy.count(b) for b in bkgs) == single


# =============================================================================== pickling


def test_readers_and_graph_pickle(data):
    """The graph, its readers and ``result.sci`` survive pickling."""
    target, bkgs = data.targets[0], list(data.backgrounds)
    result = daskbkg.subtract_background(target, bkgs, chunks=(5, 7))
    graph = dict(result.sci.__dask_graph__())
    graph.update(result.dq.__dask_graph__())
    restored = pickle.loads(pickle.dumps(graph))
    assert set(restored) == set(graph)
    readers = [v for v in graph.values() if not hasattr(v, "__dask_graph__")
               and type(v).__name__ in ("FitsArray", "BackgroundStack")]
    # The background stacks are read inside the combine tasks (one task reads and combines).
    readers += [stack for v in graph.values() if isinstance(v, tuple) and v
                and isinstance(v[0], functools.partial)
                for stack in v[0].keywords.get("stacks", ())][:3]
    assert {type(r).__name__ for r in readers} == {"FitsArray", "BackgroundStack"}
    for reader in readers:
        clone = pickle.loads(pickle.dumps(reader))
        assert repr(clone) == repr(reader)  # (NaN fill values make == False)
        assert_bits_equal(clone[..., 0:3, 0:4], reader[..., 0:3, 0:4])
    sci = cloudpickle.loads(cloudpickle.dumps(result.sci))
    assert_bits_equal(sci.compute(scheduler="synchronous"), result.sci.compute())
    exposure = pickle.loads(pickle.dumps(daskbkg.read_exposure(target)))
    assert exposure.sci.shape == FRAME


@pytest.mark.parametrize("which", ["rate", "rateints"])
def test_processes_scheduler_identical_bits(request, which, tmp_path):
    """The processes scheduler gives the threaded result's bits."""
    d = request.getfixturevalue("data" if which == "rate" else "data_ints")
    target, bkgs = d.targets[0], list(d.backgrounds)
    result = daskbkg.subtract_background(target, bkgs, chunks=(8, -1))
    threads = result.compute(scheduler="threads")
    procs = result.compute(scheduler="processes", num_workers=2)
    for name in ("sci", "err", "dq"):
        assert_bits_equal(getattr(procs, name), getattr(threads, name))
    for name in ("SCI", "ERR", "DQ", "NBKG"):
        assert_bits_equal(procs.combined[name], threads.combined[name])
    if which == "rate":
        from astropy.io import fits

        result.to_fits(tmp_path / "p.fits", scheduler="processes", num_workers=2)
        with fits.open(tmp_path / "p.fits") as hdul:
            assert_bits_equal(hdul["SCI"].data.astype(np.float32), threads.sci)
            assert_bits_equal(hdul["DQ"].data, threads.dq)


def test_given_combined_arrays_are_used_without_a_copy(data):
    """A combined background computed once and handed to other products is not copied.

    Products sharing it run side by side; a copy each cost 64 MiB for a 2048² image.
    """
    bkgs = list(data.backgrounds)
    comb = daskbkg.subtract_background(data.targets[0], bkgs, chunks=(6, -1)).combined_background
    arrays = comb.compute_arrays(scheduler="sync")
    given = comb.with_arrays(arrays)
    for name, lazy in given.arrays.items():
        first = dask.local.get_sync(dict(lazy.__dask_graph__()), (lazy.name, 0, 0))
        assert np.shares_memory(first, arrays[name]), name
        assert_bits_equal(lazy.compute(scheduler="sync"), arrays[name])


@pytest.mark.parametrize("scheduler", ["sync", "threads", "processes"])
def test_combined_arrays_are_the_same_on_every_scheduler(data, scheduler):
    """Combined arrays are the same on in-process and out-of-process schedulers.

    In-process schedulers fill preallocated results tile by tile; the others gather the
    blocks (stores there would fill copies).
    """
    from daskbkg.combine import _runs_in_this_process

    bkgs = list(data.backgrounds)
    comb = daskbkg.subtract_background(data.targets[0], bkgs, chunks=(6, -1)).combined_background
    lazy = list(comb.arrays.values())
    assert _runs_in_this_process(scheduler, lazy) == (scheduler != "processes")
    assert _runs_in_this_process(functools.partial(dask.threaded.get, num_workers=2), lazy)
    expected = dask.compute(*lazy, scheduler="sync")
    got = comb.compute_arrays(scheduler=scheduler)
    for value, (name, array) in zip(expected, got.items()):
        assert_bits_equal(array, value)
