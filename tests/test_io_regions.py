"""Regional reads of one image HDU equal astropy's values, whatever the region and buffer.

The direct reader decodes the big-endian bytes through a small per-thread buffer; these
tests make that buffer a few values long so that runs are split at every possible place,
and compare each region with astropy's decoding of the whole HDU (cast as the data
models cast it).
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from astropy.io import fits
from helpers import assert_bits_equal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daskbkg.io import fitsarray
from daskbkg.io.layout import scan_fits

#: numpy dtypes astropy stores plainly or as sign-flipped (BZERO) pseudo-unsigned values.
STORED = ["float32", "float64", "int16", "int32", "uint16", "uint32", "uint8", "int8"]


def _write_cube(path, data):
    hdu = fits.ImageHDU(data, name="SCI")
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path, overwrite=True)


def _region(draw, shape):
    slices = []
    for n in shape:
        start = draw(st.integers(0, n - 1))
        slices.append(slice(start, draw(st.integers(start + 1, n))))
    return tuple(slices)


@st.composite
def cases(draw):
    shape = tuple(draw(st.integers(1, 6)) for _ in range(draw(st.integers(1, 3))))
    dtype = np.dtype(draw(st.sampled_from(STORED)))
    n = int(np.prod(shape))
    if dtype.kind == "f":
        values = draw(st.lists(st.floats(width=32, allow_nan=True, allow_infinity=True),
                               min_size=n, max_size=n))
    else:
        info = np.iinfo(dtype)
        values = draw(st.lists(st.integers(int(info.min), int(info.max)), min_size=n,
                               max_size=n))
    scratch = draw(st.sampled_from([8, 16, 24, 1 << 20]))
    return np.array(values, dtype=dtype).reshape(shape), _region(draw, shape), scratch


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(cases())
def test_region_reads_equal_astropy(tmp_path, monkeypatch, case):
    data, region, scratch = case
    path = tmp_path / "cube.fits"
    _write_cube(path, data)
    fitsarray.close_cached_files()
    monkeypatch.setattr(fitsarray, "_SCRATCH_BYTES", scratch)
    monkeypatch.setattr(fitsarray, "_local", threading.local())
    array = scan_fits(path).array("SCI")
    with fits.open(path) as hdul:
        expected = np.asarray(hdul["SCI"].data)[region]
    got = array[region]
    assert got.dtype == expected.dtype.newbyteorder("=")
    assert_bits_equal(got, expected.astype(got.dtype))
    # Into a non-contiguous destination (the general decoding route).
    wide = np.zeros(tuple(s.stop - s.start for s in region) + (2,), dtype=got.dtype)
    array.read_into(region, wide[..., 0])
    assert_bits_equal(wide[..., 0], got)


@pytest.mark.parametrize("dtype", ["float32", "uint32"])
def test_large_region_spans_many_buffers(tmp_path, monkeypatch, dtype):
    """A region of several buffers' worth, read from two threads at once, is exact."""
    rng = np.random.default_rng(5)
    data = rng.integers(0, 2**32, (3, 40, 50), dtype=np.uint32)
    data = data.view(np.float32) if dtype == "float32" else data
    path = tmp_path / "big.fits"
    _write_cube(path, data)
    fitsarray.close_cached_files()
    monkeypatch.setattr(fitsarray, "_SCRATCH_BYTES", 400)
    array = scan_fits(path).array("SCI")
    regions = [(slice(0, 3), slice(r, r + 10), slice(0, 50)) for r in range(0, 40, 10)]
    results = {}

    def read(region):
        results[region[1].start] = array[region]

    threads = [threading.Thread(target=read, args=(r,)) for r in regions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for region in regions:
        assert_bits_equal(results[region[1].start], data[region])
