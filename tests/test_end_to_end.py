"""End-to-end runs on :func:`daskbkg.datasets.make_dataset` data.

The dask results are compared bitwise with an independent NumPy oracle written here: it
holds whole arrays in memory and follows the algorithm page's formulas literally
(A.3 geometry with the origin quirk, A.7 per-background planes, A.9 clip via astropy's
``sigma_clip(axis=0)`` - valid because these datasets have no lane where a clip pass
rejects everything at sigma 3 - and A.13/A.14 combination and subtraction). Then the
writers are checked: FITS and zarr outputs equal ``.compute()``, untouched extensions
are byte-identical, inputs are never modified, and temporary files never remain.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.stats import sigma_clip
from helpers import assert_bits_equal, hashes, listing
from output_checks import check_fits, check_model

import daskbkg
from daskbkg.datasets import make_dataset, make_exposure_arrays, write_exposure
from daskbkg.errors import OutputError

FRAME = (45, 53)  # odd sizes: chunks never divide the frame evenly
SUBARRAY = (9, 5, 24, 16)  # (xstart, ystart, xsize, ysize) of the subarray target


# ================================================================================ oracle


@pytest.fixture(autouse=True)
def outputs_validate(request):
    """After each test, every FITS file daskbkg wrote under its tmp_path must validate.

    Each passes ``fits.open(..., checksum=True)`` + ``verify("exception")`` and opens with
    stdatamodels (a product with ``meta.cal_step.bkg_subtract`` equal to its S_BKDSUB).
    """
    if "tmp_path" not in request.fixturenames:
        yield
        return
    folder = request.getfixturevalue("tmp_path")
    yield
    checked = 0
    for path in sorted(folder.rglob("*.fits")):
        try:
            with fits.open(path) as hdul:
                ours = "DBKG_VER" in hdul[0].header
        except OSError:  # a deliberately broken input of the test
            continue
        if ours:
            check_fits(path)
            check_model(path)
            checked += 1
    request.node.user_properties.append(("validated_outputs", checked))


def test_outputs_are_checked(written):
    """The validation hook really sees the written products (and would reject bad ones)."""
    from output_checks import check_output

    _, _, _, _, outdir = written
    for path in outdir.glob("*.fits"):
        check_output(path)
    wide = outdir.parent / "wide.fits"  # an output with float64 SCI is not the reference's
    with fits.open(outdir / "p_bkgsub.fits") as hdul:
        hdul["SCI"].data = hdul["SCI"].data.astype(np.float64)
        hdul.writeto(wide)
    with pytest.raises(AssertionError, match="SCI"):
        check_fits(wide)
    summed = outdir.parent / "summed.fits"  # a wrong checksum is caught
    with fits.open(outdir / "p_bkgsub.fits") as hdul:
        hdul.writeto(summed, checksum=True)
    data = bytearray(summed.read_bytes())
    data[-1] ^= 1
    summed.write_bytes(bytes(data))
    with pytest.raises(AssertionError, match="(?i)checksum"):
        check_fits(summed)
    wide.unlink()
    summed.unlink()


def _read(path):
    with fits.open(path) as hdul:
        header = hdul[0].header
        sci = np.asarray(hdul["SCI"].data, dtype=np.float32)
        err = np.asarray(hdul["ERR"].data, dtype=np.float32)
        dq = np.asarray(hdul["DQ"].data, dtype=np.uint32)
        window = tuple(int(header[k]) for k in ("SUBSTRT1", "SUBSTRT2", "SUBSIZE1", "SUBSIZE2"))
    xs, ys, xn, yn = window
    return sci, err, dq, (xs - 1, xs - 1 + xn, ys - 1, ys - 1 + yn)


def _clip_keep(stack64, sigma, maxiters):
    """Kept samples of astropy's sigma_clip along axis 0 (True = kept)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clipped = sigma_clip(stack64, sigma=sigma, maxiters=maxiters, axis=0, masked=True)
    return ~np.ma.getmaskarray(clipped)


def _intmean(values32, keep):
    """Clipped mean over integrations: float32 running sum, float64 division, 0.0 if empty."""
    s = np.zeros(values32.shape[1:], np.float32)
    for t in range(values32.shape[0]):
        s = np.where(keep[t], (s + values32[t]).astype(np.float32), s)
    count = keep.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s.astype(np.float64) / count
    return np.where(count > 0, mean, 0.0)


