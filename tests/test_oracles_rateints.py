"""Rateints oracles R1-R9 (imaging algorithm page A.8), end to end, with option variants.

The targets have a different SCI value and DQ bit in every integration, so that each
output plane is checked separately: ``out.SCI[t] = float32(T.SCI[t] - SCI_bk)``,
``out.ERR[t] = T.ERR[t]`` and ``out.DQ[t] = T.DQ[t] | DQ_bk``.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import Maker, f32

import daskbkg


@pytest.fixture
def mk(tmp_path):
    """Exposure maker writing into ``tmp_path``."""
    return Maker(tmp_path)


class Target:
    """A rateints target with per-integration SCI (100 + t), ERR (1 + t/2), DQ (2**(20+t))."""

    def __init__(self, mk, shape):
        nints = shape[0]
        self.sci = np.stack([np.full(shape[1:], 100.0 + t, np.float32) for t in range(nints)])
        self.err = np.stack([np.full(shape[1:], 1.0 + t / 2, np.float32) for t in range(nints)])
        self.dq = np.stack([np.full(shape[1:], 1 << (20 + t), np.uint32) for t in range(nints)])
        self.path = mk(self.sci, err=self.err, dq=self.dq)


def run(target: Target, backgrounds, **kwargs):
    """Compute, then check every output plane against the combined background."""
    out = daskbkg.subtract_background(target.path, backgrounds, **kwargs).compute()
    bk = out.combined
    assert out.status == "COMPLETE"
    assert out.sci.shape == target.sci.shape and out.sci.dtype == np.float32
    assert out.dq.dtype == np.uint32 and out.err.dtype == np.float32
    assert bk["SCI"].shape == target.sci.shape[1:]
    for t in range(target.sci.shape[0]):
        np.testing.assert_array_equal(out.sci[t], np.subtract(target.sci[t], bk["SCI"],
                                                              dtype=np.float32))
        np.testing.assert_array_equal(out.err[t], target.err[t])
        np.testing.assert_array_equal(out.dq[t], target.dq[t] | bk["DQ"])
    return out, bk


def cube(values, plane):
    """Integration t filled with ``values[t]``."""
    return np.stack([np.full(plane, v, np.float32) for v in values])


# ------------------------------------------------------------------------------------ R1


@pytest.fixture
def r1(mk):
    """R1 inputs: two 3-integration backgrounds and a (3, 2, 2) target."""
    plane = (2, 2)
    dq1 = np.zeros((3, *plane), np.uint32)
    dq1[0], dq1[2] = 1, 4
    dq2 = np.zeros((3, *plane), np.uint32)
    dq2[1] = 8
    b1 = mk(cube([1, 2, 30], plane), err=cube([1, 2, 3], plane), dq=dq1)
    b2 = mk(cube([5, 6, 7], plane), err=2.0, dq=dq2)
    return Target(mk, (3, *plane)), [b1, b2]


def test_r1_sigma3(r1):
    """R1 at sigma 3."""
    target, bkgs = r1
    out, bk = run(target, bkgs)
    np.testing.assert_array_equal(bk["SCI"], np.full((2, 2), 8.5, np.float32))
    assert f32(np.sqrt(14 / 3 + 4) / 2) == f32(1.4719602)
    np.testing.assert_array_equal(bk["ERR"], np.full((2, 2), f32(1.4719602), np.float32))
    np.testing.assert_array_equal(bk["DQ"], np.full((2, 2), 13, np.uint32))
    np.testing.assert_array_equal(out.sci[0], np.full((2, 2), 91.5, np.float32))
    assert (out.dq[1] == (13 | 1 << 21)).all()


def test_r1_sigma1(r1):
    """R1 at sigma 1."""
    target, bkgs = r1
    _, bk = run(target, bkgs, sigma=1.0)
    np.testing.assert_array_equal(bk["SCI"], np.full((2, 2), 3.75, np.float32))
    np.testing.assert_array_equal(bk["ERR"], np.full((2, 2), f32(1.2747549), np.float32))
    assert f32(np.sqrt(6.5) / 2) == f32(1.2747549)
    np.testing.assert_array_equal(bk["DQ"], np.full((2, 2), 13, np.uint32))


# ------------------------------------------------------------------------------------ R2-R3


def test_r2_float32_accumulation(mk):
    """R2: integration means accumulate in float32."""
    bkg = mk(cube([0.1, 0.2, 0.4], (2, 2)))
    _, bk = run(Target(mk, (3, 2, 2)), [bkg])
    s = np.float32(0.0)
    for v in (0.1, 0.2, 0.4):
        s = np.float32(s + np.float32(v))
    assert f32(np.float64(s) / 3) == f32(0.23333335)
    np.testing.assert_array_equal(bk["SCI"], np.full((2, 2), f32(0.23333335), np.float32))
    assert f32(0.23333335) != f32(0.23333333)  # differs from the rate-mode I10


def test_r3_independent_err_clip(mk):
    """R3: the SCI and ERR² clips are independent."""
    bkg = mk(cube([1, 2, 30], (2, 2)), err=cube([3, 1, 1], (2, 2)))
    _, bk = run(Target(mk, (3, 2, 2)), [bkg], sigma=1.0)
    np.testing.assert_array_equal(bk["SCI"], np.full((2, 2), 1.5, np.float32))
    np.testing.assert_array_equal(bk["ERR"], np.full((2, 2), 1.0, np.float32))


def test_r3_err_is_mean_variance(mk):
    """ERR_bk uses the mean of err² over integrations (not divided by nints)."""
    bkg = mk(cube([5, 5, 5], (2, 2)), err=cube([1, 2, 2], (2, 2)))
    _, bk = run(Target(mk, (3, 2, 2)), [bkg])
    expected = f32(np.sqrt(np.float64(np.float32(9.0)) / 3))
    np.testing.assert_array_equal(bk["ERR"], np.full((2, 2), expected, np.float32))


# ------------------------------------------------------------------------------------ R4


@pytest.fixture
def r4(mk):
    """R4 inputs: three backgrounds of 10, the third empty at [0, 0]."""
    third = cube([10, 10], (2, 2))
    third[:, 0, 0] = np.nan
    bkgs = [mk(cube([10, 10], (2, 2))), mk(cube([10, 10], (2, 2))), mk(third)]
    return Target(mk, (2, 2, 2)), bkgs


def test_r4_empty_lane_zero(r4):
    """R4: the empty lane counts as 0.0 (reference)."""
    target, bkgs = r4
    _, bk = run(target, bkgs)
    assert bk["SCI"][0, 0] == f32(6.6666665) == f32(20 / 3)
    assert bk["ERR"][0, 0] == f32(0.57735026) == f32(np.sqrt(3) / 3)  # ERR of #3 is 1
    assert bk["NBKG"][0, 0] == 3
    assert bk["SCI"][1, 1] == 10.0 and bk["ERR"][1, 1] == f32(np.sqrt(3) / 3)


def test_r4_empty_lane_nan(r4):
    """R4 with ``rateints_empty_lane='nan'``."""
    target, bkgs = r4
    _, bk = run(target, bkgs, rateints_empty_lane="nan")
    assert bk["SCI"][0, 0] == 10.0
    assert bk["ERR"][0, 0] == f32(0.70710677)
    assert bk["NBKG"][0, 0] == 2
    assert bk["SCI"][1, 1] == 10.0


# ------------------------------------------------------------------------------------ R5


@pytest.fixture
def r5(mk):
    """R5 inputs: full-frame A = 10 and two-row B = 20."""
    a = mk(cube([10, 10], (4, 5)))
    b = mk(cube([20, 20], (2, 5)), subsize=(5, 2))
    return Target(mk, (2, 4, 5)), [a, b]


def test_r5_uncovered_rows_pull_to_zero(r5):
    """R5: uncovered rows pull the mean toward 0."""
    target, bkgs = r5
    _, bk = run(target, bkgs)
    np.testing.assert_array_equal(bk["SCI"][0:2], np.full((2, 5), 15.0, np.float32))
    np.testing.assert_array_equal(bk["ERR"][0:2], np.full((2, 5), f32(0.70710677), np.float32))
    np.testing.assert_array_equal(bk["SCI"][2:4], np.full((2, 5), 5.0, np.float32))
    np.testing.assert_array_equal(bk["ERR"][2:4], np.full((2, 5), 0.5, np.float32))


def test_r5_empty_lane_nan(r5):
    """R5 with ``rateints_empty_lane='nan'``."""
    target, bkgs = r5
    _, bk = run(target, bkgs, rateints_empty_lane="nan")
    np.testing.assert_array_equal(bk["SCI"][0:2], np.full((2, 5), 15.0, np.float32))
    np.testing.assert_array_equal(bk["SCI"][2:4], np.full((2, 5), 10.0, np.float32))
    np.testing.assert_array_equal(bk["ERR"][2:4], np.full((2, 5), 1.0, np.float32))


def test_r5_rate_analogue(mk):
    """R5's rate-mode analogue has no zero pull."""
    a = mk.const((4, 5), 10.0)
    b = mk.const((2, 5), 20.0, subsize=(5, 2))
    out = daskbkg.subtract_background(mk.const((4, 5), 100.0), [a, b]).compute()
    bk = out.combined
    np.testing.assert_array_equal(bk["SCI"][0:2], np.full((2, 5), 15.0, np.float32))
    np.testing.assert_array_equal(bk["SCI"][2:4], np.full((2, 5), 10.0, np.float32))
    np.testing.assert_array_equal(bk["ERR"][2:4], np.full((2, 5), 1.0, np.float32))


