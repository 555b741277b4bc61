"""Small parity points with the reference, asserted bit for bit.

* Empty background list (jwst 1.13.2): the mean over zero planes is 0/0, the negative
  quiet NaN ``0xFFC00000``; ``T.SCI - NaN`` keeps that NaN for every finite target pixel.
* ``compat="jwst-3.0"`` with an empty list skips before any geometry: a target without
  window keywords (and without INSTRUME) is SKIPPED, not refused.
* Missing ERR/DQ extensions: jwst 1.13's data models fill ERR = 0 and DQ = 0; newer data
  models (jwst 3.0) leave them None and the step fails.
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from helpers import assert_bits_equal

import daskbkg
from daskbkg import errors as E

NEG_QNAN = np.uint32(0xFFC00000)


def _bits(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float32).view(np.uint32)


def test_empty_list_gives_the_negative_quiet_nan(inputs, tmp_path):
    """Every finite target pixel becomes 0xFFC00000, in memory and in the file."""
    sci = np.arange(12, dtype=np.float32).reshape(3, 4) - 5
    sci[0, 0] = -np.inf
    target = inputs(sci)
    result = daskbkg.subtract_background(target, [])
    out = result.compute()
    assert result.status == "COMPLETE"
    expected = np.subtract(sci, np.uint32(0xFFC00000).view(np.float32), dtype=np.float32)
    assert (_bits(expected) == NEG_QNAN).all()  # the oracle: numpy float32 T - (0/0)
    assert_bits_equal(_bits(out.sci), _bits(expected))
    assert_bits_equal(_bits(out.combined["SCI"]), np.full((3, 4), NEG_QNAN))
    path = tmp_path / "empty_bsub.fits"
    result.to_fits(path)
    with fits.open(path) as hdul:
        assert_bits_equal(hdul["SCI"].data.astype(np.float32).view(np.uint32),
                          np.full((3, 4), NEG_QNAN))
        assert hdul[0].header["S_BKDSUB"] == "COMPLETE"


def test_reference_zero_over_zero_is_that_nan():
    """The oracle itself: float32 0/0 on this machine is 0xFFC00000."""
    with np.errstate(invalid="ignore"):
        value = np.float32(0) / np.float32(0)
    assert _bits(value) == NEG_QNAN


def _windowless(inputs):
    return inputs(np.full((3, 4), 7.5, np.float32), name="nowin_rate.fits",
                  window_keywords=False, instrument="NOSUCH",
                  extra_primary={"INSTRUME": None, "SUBARRAY": None, "EXP_TYPE": "MIR_IMAGE"})


def test_jwst30_empty_list_skips_before_geometry(inputs, tmp_path):
    """jwst 3.0: empty list + no window keywords and no INSTRUME -> SKIPPED, unchanged."""
    target = _windowless(inputs)
    result = daskbkg.subtract_background(target, [], compat="jwst-3.0")
    assert result.status == "SKIPPED"
    out = result.compute()
    assert_bits_equal(out.sci, np.full((3, 4), 7.5, np.float32))
    path = tmp_path / "skip_bsub.fits"
    result.to_fits(path)
    with fits.open(path) as hdul:
        assert hdul[0].header["S_BKDSUB"] == "SKIPPED"
        assert "SUBSTRT1" not in hdul[0].header  # no fallback window written


def test_jwst113_empty_list_still_needs_the_window(inputs):
    """jwst 1.13.2 computes the window first: the same target raises AttributeError."""
    target = _windowless(inputs)
    with pytest.raises(AttributeError) as info:
        daskbkg.subtract_background(target, [])
    assert isinstance(info.value, E.MissingKeywordError)
    assert "nowin_rate.fits" in str(info.value)