def oracle(target, backgrounds, sigma=3.0, maxiters=None, placement="reference",
           geometry="jwst-1.13"):
    """Compute reference outputs (sci, err, dq, combined) with whole arrays in memory."""
    t_sci, t_err, t_dq, (timin, timax, tjmin, tjmax) = _read(target)
    ny, nx = t_sci.shape[-2:]
    rateints = t_sci.ndim == 3
    n = len(backgrounds)
    D = np.full((n, ny, nx), np.nan)
    E = np.full((n, ny, nx), np.nan)
    Q = np.zeros((ny, nx), np.uint32)
    for k, path in enumerate(backgrounds):
        b_sci, b_err, b_dq, (bimin, bimax, bjmin, bjmax) = _read(path)
        if bimax <= timin or timax <= bimin or bjmax <= tjmin or tjmax <= bjmin:
            continue  # no overlap: NaN planes, DQ unused
        i0, i1 = max(timin, bimin), min(timax, bimax)
        j0, j1 = max(tjmin, bjmin), min(tjmax, bjmax)
        cut = tuple(a[..., j0 - bjmin:j1 - bjmin, i0 - bimin:i1 - bimin]
                    for a in (b_sci, b_err, b_dq))
        h, w = cut[0].shape[-2:]
        r0, c0 = (j0 - tjmin, i0 - timin) if placement == "aligned" else (0, 0)
        if not rateints:
            P = [np.full((ny, nx), np.nan, np.float32), np.full((ny, nx), np.nan, np.float32),
                 np.zeros((ny, nx), np.uint32)]
            for p, c in zip(P, cut):
                p[r0:r0 + h, c0:c0 + w] = c
            D[k] = P[0].astype(np.float64)
            E[k] = (P[1] * P[1]).astype(np.float32).astype(np.float64)
            Q |= P[2]
            continue
        nb = cut[0].shape[0]
        if geometry == "jwst-3.0":
            shape = (nb, ny, nx)
        else:
            shape = t_sci.shape
        P = [np.full(shape, np.nan, np.float32), np.full(shape, np.nan, np.float32),
             np.zeros(shape, np.uint32)]
        for p, c in zip(P, cut):
            if geometry == "jwst-3.0":
                p[:, r0:r0 + h, c0:c0 + w] = c
            else:
                p[0:nb, r0:r0 + h, :] = c  # the reference's broadcast
        V = (P[1] * P[1]).astype(np.float32)
        D[k] = _intmean(P[0], _clip_keep(P[0].astype(np.float64), sigma, maxiters))
        E[k] = _intmean(V, _clip_keep(V.astype(np.float64), sigma, maxiters))
        Q |= np.bitwise_or.reduce(P[2], axis=0)
    keep = _clip_keep(D, sigma, maxiters) if n else np.zeros((0, ny, nx), bool)
    n_good = keep.sum(axis=0)
    s_sum = np.zeros((ny, nx))
    e_sum = np.zeros((ny, nx))
    for k in range(n):  # ascending k, float64
        s_sum = np.where(keep[k], s_sum + D[k], s_sum)
        e_sum = np.where(keep[k], e_sum + E[k], e_sum)
    with np.errstate(invalid="ignore", divide="ignore"):
        sci_bk = np.where(n_good > 0, s_sum / n_good, 0.0).astype(np.float32)
        err_bk = np.where(n_good > 0, np.sqrt(e_sum) / n_good, 0.0).astype(np.float32)
    out_sci = np.subtract(t_sci, sci_bk, dtype=np.float32)
    out_dq = t_dq | Q
    combined = {"SCI": sci_bk, "ERR": err_bk, "DQ": Q, "NBKG": n_good.astype(np.int32)}
    return out_sci, t_err, out_dq, combined


def assert_matches(computed, expected):
    """Assert bitwise equality of a computed result and an oracle result."""
    sci, err, dq, comb = expected
    assert_bits_equal(computed.sci, sci)
    assert_bits_equal(computed.err, err)
    assert_bits_equal(computed.dq, dq)
    for name in ("SCI", "ERR", "DQ", "NBKG"):
        assert_bits_equal(computed.combined[name], comb[name])


