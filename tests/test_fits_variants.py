"""Every valid FITS representation of an exposure gives the canonical file's outputs.

The oracle is astropy plus the data models' cast: a variant file (float64 SCI, uint8 DQ,
scaled integers, ...) is read by astropy, its values are cast to float32/uint32 with
``numpy.asarray`` (what the reference's data models do), and those values are written as
a canonical float32/uint32 file. daskbkg must give bit-identical results for both.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from helpers import assert_bits_equal, write
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from output_checks import check_fits

import daskbkg

#: Storage of SCI/ERR: (name, numpy dtype written, BSCALE, BZERO) - scaled ones via astropy.
FLOAT_REPRS = {
    "f4": ("float32", None, None),
    "f8": ("float64", None, None),
    "i2": ("int16", None, None),
    "i2-scaled": ("int16", 0.25, 7.0),
    "i4-scaled": ("int32", 2.0**-10, -3.0),
}
#: Storage of DQ: numpy dtype written (astropy adds BZERO for the unsigned ones).
DQ_REPRS = {"u1": "uint8", "i2": "int16", "u2": "uint16", "i4": "int32", "u4": "uint32",
            "i8": "int64", "u8": "uint64"}


def _float_values(draw, shape, repr_name):
    dtype, bscale, bzero = FLOAT_REPRS[repr_name]
    n = int(np.prod(shape))
    if dtype.startswith("float"):
        width = 32 if dtype == "float32" else 64
        values = draw(st.lists(st.floats(-1e4, 1e4, width=width, allow_nan=False) | st.just(np.nan),
                               min_size=n, max_size=n))
        return np.array(values, dtype=dtype).reshape(shape)
    info = np.iinfo(dtype)
    raw = draw(st.lists(st.integers(max(info.min, -30000), min(info.max, 30000)),
                        min_size=n, max_size=n))
    return np.array(raw, dtype=dtype).reshape(shape)


def _dq_values(draw, shape, repr_name):
    dtype = np.dtype(DQ_REPRS[repr_name])
    info = np.iinfo(dtype)
    n = int(np.prod(shape))
    top = min(info.max, 2**32 - 1)
    low = 0 if dtype.kind == "u" else info.min if dtype.itemsize < 4 else -(2**31)
    raw = draw(st.lists(st.integers(low, top), min_size=n, max_size=n))
    return np.array(raw, dtype=dtype).reshape(shape)


def _image(data, header, repr_name=None):
    """An IMAGE HDU of ``data`` with ``header``'s cards (scaled per FLOAT_REPRS)."""
    header = header.copy()
    for key in ("BSCALE", "BZERO", "BLANK"):
        header.remove(key, ignore_missing=True)
    hdu = fits.ImageHDU(data, header=header)
    if repr_name in FLOAT_REPRS:
        _dtype, bscale, bzero = FLOAT_REPRS[repr_name]
        if bscale is not None:
            hdu = fits.ImageHDU(data.astype(np.float64) * bscale + bzero, header=header)
            hdu.scale(str(data.dtype), bscale=bscale, bzero=bzero)
    return hdu


def _replace(template: Path, dest: Path, arrays: dict, reprs: dict | None = None) -> None:
    """Copy ``template`` to ``dest`` with SCI/ERR/DQ data replaced."""
    with fits.open(template) as hdul:
        new = []
        for hdu in hdul:
            if hdu.name in arrays:
                new.append(_image(arrays[hdu.name], hdu.header,
                                  (reprs or {}).get(hdu.name)))
            else:
                new.append(hdu.copy())
        fits.HDUList(new).writeto(dest)


def _working(path: Path) -> dict:
    """The reference's view: astropy's values cast as the data models cast them."""
    with fits.open(path) as hdul:
        return {"SCI": np.asarray(hdul["SCI"].data, dtype=np.float32),
                "ERR": np.asarray(hdul["ERR"].data, dtype=np.float32),
                "DQ": np.asarray(hdul["DQ"].data, dtype=np.uint32)}


#: File-level variants the reference reads like the plain file.
CONTAINERS = ("plain", "gzip", "tile", "shuffled", "extra", "trailing-zeros", "trailing-junk",
              "nopad", "nonascii")
_MARK = b"cafe-XYZ"


def _tile(hdu):
    """A tile-compressed copy of an image HDU (left plain if astropy cannot compress it)."""
    try:
        return fits.CompImageHDU(hdu.data, header=hdu.header, compression_type="GZIP_1")
    except Exception:  # noqa: BLE001 - e.g. a data type the tile codec does not take
        return hdu