# ------------------------------------------------------------------------------------ R6


@pytest.fixture
def r6(mk):
    """R6 inputs: 3-column background under a 6-column target."""
    bkg = mk(cube([20, 20], (4, 3)), dq=2, subsize=(3, 4))
    return Target(mk, (2, 4, 6)), [bkg]


def test_r6_reference_width_error(r6):
    """R6: the reference raises ValueError."""
    target, bkgs = r6
    with pytest.raises(ValueError):
        daskbkg.subtract_background(target.path, bkgs)


@pytest.mark.parametrize("kwargs", [{"rateints_geometry": "jwst-3.0"}, {"compat": "jwst-3.0"},
                                    {"rateints_geometry": "jwst-3.0",
                                     "rateints_empty_lane": "nan"}])
def test_r6_jwst30_geometry(r6, kwargs):
    """R6 with the jwst-3.0 geometry."""
    target, bkgs = r6
    _, bk = run(target, bkgs, **kwargs)
    expected = np.zeros((4, 6), np.float32)
    expected[:, 0:3] = 20.0
    np.testing.assert_array_equal(bk["SCI"], expected)
    expected_dq = np.zeros((4, 6), np.uint32)
    expected_dq[:, 0:3] = 2
    np.testing.assert_array_equal(bk["DQ"], expected_dq)
    np.testing.assert_array_equal(bk["ERR"][:, 3:], np.zeros((4, 3), np.float32))
    np.testing.assert_array_equal(bk["ERR"][:, :3], np.ones((4, 3), np.float32))