# ============================================================================== datasets


@pytest.fixture(scope="module")
def rate5(tmp_path_factory):
    """Full-frame NIRCam rate target with five backgrounds."""
    return make_dataset(tmp_path_factory.mktemp("rate5"), frame_shape=FRAME, n_backgrounds=5,
                        seed=11)


@pytest.fixture(scope="module")
def rate_sub(tmp_path_factory):
    """Subarray rate target on three full-frame backgrounds."""
    return make_dataset(tmp_path_factory.mktemp("ratesub"), frame_shape=FRAME,
                        n_backgrounds=3, target_subarray=SUBARRAY, seed=12)


@pytest.fixture(scope="module")
def ints_sub(tmp_path_factory):
    """Subarray rateints target on three full-frame backgrounds."""
    return make_dataset(tmp_path_factory.mktemp("intssub"), frame_shape=FRAME,
                        n_backgrounds=3, rateints=True, nints=3, target_subarray=SUBARRAY,
                        seed=13)


@pytest.fixture(scope="module")
def ints_full(tmp_path_factory):
    """Full-frame MIRI rateints target on three backgrounds."""
    return make_dataset(tmp_path_factory.mktemp("intsfull"), frame_shape=FRAME,
                        n_backgrounds=3, rateints=True, nints=3, instrument="MIRI", seed=14)


def _subarray_backgrounds(folder, shape_prefix=(), seed=20, nints_list=None):
    """Backgrounds on subarray windows of the full frame (one starts inside the target)."""
    windows = [(1, 1, 53, 45), (1, 1, 20, 16), (6, 4, 30, 20), (1, 10, 53, 12)]
    paths = []
    for k, (xs, ys, xn, yn) in enumerate(windows):
        lead = shape_prefix if nints_list is None else (nints_list[k],)
        sci, err, dq = make_exposure_arrays(lead + (yn, xn), level=0.3, noise=0.02,
                                            seed=seed + k, nan_fraction=0.01, dq_fraction=0.02,
                                            hot_value=30.0, origin=(xs, ys),
                                            detector_shape=FRAME)
        name = f"jw01234002001_02101_{k + 1:05d}_nrca1_{'rateints' if lead else 'rate'}.fits"
        paths.append(write_exposure(Path(folder) / name, sci, err, dq, substrt=(xs, ys)))
    return paths


@pytest.fixture(scope="module")
def rate_full_on_sub(tmp_path_factory):
    """Full-frame rate target with subarray backgrounds."""
    folder = tmp_path_factory.mktemp("fullonsub")
    data = make_dataset(folder, frame_shape=FRAME, n_backgrounds=0, seed=15, write_asn=False)
    return data.targets[0], _subarray_backgrounds(folder)


# ============================================================================ algorithm


@pytest.mark.parametrize("n", [1, 2, 5])
def test_rate_full_frame(rate5, n):
    """Rate mode with 1, 2 and 5 backgrounds equals the oracle bitwise."""
    target, bkgs = rate5.targets[0], list(rate5.backgrounds[:n])
    out = daskbkg.subtract_background(target, bkgs).compute()
    assert out.status == "COMPLETE"
    assert_matches(out, oracle(target, bkgs))
    # the dataset really exercises NaN, DQ bit 31 and the clip
    assert np.isnan(out.sci).any()
    assert (out.dq & np.uint32(1 << 31)).any()


@pytest.mark.parametrize("maxiters", [1, 2])
@pytest.mark.parametrize("sigma", [3.0, 2.0])
def test_rate_clip_parameters(rate5, sigma, maxiters):
    """Other sigma and maxiters values equal the oracle bitwise."""
    target, bkgs = rate5.targets[0], list(rate5.backgrounds)
    out = daskbkg.subtract_background(target, bkgs, sigma=sigma, maxiters=maxiters).compute()
    expected = oracle(target, bkgs, sigma=sigma, maxiters=maxiters)
    assert_matches(out, expected)
    if sigma == 2.0:
        assert (expected[3]["NBKG"] < 5).any()  # some values really were clipped