def _rebuild(path: Path, how: str) -> None:
    """Rewrite ``path`` in place with its HDUs compressed, shuffled or extended."""
    with fits.open(path) as hdul:
        hdus = [h.copy() for h in hdul]
        for h in hdus:
            _ = h.data  # load before the file closes
    primary, rest = hdus[0], hdus[1:]
    if how == "tile":
        rest = [_tile(h) if h.name in ("SCI", "ERR", "DQ", "VAR_POISSON") else h for h in rest]
    elif how == "shuffled":
        rest = rest[::-1]
        for h in rest:
            h.header["EXTNAME"] = h.header["EXTNAME"].lower()
    elif how == "extra":
        junk = np.full(rest[0].data.shape, 123.0, np.float32)
        later = fits.ImageHDU(junk, name="SCI")  # a second SCI, EXTVER 1: never read
        later.header["EXTVER"] = 1
        rest = ([fits.ImageHDU(junk, name="NOTES")] + rest[:1] + [later]
                + [fits.ImageHDU(junk, name="SCI", ver=2)] + rest[1:])
    elif how == "nonascii":
        primary.header.add_history(_MARK.decode())
        rest[0].header.add_history(_MARK.decode())
    fits.HDUList([primary] + rest).writeto(path, overwrite=True)


def _contain(path: Path, how: str) -> Path:
    """Apply one of CONTAINERS to a written file; return the path to read."""
    import gzip

    if how in ("tile", "shuffled", "extra", "nonascii"):
        _rebuild(path, how)
    data = path.read_bytes()
    if how == "gzip":
        gz = path.with_name(path.name + ".gz")
        gz.write_bytes(gzip.compress(data))
        path.unlink()
        return gz
    if how == "trailing-zeros":
        data += bytes(2880)
    elif how == "trailing-junk":
        data += b"junk" * 50
    elif how == "nopad":
        with fits.open(path) as hdul:
            info = hdul.fileinfo(len(hdul) - 1)
            h = hdul[-1].header
            size = abs(h["BITPIX"]) // 8 * h.get("GCOUNT", 1) * (
                h.get("PCOUNT", 0) + int(np.prod([h[f"NAXIS{i + 1}"] for i in range(h["NAXIS"])])))
        data = data[: info["datLoc"] + size]
    elif how == "nonascii":
        data = data.replace(_MARK, b"caf\xe9-XYZ")
    path.write_bytes(data)
    return path


@st.composite
def exposures(draw):
    """(shape, [per file: (reprs, arrays)]) for a target and 1-3 backgrounds."""
    shape = (draw(st.integers(2, 4)), draw(st.integers(2, 5)))
    files = []
    for _ in range(1 + draw(st.integers(1, 3))):
        reprs = {"file": draw(st.sampled_from(CONTAINERS)),
                 "SCI": draw(st.sampled_from(sorted(FLOAT_REPRS))),
                 "ERR": draw(st.sampled_from(sorted(FLOAT_REPRS))),
                 "DQ": draw(st.sampled_from(sorted(DQ_REPRS)))}
        arrays = {"SCI": _float_values(draw, shape, reprs["SCI"]),
                  "ERR": np.abs(_float_values(draw, shape, reprs["ERR"])),
                  "DQ": _dq_values(draw, shape, reprs["DQ"])}
        files.append((reprs, arrays))
    return shape, files


def _outputs(target, backgrounds, folder: Path, tag: str) -> dict:
    result = daskbkg.subtract_background(target, backgrounds)
    computed = result.compute(scheduler="sync")
    path = folder / f"{tag}_bsub.fits"
    result.to_fits(path, scheduler="sync")
    with fits.open(path) as hdul:
        written = {name: np.array(hdul[name].data) for name in ("SCI", "ERR", "DQ")}
    return {"sci": computed.sci, "err": computed.err, "dq": computed.dq, "file": written}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(exposures())
def test_every_representation_gives_the_canonical_outputs(case):
    """Variant files and their canonical float32/uint32 twins give identical bits."""
    shape, files = case
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        variants, canonical, inexact = [], [], []
        for i, (reprs, arrays) in enumerate(files):
            template = write(folder, np.zeros(shape, np.float32), name=f"t{i}_rate.fits")
            variant = folder / f"v{i}_rate.fits"
            _replace(template, variant, arrays, reprs)
            variant = _contain(variant, reprs["file"])
            working = _working(variant)
            canon = folder / f"c{i}_rate.fits"
            _replace(template, canon, working)
            variants.append(variant)
            canonical.append(canon)
            if reprs["file"] in ("gzip", "tile"):
                continue  # the per-value precision check below reads plain files only
            with fits.open(variant) as hdul:
                for name in ("SCI", "ERR"):
                    values = hdul[name].data
                    if values.dtype.itemsize > 4 or values.dtype.kind in "iu":
                        back = working[name].astype(values.dtype)
                        if not np.array_equal(back, values, equal_nan=True):
                            inexact.append(f"{variant}: {name} extension")
        expected = _outputs(canonical[0], canonical[1:], folder, "canon")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            actual = _outputs(variants[0], variants[1:], folder, "variant")
        for key in ("sci", "err", "dq"):
            assert_bits_equal(actual[key], expected[key])
        for name in ("SCI", "ERR", "DQ"):
            assert_bits_equal(actual["file"][name], expected["file"][name])
        check_fits(folder / "variant_bsub.fits")
        messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
        for where in inexact:
            assert any(m.startswith(where) for m in messages), (where, messages)