def test_r6_jwst30_aligned(mk):
    """R6 with jwst-3.0 geometry combined with the aligned placement."""
    bkg = mk(cube([20, 20], (4, 3)), substrt=(4, 1), subsize=(3, 4))
    target = Target(mk, (2, 4, 6))
    _, bk = run(target, [bkg], rateints_geometry="jwst-3.0", subarray_placement="aligned")
    expected = np.zeros((4, 6), np.float32)
    expected[:, 3:6] = 20.0
    np.testing.assert_array_equal(bk["SCI"], expected)
    _, bk = run(target, [bkg], rateints_geometry="jwst-3.0")
    np.testing.assert_array_equal(bk["SCI"], expected[:, ::-1])


# ------------------------------------------------------------------------------------ R7


@pytest.fixture
def r7(mk):
    """R7 inputs: a one-column background."""
    column = np.stack([np.arange(4, dtype=np.float32).reshape(4, 1)] * 2)
    dq = np.zeros((2, 4, 1), np.uint32)
    dq[1, 2, 0] = 16
    bkg = mk(column, dq=dq, subsize=(1, 4))
    return Target(mk, (2, 4, 6)), [bkg]


def test_r7_reference_replicates_column(r7):
    """R7: the reference replicates the column across the row."""
    target, bkgs = r7
    _, bk = run(target, bkgs)
    expected = np.repeat(np.arange(4, dtype=np.float32).reshape(4, 1), 6, axis=1)
    np.testing.assert_array_equal(bk["SCI"], expected)
    expected_dq = np.zeros((4, 6), np.uint32)
    expected_dq[2] = 16
    np.testing.assert_array_equal(bk["DQ"], expected_dq)
    np.testing.assert_array_equal(bk["ERR"], np.ones((4, 6), np.float32))