def test_rate_subarray_target_on_full_frames(rate_sub):
    """A subarray target on full frames equals the oracle."""
    target, bkgs = rate_sub.targets[0], list(rate_sub.backgrounds)
    out = daskbkg.subtract_background(target, bkgs).compute()
    assert out.sci.shape == (SUBARRAY[3], SUBARRAY[2])
    assert_matches(out, oracle(target, bkgs))


@pytest.mark.parametrize("placement", ["reference", "aligned"])
def test_rate_full_frame_target_on_subarrays(rate_full_on_sub, placement):
    """A full-frame target on subarrays equals the oracle for both placements."""
    target, bkgs = rate_full_on_sub
    out = daskbkg.subtract_background(target, bkgs, subarray_placement=placement).compute()
    expected = oracle(target, bkgs, placement=placement)
    assert_matches(out, expected)
    assert (expected[3]["NBKG"] == 4).any() and (expected[3]["NBKG"] == 1).any()


def test_rateints_subarray_target_equal_nints(ints_sub):
    """Rateints subarray target, equal NINTS, equals the oracle."""
    target, bkgs = ints_sub.targets[0], list(ints_sub.backgrounds)
    out = daskbkg.subtract_background(target, bkgs).compute()
    assert out.sci.shape == (3, SUBARRAY[3], SUBARRAY[2])
    assert_matches(out, oracle(target, bkgs))


@pytest.mark.parametrize("maxiters", [None, 1])
def test_rateints_full_frame_equal_nints(ints_full, maxiters):
    """Rateints full frame, equal NINTS, equals the oracle."""
    target, bkgs = ints_full.targets[0], list(ints_full.backgrounds)
    out = daskbkg.subtract_background(target, bkgs, maxiters=maxiters).compute()
    assert_matches(out, oracle(target, bkgs, maxiters=maxiters))


@pytest.fixture(scope="module")
def ints_mismatch(tmp_path_factory):
    """Target with 3 integrations, full-width backgrounds with 1, 2, 3 and 4 integrations."""
    folder = tmp_path_factory.mktemp("intsmismatch")
    data = make_dataset(folder, frame_shape=FRAME, n_backgrounds=0, rateints=True, nints=3,
                        seed=16, write_asn=False)
    bkgs = []
    for k, (nints, ys, yn) in enumerate([(1, 1, 45), (2, 1, 45), (3, 8, 30), (4, 1, 45)]):
        sci, err, dq = make_exposure_arrays((nints, yn, 53), level=0.3, noise=0.02,
                                            seed=40 + k, nan_fraction=0.01, dq_fraction=0.02,
                                            origin=(1, ys), detector_shape=FRAME)
        name = f"bkg{k}_rateints.fits"
        bkgs.append(write_exposure(folder / name, sci, err, dq, substrt=(1, ys)))
    return data.targets[0], bkgs


def test_rateints_fewer_background_integrations(ints_mismatch):
    """Backgrounds with fewer integrations equal the oracle."""
    target, bkgs = ints_mismatch
    out = daskbkg.subtract_background(target, bkgs[:3]).compute()
    assert_matches(out, oracle(target, bkgs[:3]))


def test_rateints_more_background_integrations(ints_mismatch):
    """More background integrations: ValueError, or jwst-3.0 oracle."""
    target, bkgs = ints_mismatch
    with pytest.raises(ValueError):
        daskbkg.subtract_background(target, bkgs)
    out = daskbkg.subtract_background(target, bkgs, rateints_geometry="jwst-3.0").compute()
    assert_matches(out, oracle(target, bkgs, geometry="jwst-3.0"))


def test_rateints_empty_lane_nan_differs(ints_full):
    """The empty-lane option changes exactly the pixels where some background is empty."""
    target, bkgs = ints_full.targets[0], list(ints_full.backgrounds)
    ref = daskbkg.subtract_background(target, bkgs).compute()
    alt = daskbkg.subtract_background(target, bkgs, rateints_empty_lane="nan").compute()
    differ = ref.combined["SCI"] != alt.combined["SCI"]
    empty = np.zeros(differ.shape, bool)
    for path in bkgs:
        with fits.open(path) as hdul:
            empty |= np.isnan(hdul["SCI"].data).all(axis=0)
    assert differ.any()
    assert not (differ & ~empty).any()


