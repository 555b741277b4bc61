"""Deterministic task definitions: no "different `run_spec`" warnings on a real Client."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from helpers import assert_bits_equal

import daskbkg

distributed = pytest.importorskip("distributed")


class _Capture(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture
def client():
    capture = _Capture()
    logger = logging.getLogger("distributed.scheduler")
    logger.addHandler(capture)
    try:
        with distributed.LocalCluster(processes=False, n_workers=1, threads_per_worker=2,
                                      dashboard_address="127.0.0.1:0") as cluster, \
                distributed.Client(cluster) as c:
            c.captured = capture.messages
            yield c
    finally:
        logger.removeHandler(capture)


@pytest.mark.parametrize("shape", [(24, 10), (2, 24, 10)], ids=["rate", "rateints"])
def test_recomputing_parts_gives_no_run_spec_warning(inputs, client, shape, tmp_path):
    rng = np.random.default_rng(3)
    target = inputs(rng.normal(5, 1, shape).astype(np.float32), dq=2)
    bkgs = [inputs(rng.normal(1, 1, shape).astype(np.float32)) for _ in range(3)]
    result = daskbkg.subtract_background(target, bkgs, chunks=(8, -1))
    held = result.persist()  # every output stays in the scheduler's memory meanwhile
    distributed.wait([held.sci, held.combined_background.nbkg])
    whole = result.compute()
    sci = result.sci.compute()
    dq = result.dq.compute()
    nbkg = result.combined_background.nbkg.compute()
    result.to_fits(tmp_path / "out.fits", combined_path=tmp_path / "comb.fits")
    again = result.compute()
    assert not [m for m in client.captured if "run_spec" in m], client.captured
    del held
    reference = result.compute(scheduler="synchronous")
    assert_bits_equal(whole.sci, reference.sci)
    assert_bits_equal(sci, reference.sci)
    assert_bits_equal(dq, reference.dq)
    assert_bits_equal(nbkg, reference.combined["NBKG"])
    assert_bits_equal(again.combined["SCI"], reference.combined["SCI"])


@pytest.mark.parametrize("shape", [(24, 10), (2, 24, 10)], ids=["rate", "rateints"])
@pytest.mark.parametrize("propagate_err", [False, True])
def test_every_key_has_one_task_definition_whatever_is_computed(inputs, shape, propagate_err):
    """Optimised graphs of the whole result and of each output agree on every shared key."""
    import itertools

    from dask.base import collections_to_expr, tokenize

    rng = np.random.default_rng(5)
    target = inputs(rng.normal(5, 1, shape).astype(np.float32))
    bkgs = [inputs(rng.normal(1, 1, shape).astype(np.float32)) for _ in range(2)]
    result = daskbkg.subtract_background(target, bkgs, chunks=(8, -1),
                                         propagate_err=propagate_err)
    requests = {"result": result, **result.arrays()}
    specs = {}
    for name, collection in requests.items():
        graph = collections_to_expr([collection], optimize_graph=True).optimize().__dask_graph__()
        specs[name] = {key: tokenize(task) for key, task in dict(graph).items()}
    assert len(specs["result"]) > len(specs["sci"]) > 3
    for a, b in itertools.combinations(specs, 2):
        shared = set(specs[a]) & set(specs[b])
        assert [k for k in shared if specs[a][k] != specs[b][k]] == [], (a, b)


def test_capture_sees_the_warning_without_fusion_units(client):
    """The check above can fail: plain dask arrays recomputed in parts do warn."""
    import dask.array as da

    x = da.ones((40, 30), chunks=10)
    y = x + 1
    z = y * 2
    held = client.compute([y, z])  # keep both in the scheduler's memory
    distributed.wait(held)
    z.compute()
    assert any("run_spec" in m for m in client.captured)
    del held
