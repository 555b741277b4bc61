"""Regional reads equal astropy's values, whatever the region, the storage and the batch.

The direct reader (:class:`daskbkg.io.fitsarray.RunBatch` over the compiled
``daskbkg.io._readruns``) reads lists of byte runs, possibly of several files, and
decodes them in place. These tests compare its regions with astropy's decoding of the
whole HDU, check the compiled reader's own contract (decoding of every width, end of
file, bad descriptors, runs outside the buffer), and read from several threads at once.
"""

from __future__ import annotations

import dataclasses
import os
import threading

import numpy as np
import pytest
from astropy.io import fits
from daskbkg.io._readruns import read_runs
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
    return np.array(values, dtype=dtype).reshape(shape), _region(draw, shape)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(cases())
def test_region_reads_equal_astropy(tmp_path, case):
    data, region = case
    path = tmp_path / "cube.fits"
    _write_cube(path, data)
    fitsarray.close_cached_files()
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
def test_regions_read_from_several_threads(tmp_path, dtype):
    """Regions of one file read by four threads at once are exact."""
    rng = np.random.default_rng(5)
    data = rng.integers(0, 2**32, (3, 40, 50), dtype=np.uint32)
    data = data.view(np.float32) if dtype == "float32" else data
    path = tmp_path / "big.fits"
    _write_cube(path, data)
    fitsarray.close_cached_files()
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


def test_one_batch_reads_files_of_mixed_storage(tmp_path):
    """Several files (plain, sign-flipped, float64) in one batch give astropy's values."""
    rng = np.random.default_rng(8)
    stored = {"a": rng.normal(size=(6, 7)).astype(np.float32),
              "b": rng.integers(0, 2**32, (6, 7), dtype=np.uint32),
              "c": rng.normal(size=(6, 7)),
              "d": rng.integers(0, 2**16, (6, 7), dtype=np.uint16)}
    arrays = {}
    for name, data in stored.items():
        _write_cube(tmp_path / f"{name}.fits", data)
        arrays[name] = scan_fits(tmp_path / f"{name}.fits").array("SCI")
    region = (slice(2, 5), slice(0, 7))
    out = {"f4": np.zeros((2, 3, 7), np.float32), "u4": np.zeros((1, 3, 7), np.uint32),
           "u2": np.zeros((1, 3, 7), np.uint16)}
    batch = fitsarray.RunBatch(out["f4"])
    assert batch.add(arrays["a"], region, out["f4"][0])
    assert not batch.add(arrays["c"], region, out["f4"][1])  # float64: decoded by NumPy
    batch.read()
    with pytest.warns(RuntimeWarning, match="not exactly representable"):
        arrays["c"].read_into(region, out["f4"][1])
    for key, name in (("u4", "b"), ("u2", "d")):
        other = fitsarray.RunBatch(out[key])
        assert other.add(arrays[name], region, out[key][0])
        other.read()
    assert_bits_equal(out["f4"][0], stored["a"][region])
    assert_bits_equal(out["f4"][1], stored["c"][region].astype(np.float32))
    assert_bits_equal(out["u4"][0], stored["b"][region])
    assert_bits_equal(out["u2"][0], stored["d"][region])


@pytest.mark.parametrize("width", [1, 2, 4, 8])
def test_compiled_reader_decodes_each_width(tmp_path, width):
    """Byte swap and mask of every width equal NumPy's; runs land at their offsets."""
    rng = np.random.default_rng(width)
    raw = rng.integers(0, 256, 64 * width, dtype=np.uint8)
    path = tmp_path / "bytes.bin"
    path.write_bytes(raw.tobytes())
    mask = 1 << (8 * width - 1)
    fd = os.open(path, os.O_RDONLY)
    try:
        out = np.zeros(40 * width, dtype=np.uint8)
        runs = np.array([[3 * width, 16 * width, 0], [40 * width, 24 * width, 16 * width]],
                        dtype=np.int64).T.copy()
        status = read_runs(np.array([fd, fd], np.int32), runs[0], runs[1], runs[2], out, width,
                           True, mask)
    finally:
        os.close(fd)
    assert status == (0, -1, 0)
    expected = np.concatenate([raw[3 * width:19 * width], raw[40 * width:64 * width]])
    values = expected.view(f">u{width}").astype(f"=u{width}") ^ np.array(mask, f"=u{width}")
    assert_bits_equal(out.view(f"=u{width}"), values)


def test_compiled_reader_reports_end_of_file_and_bad_descriptors(tmp_path):
    path = tmp_path / "short.bin"
    path.write_bytes(bytes(range(16)))
    out = np.zeros(32, np.uint8)
    fd = os.open(path, os.O_RDONLY)
    try:
        one = np.array([0], np.int64)
        status = read_runs(np.array([fd], np.int32), np.array([8], np.int64),
                           np.array([16], np.int64), one, out, 1, False, 0)
        assert status == (1, 0, 0)
        with pytest.raises(ValueError, match="does not fit"):
            read_runs(np.array([fd], np.int32), one, np.array([8], np.int64),
                      np.array([30], np.int64), out, 1, False, 0)
        with pytest.raises(ValueError, match="itemsize"):
            read_runs(np.array([fd], np.int32), one, one, one, out, 3, False, 0)
    finally:
        os.close(fd)
    status, run, error = read_runs(np.array([fd], np.int32), np.array([0], np.int64),
                                   np.array([4], np.int64), np.array([0], np.int64), out, 1,
                                   False, 0)
    assert (status, run) == (2, 0) and error != 0  # the descriptor is closed


def test_truncated_data_is_reported_with_the_file_name(tmp_path):
    data = np.arange(200, dtype=np.float32).reshape(10, 20)
    path = tmp_path / "cut.fits"
    _write_cube(path, data)
    array = scan_fits(path).array("SCI")
    blob = path.read_bytes()
    path.write_bytes(blob[:array.data_offset + 400])
    fitsarray.close_cached_files()
    st = os.stat(path)  # the array as scanned, with the file's new size and time
    cut = dataclasses.replace(array, size=st.st_size, mtime_ns=st.st_mtime_ns)
    assert_bits_equal(cut[0:5], data[0:5])
    with pytest.raises(OSError, match="cut.fits: unexpected end of file"):
        cut[4:7]


def test_descriptors_in_use_are_never_closed(tmp_path, monkeypatch):
    """Descriptors held by a read survive evictions caused by other reads.

    With a cache of one descriptor, files opened while a read holds its descriptors
    evict only idle ones; the cache shrinks back once the read is done.
    """
    arrays = []
    for i in range(4):
        _write_cube(tmp_path / f"f{i}.fits", np.full((3, 4), i, dtype=np.float32))
        arrays.append(scan_fits(tmp_path / f"f{i}.fits").array("SCI"))
    fitsarray.close_cached_files()
    monkeypatch.setattr(fitsarray, "_MAX_OPEN", 1)
    with fitsarray._descriptors(arrays[:2]) as fds:
        for i, array in enumerate(arrays[2:], start=2):
            assert_bits_equal(array[...], np.full((3, 4), i, dtype=np.float32))
        for fd, array in zip(fds, arrays[:2]):
            assert os.path.samestat(os.fstat(fd), os.stat(array.path))
    assert len(fitsarray._fds) == 1 and not fitsarray._busy
    for i, array in enumerate(arrays):
        assert_bits_equal(array[1:3, 1:], np.full((2, 3), i, dtype=np.float32))