# ======================================================================= chunk invariance


@pytest.mark.parametrize("dataset", ["rate5", "ints_sub"])
def test_chunk_shapes_give_identical_bits(request, dataset):
    """Every tiling gives the same bits, equal to the oracle."""
    data = request.getfixturevalue(dataset)
    target, bkgs = data.targets[0], list(data.backgrounds)
    results = []
    for chunks, memory in [((7, 13), None), ((64, -1), None), (None, None), ((45, 5), None),
                           (5, None), (None, 20_000)]:
        result = daskbkg.subtract_background(target, bkgs, chunks=chunks, memory_limit=memory)
        if chunks == (7, 13):
            assert result.sci.chunks[-1][0] == 13 and result.sci.chunks[-2][0] == 7
        results.append(result.compute())
    first = results[0]
    for other in results[1:]:
        for name in ("sci", "err", "dq"):
            assert_bits_equal(getattr(other, name), getattr(first, name))
        for name in ("SCI", "ERR", "DQ", "NBKG"):
            assert_bits_equal(other.combined[name], first.combined[name])
    assert_matches(first, oracle(target, bkgs))


def test_schedulers_agree(rate5):
    """Threaded and synchronous schedulers agree bitwise."""
    target, bkgs = rate5.targets[0], list(rate5.backgrounds[:3])
    result = daskbkg.subtract_background(target, bkgs, chunks=(8, 16))
    a = result.compute(scheduler="threads")
    b = result.compute(scheduler="synchronous")
    for name in ("sci", "err", "dq"):
        assert_bits_equal(getattr(a, name), getattr(b, name))


# ================================================================================ writers


def _data_bytes(path):
    """Raw (header bytes, data bytes) of every HDU by EXTNAME, straight from the file."""
    out = {}
    raw = Path(path).read_bytes()
    with fits.open(path) as hdul:
        for i, hdu in enumerate(hdul):
            info = hdul.fileinfo(i)
            name = "PRIMARY" if i == 0 else hdu.name
            out[name] = (raw[info["hdrLoc"]:info["datLoc"]],
                         raw[info["datLoc"]:info["datLoc"] + info["datSpan"]])
    return out


@pytest.fixture(params=["rate_sub", "ints_sub"])
def written(request, tmp_path):
    """Write a product and its combined background with ``to_fits``."""
    data = request.getfixturevalue(request.param)
    target, bkgs = data.targets[0], list(data.backgrounds)
    before = hashes([target, *bkgs])
    result = daskbkg.subtract_background(target, bkgs, chunks=(6, 11))
    computed = result.compute()
    outdir = tmp_path / "out"
    outdir.mkdir()
    written = result.to_fits(outdir / "p_bkgsub.fits",
                             combined_path=outdir / "p_combinedbackground.fits")
    assert [Path(p).name for p in written] == ["p_bkgsub.fits", "p_combinedbackground.fits"]
    return target, bkgs, before, computed, outdir


def test_fits_equals_compute(written):
    """FITS outputs read back equal ``.compute()`` bitwise."""
    target, bkgs, before, computed, outdir = written
    with fits.open(outdir / "p_bkgsub.fits") as hdul:
        assert_bits_equal(hdul["SCI"].data.astype(np.float32), computed.sci)
        assert_bits_equal(hdul["ERR"].data.astype(np.float32), computed.err)
        assert hdul["DQ"].data.dtype == np.uint32
        assert_bits_equal(hdul["DQ"].data, computed.dq)
        assert hdul["DQ"].header["BZERO"] == 2**31 and hdul["DQ"].header["BITPIX"] == 32
    with fits.open(outdir / "p_combinedbackground.fits") as hdul:
        assert [h.name for h in hdul][:4] == ["PRIMARY", "SCI", "DQ", "ERR"]
        assert "INSTRUME" not in hdul[0].header
        assert_bits_equal(hdul["SCI"].data.astype(np.float32), computed.combined["SCI"])
        assert_bits_equal(hdul["ERR"].data.astype(np.float32), computed.combined["ERR"])
        assert_bits_equal(hdul["DQ"].data.astype(np.uint32), computed.combined["DQ"])
        assert_bits_equal(hdul["NBKG"].data.astype(np.int32), computed.combined["NBKG"])
        assert hdul["SCI"].data.ndim == 2
    assert hashes([target, *bkgs]) == before
    assert listing(outdir) == ["p_bkgsub.fits", "p_combinedbackground.fits"]