@pytest.mark.parametrize("kwargs", [{"rateints_geometry": "jwst-3.0"}, {"compat": "jwst-3.0"}])
def test_r7_jwst30_single_column(r7, kwargs):
    """R7 with the jwst-3.0 geometry."""
    target, bkgs = r7
    _, bk = run(target, bkgs, **kwargs)
    expected = np.zeros((4, 6), np.float32)
    expected[:, 0] = np.arange(4)
    np.testing.assert_array_equal(bk["SCI"], expected)
    expected_dq = np.zeros((4, 6), np.uint32)
    expected_dq[2, 0] = 16
    np.testing.assert_array_equal(bk["DQ"], expected_dq)


# ------------------------------------------------------------------------------------ R8-R9


def test_r8_more_background_integrations(mk):
    """R8: more background integrations: ValueError, or 20.0 under jwst-3.0."""
    target = Target(mk, (2, 4, 5))
    bkg = mk(cube([20, 20, 20], (4, 5)))
    with pytest.raises(ValueError):
        daskbkg.subtract_background(target.path, [bkg])
    for kwargs in ({"rateints_geometry": "jwst-3.0"}, {"compat": "jwst-3.0"}):
        _, bk = run(target, [bkg], **kwargs)
        np.testing.assert_array_equal(bk["SCI"], np.full((4, 5), 20.0, np.float32))


def test_r8_jwst30_uses_all_background_integrations(mk):
    """Under jwst-3.0 every background integration is used."""
    target = Target(mk, (2, 4, 5))
    bkg = mk(cube([10, 20, 60], (4, 5)))
    _, bk = run(target, [bkg], rateints_geometry="jwst-3.0")
    np.testing.assert_array_equal(bk["SCI"], np.full((4, 5), 30.0, np.float32))


@pytest.mark.parametrize("kwargs", [{}, {"rateints_geometry": "jwst-3.0"},
                                    {"rateints_empty_lane": "nan"}])
def test_r9_fewer_background_integrations(mk, kwargs):
    """R9: fewer background integrations work."""
    target = Target(mk, (2, 4, 5))
    bkg = mk(cube([20], (4, 5)), err=2.0, dq=1)
    _, bk = run(target, [bkg], **kwargs)
    np.testing.assert_array_equal(bk["SCI"], np.full((4, 5), 20.0, np.float32))
    np.testing.assert_array_equal(bk["ERR"], np.full((4, 5), 2.0, np.float32))
    np.testing.assert_array_equal(bk["DQ"], np.full((4, 5), 1, np.uint32))


def test_mixed_nints_backgrounds(mk):
    """Backgrounds with 1, 2 and 3 integrations under a 3-integration target."""
    target = Target(mk, (3, 2, 3))
    bkgs = [mk(cube([10], (2, 3))), mk(cube([10, 14], (2, 3))), mk(cube([9, 12, 15], (2, 3)))]
    _, bk = run(target, bkgs)
    np.testing.assert_array_equal(bk["SCI"], np.full((2, 3), f32(34 / 3), np.float32))


