"""Output headers (astropy-built) and the gzip read path."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
from astropy.io import fits
from helpers import assert_bits_equal
from output_checks import check_fits

import daskbkg
from daskbkg.io.headers import history_lines


def test_history_wraps_at_word_boundaries():
    """Every card text fits in 72 columns and no file name is cut."""
    names = [f"jw0{k}2345001001_02101_0000{k}_nrcalong_rate.fits" for k in range(6)]
    text = "daskbkg backgrounds (6): " + ", ".join(names)
    lines = history_lines(text)
    assert len(lines) > 1 and all(len(line) <= 72 for line in lines)
    words = [w for line in lines for w in line.split()]
    assert words == text.split()  # nothing cut, nothing lost
    assert history_lines("x" * 100) == ["x" * 72, "x" * 28]  # only an over-long word is cut


def test_non_ascii_background_name_in_combined_file(inputs, tmp_path):
    """A non-ASCII background file name is written as '?' (as astropy sanitises headers)."""
    target = inputs(np.full((3, 4), 9.0, np.float32))
    bkg = inputs(np.ones((3, 4), np.float32), name="fond_rate.fits")
    bkg = bkg.rename(bkg.with_name("fond_été_rate.fits"))
    result = daskbkg.subtract_background(target, [bkg])
    comb = tmp_path / "comb_é.fits"
    result.to_fits(tmp_path / "out_bsub.fits", combined_path=comb)
    check_fits(comb)
    with fits.open(comb) as hdul:
        history = " ".join(str(h) for h in hdul[0].header["HISTORY"])
        assert "fond_?t?_rate.fits" in history
        assert hdul[0].header["FILENAME"] == "comb_?.fits"


def test_checksums_stay_correct_or_go(inputs, tmp_path):
    """Copied HDUs keep their (still correct) checksums; rewritten ones lose them."""
    plain = inputs(np.full((3, 4), 9.0, np.float32), name="t_rate.fits")
    summed = tmp_path / "in" / "summed_rate.fits"
    with fits.open(plain) as hdul:
        hdul.writeto(summed, checksum=True)
    bkg = inputs(np.ones((3, 4), np.float32))
    out = tmp_path / "summed_bsub.fits"
    daskbkg.subtract_background(summed, [bkg]).to_fits(out)
    check_fits(out)  # no checksum warning from astropy
    with fits.open(out) as hdul:
        for name in ("PRIMARY", "SCI", "DQ"):
            assert "CHECKSUM" not in hdul[name].header and "DATASUM" not in hdul[name].header
        assert "CHECKSUM" in hdul["ERR"].header  # copied verbatim, verified above


def test_gzip_reads_tiles_without_the_whole_array(inputs, tmp_path, monkeypatch):
    """A .fits.gz exposure is read tile by tile: no read asks for the whole SCI array."""
    rng = np.random.default_rng(4)
    sci = rng.normal(0, 1, (64, 80)).astype(np.float32)
    path = inputs(sci, name="big_rate.fits")
    gz = tmp_path / "in" / "big_rate.fits.gz"
    with open(path, "rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    from daskbkg.io import fitsarray

    fitsarray.close_cached_files()
    sizes = []
    real = gzip.GzipFile.read
    monkeypatch.setattr(gzip.GzipFile, "read",
                        lambda self, size=-1: sizes.append(size) or real(self, size))
    exp = daskbkg.read_exposure(gz)
    assert exp.layout.gzip and not exp.sci.direct
    assert_bits_equal(exp.sci[10:20, 30:50], sci[10:20, 30:50])
    assert sizes and -1 not in sizes and max(sizes) < sci.nbytes // 4