def test_untouched_extensions_are_byte_identical(written):
    """HDUs other than PRIMARY, SCI and DQ are copied byte for byte."""
    target, _, _, _, outdir = written
    src, dst = _data_bytes(target), _data_bytes(outdir / "p_bkgsub.fits")
    assert list(dst) == list(src)  # same HDUs in the same order
    untouched = [name for name in src if name not in ("PRIMARY", "SCI", "DQ")]
    assert "ERR" in untouched and "ASDF" in untouched and "VAR_POISSON" in untouched
    for name in untouched:
        assert dst[name] == src[name], name  # header and data bytes
    with fits.open(target) as a, fits.open(outdir / "p_bkgsub.fits") as b:
        if a["SCI"].data.ndim == 3:
            assert "INT_TIMES" in untouched
        for name in ("SCI", "DQ"):
            ha, hb = a[name].header, b[name].header
            assert [c for c in ha if c not in ("BZERO", "BSCALE")] == \
                [c for c in hb if c not in ("BZERO", "BSCALE")]
            for key in ha:
                if key not in ("BZERO", "BSCALE"):
                    assert hb[key] == ha[key], key


def test_primary_header_changes(written):
    """PRIMARY gains S_BKDSUB, DBKG_VER and HISTORY; FILENAME and DATE describe the output."""
    from datetime import datetime, timezone

    target, _, _, _, outdir = written
    with fits.open(target) as a, fits.open(outdir / "p_bkgsub.fits") as b:
        ha, hb = a[0].header, b[0].header
        assert hb["S_BKDSUB"] == "COMPLETE"
        assert hb["DBKG_VER"] == daskbkg.__version__
        assert "CAL_VER" not in hb and "CRDS_CTX" not in hb
        assert any("daskbkg" in str(line) for line in hb["HISTORY"])
        assert hb["FILENAME"] == "p_bkgsub.fits"
        written_at = datetime.strptime(hb["DATE"], "%Y-%m-%dT%H:%M:%S.%f")
        age = datetime.now(timezone.utc).replace(tzinfo=None) - written_at
        assert 0 <= age.total_seconds() < 600
        ignore = {"S_BKDSUB", "DBKG_VER", "HISTORY", "", "FILENAME", "DATE"}
        assert {k: ha[k] for k in ha if k not in ignore} == \
            {k: hb[k] for k in hb if k not in ignore}


def test_skipped_product_header(tmp_path, rate_sub):
    """A skipped product copies the data and writes no combined file."""
    target = rate_sub.targets[0]
    result = daskbkg.subtract_background(target, [], empty_bkg_list="skip")
    out = tmp_path / "skip.fits"
    result.to_fits(out, combined_path=tmp_path / "skip_comb.fits")
    assert listing(tmp_path) == ["skip.fits"]  # no combined background when skipped
    src, dst = _data_bytes(target), _data_bytes(out)
    for name in src:
        if name != "PRIMARY":
            assert dst[name][1] == src[name][1], name
    with fits.open(out) as hdul:
        assert hdul[0].header["S_BKDSUB"] == "SKIPPED"


@pytest.mark.parametrize("shards", [False, True])
def test_zarr_equals_compute(rate_sub, tmp_path, shards):
    """Zarr outputs read back with zarr equal ``.compute()`` bitwise."""
    import zarr

    target, bkgs = rate_sub.targets[0], list(rate_sub.backgrounds)
    before = hashes([target, *bkgs])
    chunks = (8, -1) if shards else (5, 7)
    result = daskbkg.subtract_background(target, bkgs, chunks=chunks)
    computed = result.compute()
    result.to_zarr(tmp_path / "p_bkgsub.zarr", combined_path=tmp_path / "p_comb.zarr",
                   shards=shards)
    assert listing(tmp_path) == ["p_bkgsub.zarr", "p_comb.zarr"]
    group = zarr.open_group(str(tmp_path / "p_bkgsub.zarr"), mode="r")
    assert_bits_equal(group["sci"][...], computed.sci)
    assert_bits_equal(group["err"][...], computed.err)
    assert_bits_equal(group["dq"][...], computed.dq)
    with fits.open(target) as hdul:
        assert_bits_equal(group["var_poisson"][...], hdul["VAR_POISSON"].data.astype(np.float32))
    assert group.attrs["daskbkg"]["status"] == "COMPLETE"
    comb = zarr.open_group(str(tmp_path / "p_comb.zarr"), mode="r")
    for name in ("SCI", "ERR", "DQ", "NBKG"):
        assert_bits_equal(comb[name.lower()][...], computed.combined[name])
    assert hashes([target, *bkgs]) == before