def test_r4_err_also_nan(mk):
    """With SCI and ERR both empty, the empty lane gives D = E = 0.0 (reference)."""
    third_sci = cube([10, 10], (2, 2))
    third_sci[:, 0, 0] = np.nan
    third_err = np.ones((2, 2, 2), np.float32)
    third_err[:, 0, 0] = np.nan
    bkgs = [mk(cube([10, 10], (2, 2))), mk(cube([10, 10], (2, 2))),
            mk(third_sci, err=third_err)]
    target = Target(mk, (2, 2, 2))
    _, bk = run(target, bkgs)
    assert bk["SCI"][0, 0] == f32(20 / 3) and bk["ERR"][0, 0] == f32(np.sqrt(2) / 3)
    _, bk = run(target, bkgs, rateints_empty_lane="nan")
    assert bk["SCI"][0, 0] == 10.0 and bk["ERR"][0, 0] == f32(np.sqrt(2) / 2)


@pytest.mark.parametrize("far_ndim", [2, 3])
def test_non_overlapping_background_is_nan_not_zero(mk, far_ndim):
    """A.7: a non-overlapping background gives NaN planes, not the empty-lane 0.0."""
    target = Target(mk, (2, 3, 4))
    far_shape = (3, 4) if far_ndim == 2 else (2, 3, 4)
    far = mk.const(far_shape, 50.0, dq=4, substrt=(5, 1))
    near = mk(cube([10, 10], (3, 4)))
    _, bk = run(target, [far, near])
    np.testing.assert_array_equal(bk["SCI"], np.full((3, 4), 10.0, np.float32))
    np.testing.assert_array_equal(bk["DQ"], np.zeros((3, 4), np.uint32))
    np.testing.assert_array_equal(bk["NBKG"], np.ones((3, 4), np.int32))


@pytest.mark.parametrize("chunks", [(1, 1), (2, 3), (3, -1), (1, -1)])
def test_oracles_hold_for_any_tiling(mk, chunks):
    """Broadcast and origin placement give the same images whatever the tile shape."""
    # R7: the single column replicated across tiles that do not contain column 0
    column = np.stack([np.arange(4, dtype=np.float32).reshape(4, 1)] * 2)
    target = Target(mk, (2, 4, 6))
    _, bk = run(target, [mk(column, subsize=(1, 4))], chunks=chunks)
    np.testing.assert_array_equal(
        bk["SCI"], np.repeat(np.arange(4, dtype=np.float32).reshape(4, 1), 6, axis=1))
    # R5: rows an overlapping background does not cover give 0.0 lanes
    a = mk(cube([10, 10], (4, 6)))
    b = mk(cube([20, 20], (2, 6)), subsize=(6, 2))
    _, bk = run(target, [a, b], chunks=chunks)
    np.testing.assert_array_equal(bk["SCI"][2:], np.full((2, 6), 5.0, np.float32))
    np.testing.assert_array_equal(bk["SCI"][:2], np.full((2, 6), 15.0, np.float32))
    # R6 under jwst-3.0 and the aligned placement
    narrow = mk(cube([20, 20], (4, 3)), substrt=(4, 1), subsize=(3, 4))
    _, bk = run(target, [narrow], chunks=chunks, rateints_geometry="jwst-3.0",
                subarray_placement="aligned")
    expected = np.zeros((4, 6), np.float32)
    expected[:, 3:] = 20.0
    np.testing.assert_array_equal(bk["SCI"], expected)


def test_nints_keyword_disagreement_uses_array(mk):
    """NINTS is informational: the SCI cube's first axis wins, with a warning."""
    target = Target(mk, (2, 2, 3))
    bkg = mk(cube([10, 12], (2, 3)), nints=5)
    with pytest.warns(UserWarning, match="NINTS"):
        result = daskbkg.subtract_background(target.path, [bkg])
    out = result.compute()
    np.testing.assert_array_equal(out.combined["SCI"], np.full((2, 3), 11.0, np.float32))