def test_float64_background_is_rounded_like_the_reference(inputs, tmp_path):
    """A float64 background SCI is rounded to float32 (not reinterpreted), with one warning."""
    target = inputs(np.full((3, 4), 100.0, np.float32))
    values = np.full((3, 4), 1.0 + 2.0**-40)  # not a float32
    bkg = inputs(np.zeros((3, 4), np.float32), name="wide_rate.fits")
    wide = tmp_path / "in" / "wide64_rate.fits"
    _replace(bkg, wide, {"SCI": values})
    with pytest.warns(RuntimeWarning, match=r"wide64_rate\.fits: SCI extension .*float64"):
        out = daskbkg.subtract_background(target, [wide]).compute(scheduler="sync")
    assert_bits_equal(out.sci, np.full((3, 4), np.float32(99.0)))


def test_uint8_dq_bits_are_kept(inputs, tmp_path):
    """An 8-bit DQ background is widened, not reinterpreted: its bits reach the OR."""
    target = inputs(np.full((2, 3), 5.0, np.float32), dq=np.uint32(2**31))
    bkg = inputs(np.ones((2, 3), np.float32), name="b8_rate.fits")
    narrow = tmp_path / "in" / "b8u_rate.fits"
    dq = np.arange(6, dtype=np.uint8).reshape(2, 3) * 40
    _replace(bkg, narrow, {"DQ": dq})
    out = daskbkg.subtract_background(target, [narrow]).compute(scheduler="sync")
    assert_bits_equal(out.dq, dq.astype(np.uint32) | np.uint32(2**31))


@pytest.mark.parametrize("how", CONTAINERS)
def test_each_container_gives_the_plain_outputs(how, tmp_path):
    """Target and backgrounds gzipped, tile-compressed, shuffled, padded...: same bits.

    The variant's output also validates (checksums, verify, stdatamodels).
    """
    from output_checks import check_output

    rng = np.random.default_rng(5)
    plain, variants = [], []
    for i in range(3):
        sci = rng.normal(10 if i == 0 else 1, 0.5, (6, 7)).astype(np.float32)
        path = write(tmp_path, sci, err=rng.uniform(0.1, 1, (6, 7)),
                     dq=rng.integers(0, 2**32, (6, 7), dtype=np.uint32), name=f"p{i}_rate.fits")
        copy = tmp_path / f"x{i}_rate.fits"
        copy.write_bytes(path.read_bytes())
        plain.append(path)
        variants.append(_contain(copy, how))
    expected = _outputs(plain[0], plain[1:], tmp_path, "plain")
    reference = _working(plain[0])  # the plain target's arrays, as astropy reads them
    with fits.open(variants[0]) as hdul:
        seen = {name: np.asarray(hdul[name].data, dtype=reference[name].dtype)
                for name in ("SCI", "ERR", "DQ")}
    if how != "tile":  # tile compression of floats quantizes: astropy's values differ
        for name in seen:
            assert_bits_equal(seen[name], reference[name])
    target_values = daskbkg.read_exposure(variants[0])
    for name in ("sci", "err", "dq"):
        assert_bits_equal(getattr(target_values, name)[...], seen[name.upper()])
    actual = _outputs(variants[0], variants[1:], tmp_path, "variant")
    if how != "tile":
        for key in ("sci", "err", "dq"):
            assert_bits_equal(actual[key], expected[key])
        for name in ("SCI", "ERR", "DQ"):
            assert_bits_equal(actual["file"][name], expected["file"][name])
    check_output(tmp_path / "variant_bsub.fits")
    with fits.open(tmp_path / "variant_bsub.fits") as out, fits.open(variants[0]) as src:
        assert [h.name for h in out] == [h.name for h in src]


@pytest.mark.parametrize("how", ["tile", "nopad", "shuffled", "gzip"])
def test_variants_on_object_storage(how, tmp_path):
    """The same variants read from a URL (fsspec memory store) give the local values."""
    fsspec = pytest.importorskip("fsspec")
    rng = np.random.default_rng(6)
    path = write(tmp_path, rng.normal(3, 1, (5, 6)).astype(np.float32), name="m_rate.fits",
                 dq=rng.integers(0, 2**32, (5, 6), dtype=np.uint32))
    path = _contain(path, how)
    mem = fsspec.filesystem("memory")
    mem.pipe(f"/variants/{how}/{path.name}", path.read_bytes())
    local = daskbkg.read_exposure(path)
    remote = daskbkg.read_exposure(f"memory://variants/{how}/{path.name}")
    for name in ("sci", "err", "dq"):
        assert_bits_equal(getattr(remote, name)[...], getattr(local, name)[...])