# ===================================================================== safety of inputs


def test_output_equal_to_input_refused(rate_sub, tmp_path):
    """Writing over an input (any spelling) raises OutputError."""
    target, bkgs = rate_sub.targets[0], list(rate_sub.backgrounds)
    before = hashes([target, *bkgs])
    result = daskbkg.subtract_background(target, bkgs)
    link = tmp_path / "link.fits"
    link.symlink_to(target)
    hard = tmp_path / "hard.fits"
    os.link(bkgs[0], hard)
    relative = os.path.relpath(target)
    for path in [target, bkgs[1], link, hard, relative, str(target)]:
        with pytest.raises(OutputError) as info:
            result.to_fits(path)
        assert isinstance(info.value, OSError)
        with pytest.raises(OutputError):
            result.to_zarr(path)
    assert hashes([target, *bkgs]) == before
    assert listing(tmp_path) == ["hard.fits", "link.fits"]


def test_combined_path_equal_to_input_refused(rate_sub, tmp_path):
    """A combined path equal to an input is refused too."""
    target, bkgs = rate_sub.targets[0], list(rate_sub.backgrounds)
    before = hashes([target, *bkgs])
    result = daskbkg.subtract_background(target, bkgs)
    for comb in (target, bkgs[2]):
        with pytest.raises(OutputError):
            result.to_fits(tmp_path / "ok.fits", combined_path=comb)
        with pytest.raises(OutputError):
            result.to_zarr(tmp_path / "ok.zarr", combined_path=comb)
    assert hashes([target, *bkgs]) == before
    assert not (tmp_path / "ok.fits").exists() and not (tmp_path / "ok.zarr").exists()


@pytest.mark.parametrize("fmt", ["fits", "zarr"])
def test_refused_combined_path_leaves_no_temp_file(rate_sub, tmp_path, fmt):
    """A refused combined path leaves no temporary file."""
    target, bkgs = rate_sub.targets[0], list(rate_sub.backgrounds)
    result = daskbkg.subtract_background(target, bkgs)
    outdir = tmp_path / "out"
    outdir.mkdir()
    writer = result.to_fits if fmt == "fits" else result.to_zarr
    with pytest.raises(OutputError):
        writer(outdir / f"ok.{fmt}", combined_path=target)
    assert listing(outdir) == []


def test_failing_run_leaves_inputs_and_no_temp_files(rate_sub, tmp_path, monkeypatch):
    """A failing computation keeps inputs and old outputs, removes temp files."""
    import daskbkg.combine

    target, bkgs = rate_sub.targets[0], list(rate_sub.backgrounds)
    before = hashes([target, *bkgs])
    outdir = tmp_path / "out"
    outdir.mkdir()
    (outdir / "p_bkgsub.fits").write_bytes(b"previous output")

    def broken(*args, **kwargs):
        raise RuntimeError("kernel failure injected by the test")

    monkeypatch.setattr(daskbkg.combine, "_combine_block", broken)
    result = daskbkg.subtract_background(target, bkgs, chunks=(4, -1))
    with pytest.raises(RuntimeError, match="injected"):
        result.to_fits(outdir / "p_bkgsub.fits", combined_path=outdir / "p_comb.fits")
    with pytest.raises(RuntimeError, match="injected"):
        result.to_zarr(outdir / "p_bkgsub.zarr")
    assert listing(outdir) == ["p_bkgsub.fits"]
    assert (outdir / "p_bkgsub.fits").read_bytes() == b"previous output"
    assert hashes([target, *bkgs]) == before


