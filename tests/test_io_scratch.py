"""Scratch arrays on disk: regions written and read back give the same bits."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from helpers import assert_bits_equal

from daskbkg.io.scratch import create_scratch_file


def test_regions_round_trip_through_the_file(tmp_path):
    rng = np.random.default_rng(2)
    values = {"SCI": rng.normal(size=(9, 13)).astype(np.float32),
              "DQ": rng.integers(0, 2**32, (9, 13), dtype=np.uint32),
              "NBKG": rng.integers(-5, 50, (9, 13), dtype=np.int32)}
    values["SCI"][2, 3] = np.uint32(0xFFC00000).view(np.float32)  # a NaN's payload is kept
    stored = create_scratch_file(tmp_path / "s" / "a.bin",
                                 {k: (v.shape, v.dtype) for k, v in values.items()})
    assert (tmp_path / "s" / "a.bin").stat().st_size == sum(v.nbytes for v in values.values())
    for name, value in values.items():  # full-width strips and partial-width blocks
        target = stored[name]
        for rows in (slice(0, 4), slice(4, 9)):
            target[rows, :7] = value[rows, :7]
            target[rows, 7:] = value[rows, 7:]
    copies = pickle.loads(pickle.dumps(stored))  # what a worker receives
    for name, value in values.items():
        assert_bits_equal(copies[name][...], value)
        assert_bits_equal(copies[name][3:8, 2:11], value[3:8, 2:11])
        assert_bits_equal(copies[name][5], value[5])


def test_a_short_file_is_an_error(tmp_path):
    stored = create_scratch_file(tmp_path / "b.bin", {"SCI": ((4, 4), np.float32)})
    with open(tmp_path / "b.bin", "r+b") as f:
        f.truncate(20)
    with pytest.raises(OSError, match="b.bin: cannot read the scratch array"):
        stored["SCI"][2:4]