def test_output_replaces_existing_file(rate_sub, tmp_path):
    """An existing output is replaced atomically."""
    target, bkgs = rate_sub.targets[0], list(rate_sub.backgrounds)
    out = tmp_path / "p_bkgsub.fits"
    out.write_bytes(b"stale")
    daskbkg.subtract_background(target, bkgs).to_fits(out)
    with fits.open(out) as hdul:
        assert hdul[0].header["S_BKDSUB"] == "COMPLETE"
    assert listing(tmp_path) == ["p_bkgsub.fits"]


def test_propagate_err_option(rate_sub, tmp_path):
    """``propagate_err`` writes the quadrature sum as ERR."""
    target, bkgs = rate_sub.targets[0], list(rate_sub.backgrounds)
    plain = daskbkg.subtract_background(target, bkgs).compute()
    result = daskbkg.subtract_background(target, bkgs, propagate_err=True)
    out = result.compute()
    assert_bits_equal(out.sci, plain.sci)
    assert_bits_equal(out.dq, plain.dq)
    expected = np.sqrt(plain.err.astype(np.float64) ** 2
                       + plain.combined["ERR"].astype(np.float64) ** 2)
    assert out.err.dtype == np.float32
    np.testing.assert_allclose(out.err, expected, rtol=2e-7)
    result.to_fits(tmp_path / "p.fits")
    with fits.open(tmp_path / "p.fits") as hdul:
        assert_bits_equal(hdul["ERR"].data.astype(np.float32), out.err)
        history = " ".join(str(h) for h in hdul[0].header["HISTORY"])
        assert "propagate_err=True" in history


def test_extension_order_err_before_dq(tmp_path):
    """Extensions are found by EXTNAME; the output keeps the target's HDU order."""
    paths = []
    for k, level in enumerate([100.0, 10.0, 12.0]):
        sci, err, dq = make_exposure_arrays((9, 11), level=level, seed=k, dq_fraction=0.1,
                                            nan_fraction=0.05)
        paths.append(write_exposure(tmp_path / f"e{k}_rate.fits", sci, err, dq,
                                    err_before_dq=True))
    target, bkgs = paths[0], paths[1:]
    result = daskbkg.subtract_background(target, bkgs)
    assert_matches(result.compute(), oracle(target, bkgs))
    out = tmp_path / "out.fits"
    result.to_fits(out)
    with fits.open(target) as a, fits.open(out) as b:
        assert [h.name for h in a] == [h.name for h in b]
        assert [h.name for h in b][1:3] == ["SCI", "ERR"]
    src, dst = _data_bytes(target), _data_bytes(out)
    assert dst["ERR"] == src["ERR"] and dst["ASDF"] == src["ASDF"]


def test_combined_file_provenance(written):
    """The combined file records DBKG_VER and has the right dtypes."""
    *_, outdir = written
    with fits.open(outdir / "p_combinedbackground.fits") as hdul:
        assert hdul[0].header["DBKG_VER"] == daskbkg.__version__
        assert "CAL_VER" not in hdul[0].header
        assert hdul["DQ"].data.dtype == np.uint32
        assert hdul["SCI"].data.dtype.kind == "f" and hdul["SCI"].data.dtype.itemsize == 4


def test_deferred_writers_are_typed_write_jobs(rate_sub, tmp_path):
    """FITS and zarr writers return WriteJobs; aborting one leaves nothing behind."""
    from daskbkg.io.writejob import WriteJob, run_write_jobs

    result = daskbkg.subtract_background(rate_sub.targets[0], list(rate_sub.backgrounds))
    jobs = result.fits_jobs(tmp_path / "p.fits", tmp_path / "c.fits") + \
        result.zarr_jobs(tmp_path / "p.zarr")
    assert all(isinstance(job, WriteJob) for job in jobs)
    assert [job.path for job in jobs] == [tmp_path / "p.fits", tmp_path / "c.fits",
                                          tmp_path / "p.zarr"]
    jobs[2].abort()
    assert sorted(os.listdir(tmp_path)) == sorted(p.name for p in tmp_path.iterdir()
                                                  if p.suffix == ".tmp")
    assert run_write_jobs(jobs[:2]) == [tmp_path / "p.fits", tmp_path / "c.fits"]
    assert listing(tmp_path) == ["c.fits", "p.fits"]
