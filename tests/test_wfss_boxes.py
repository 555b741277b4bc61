"""WFSS source boxes, masks, catalogs, wavelengthrange files and box tables.

Covers algorithm page W.3, W.4 and W.10 with the oracles B1–B6 of W.3, plus box computation through a
gwcs object built here.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from daskbkg._wfss_scene import write_source_catalog, write_wavelengthrange
from daskbkg.errors import InputError
from daskbkg.wfss.boxes import Box, box_bounds, compute_boxes, is_partial, keep_box, round_half_up
from daskbkg.wfss.boxtable import boxes_file_name, read_box_table, write_box_table
from daskbkg.wfss.catalog import (
    SourceCorners,
    filter_key,
    magnitude_selection,
    read_catalog,
    resolve_catalog_path,
    select_sources,
)
from daskbkg.wfss.errors import (
    WfssCatalogColumnError,
    WfssMaskError,
    WfssOrderError,
    WfssWavelengthRangeError,
)
from daskbkg.wfss.mask import rasterize_boxes, read_mask_file
from daskbkg.wfss.wavelengthrange import OrderRanges, orders_and_ranges, read_wavelengthrange

FULL = (2048, 2048)


# ------------------------------------------------------------------------------ B1-B4
@pytest.mark.parametrize("value, expected", [
    (2.5, 3), (2.4999, 2), (-0.5, 0), (-0.6, -1), (0.7, 1), (0.3, 0), (2047.3, 2047),
    (2047.6, 2048)])
def test_b1_rounding(value, expected):
    """B1: bounds round with floor(v + 0.5), halves up."""
    assert round_half_up(value) == expected


def test_rounding_refuses_non_finite():
    """A NaN bound cannot be rounded (the order is excluded instead)."""
    with pytest.raises(ValueError):
        round_half_up(float("nan"))


@pytest.mark.parametrize("xmin, xmax, kept", [
    (-900, 1, True), (-900, 0, False), (2046, 3000, True), (2047, 3000, False)])
def test_b2_dispersion_axis_rule(xmin, xmax, kept):
    """B2: strict rule along the dispersion axis."""
    assert keep_box(xmin, xmax, 300, 310, FULL, 1) is kept
    # With DISPAXIS 2 the same numbers on y follow the dispersion rule.
    assert keep_box(300, 310, xmin, xmax, FULL, 2) is kept


@pytest.mark.parametrize("ymin, ymax, kept", [
    (2047, 2060, True), (2048, 2060, False), (-5, 0, True), (-5, -1, False)])
def test_b3_cross_axis_rule(ymin, ymax, kept):
    """B3: inclusive rule across the dispersion axis."""
    assert keep_box(100, 1000, ymin, ymax, FULL, 1) is kept
    assert keep_box(ymin, ymax, 100, 1000, FULL, 2) is kept


def test_missing_dispaxis_means_y_and_missing_subsize_is_type_error():
    """A missing DISPAXIS means y; a missing SUBSIZE raises TypeError."""
    assert keep_box(-900, 0, 300, 310, FULL, None) is True  # x is then the cross axis
    assert keep_box(300, 310, -900, 0, FULL, None) is False
    with pytest.raises(TypeError) as info:
        keep_box(0, 10, 0, 10, (None, 2048), 1)
    assert isinstance(info.value, InputError)
    with pytest.raises(TypeError):
        compute_boxes([], None, OrderRanges("F356W", (1,), {1: (3.0, 4.0)}), (2048, None), 1)


def test_subsize_not_shape_decides():
    """The keep test uses SUBSIZE1/2."""
    assert keep_box(100, 200, 64, 70, (2048, 2048), 1)
    assert not keep_box(100, 200, 64, 70, (2048, 64), 1)  # ymin 64 > SUBSIZE2 - 1
    assert keep_box(100, 200, 63, 70, (2048, 64), 1)
    assert is_partial(100, 200, 63, 70, (2048, 64))


def test_b4_rasterize_inclusive_and_clipped():
    """B4: inclusive bounds clipped to the array."""
    mask = rasterize_boxes([Box(1, 1, 5, 9, -2, 1)], (6, 8))
    expected = np.ones((6, 8), dtype=bool)
    expected[0:2, 5:8] = False
    assert np.array_equal(mask, expected)
    assert np.count_nonzero(~mask) == 6


def test_rasterize_union_and_empty_ranges():
    """Boxes union; off-array boxes do nothing; no box means all True."""
    boxes = [Box(1, 1, 0, 1, 0, 0), Box(1, 2, 1, 2, 0, 1), Box(2, 1, 10, 20, 0, 3),
             Box(3, 1, -5, -1, 0, 3)]
    mask = rasterize_boxes(boxes, (4, 4))
    assert (~mask).sum() == 5 and not mask[0, :3].any() and not mask[1, 1:3].any()
    assert rasterize_boxes([], (3, 2)).all()


# ------------------------------------------------------------------------------ B5-B6
def test_b5_magnitude_cut():
    """B5: strict cut, NaN dropped (or kept with 'include'), default 999."""
    sel = magnitude_selection([25.9, 26.0, np.nan], 26)
    assert sel.tolist() == [True, False, False]
    assert magnitude_selection([25.9, 26.0, np.nan], 26, "include").tolist() == [True, False,
                                                                                 True]
    assert magnitude_selection([998.9, 999.0], 999.0).tolist() == [True, False]


def test_b6_orders_and_ranges():
    """B6: orders from the last entry, limits from the first row."""
    result = orders_and_ranges(
        [["F356W", [1]], ["F356W", [1, 2]]],
        [[1, "F356W", 3.1, 4.0], [1, "F356W", 3.0, 4.1], [2, "F356W", 3.1, 4.0]], "F356W")
    assert result.orders == (1, 2)
    assert result.ranges[1] == (3.1, 4.0)


def test_wavelengthrange_errors(tmp_path):
    """Missing filter/order: IndexError; non-WFSS file: ValueError."""
    with pytest.raises(IndexError) as info:
        orders_and_ranges([["F444W", [1]]], [[1, "F444W", 3.8, 5.1]], "F356W")
    assert isinstance(info.value, WfssOrderError)
    with pytest.raises(IndexError, match="order 2"):
        orders_and_ranges([["F356W", [1, 2]]], [[1, "F356W", 3.1, 4.0]], "F356W")
    good = write_wavelengthrange(tmp_path / "wr.asdf")
    assert read_wavelengthrange(good, "F356W").orders == (1, 2)
    imaging = write_wavelengthrange(tmp_path / "img.asdf", exp_type="NRC_IMAGE")
    with pytest.raises(ValueError, match="not for WFSS") as info:
        read_wavelengthrange(imaging, "F356W")
    assert isinstance(info.value, WfssWavelengthRangeError)
    with pytest.raises(FileNotFoundError):
        read_wavelengthrange(tmp_path / "missing.asdf", "F356W")


def test_filter_key():
    """NIRCam uses FILTER, NIRISS PUPIL; others refused (MIRI only as in 3.0)."""
    assert filter_key("NIRCAM", "F356W", "GRISMR") == "F356W"
    assert filter_key("NIRISS", "GR150R", "F150W") == "F150W"
    with pytest.raises(ValueError, match="NIRCam and NIRISS"):
        filter_key("MIRI", "P750L", None)
    assert filter_key("MIRI", "P750L", None, miri=True) == "P750L"


# ------------------------------------------------------------------------------ catalogs
def _catalog(path, mags, masked=None):
    n = len(mags)
    return write_source_catalog(path, np.arange(1, n + 1), np.linspace(10, 50, n),
                                np.linspace(5, 25, n), mags, masked=masked)


def test_catalog_selection_masked_and_nan(tmp_path):
    """Masked and NaN magnitudes follow the NaN rule."""
    path = _catalog(tmp_path / "cat.ecsv", [20.0, np.nan, 26.0, 25.0], masked=[0, 0, 0, 1])
    table = read_catalog(path)
    assert [s.label for s in select_sources(table, 999.0)] == [1, 3]
    assert [s.label for s in select_sources(table, 999.0, "include")] == [1, 2, 3, 4]
    assert [s.label for s in select_sources(table, 26)] == [1]
    src = select_sources(table, 999.0)[0]
    assert src.ra.shape == (4,) and src.dec.dtype == np.float64


def test_catalog_missing_column(tmp_path):
    """Missing required columns raise KeyError listing them."""
    path = _catalog(tmp_path / "cat.ecsv", [20.0])
    from astropy.table import QTable

    table = QTable.read(path)
    del table["is_extended"]
    del table["sky_bbox_ur"]
    table.write(tmp_path / "short.ecsv")
    with pytest.raises(KeyError) as info:
        read_catalog(tmp_path / "short.ecsv")
    assert isinstance(info.value, WfssCatalogColumnError)
    assert str(info.value).endswith("sky_bbox_ur, is_extended")


def test_catalog_resolution_order(tmp_path, monkeypatch):
    """Override, then the current directory, then the target's folder."""
    here, there = tmp_path / "cwd", tmp_path / "data"
    here.mkdir()
    there.mkdir()
    target = there / "t_rate.fits"
    _catalog(there / "cat.ecsv", [20.0])
    monkeypatch.chdir(here)
    assert resolve_catalog_path("cat.ecsv", target) == there / "cat.ecsv"
    _catalog(here / "cat.ecsv", [20.0])
    assert resolve_catalog_path("cat.ecsv", target).resolve() == (here / "cat.ecsv").resolve()
    other = _catalog(tmp_path / "other.ecsv", [20.0])
    assert resolve_catalog_path("cat.ecsv", target, override=other) == other
    with pytest.raises(ValueError, match="SCATFILE keyword is missing"):
        resolve_catalog_path(None, target)
    with pytest.raises(ValueError, match="empty"):
        resolve_catalog_path("  ", target)
    with pytest.raises(FileNotFoundError, match="nope.ecsv"):
        resolve_catalog_path("nope.ecsv", target)
    with pytest.raises(FileNotFoundError):
        resolve_catalog_path("cat.ecsv", target, override=tmp_path / "absent.ecsv")


# ------------------------------------------------------------------------------ box tables
BOXES = [Box(3, 1, 1115, 2074, 966, 1024, True), Box(5, 1, 708, 1645, 975, 1012, False),
         Box(74, 1, -905, 1, 298, 305, True)]


@pytest.mark.parametrize("suffix", [".ecsv", ".json"])
def test_box_table_round_trip(tmp_path, suffix):
    """Box tables survive a write/read round trip in both encodings."""
    path = write_box_table(BOXES, tmp_path / f"boxes{suffix}")
    assert read_box_table(path) == BOXES
    with pytest.raises(FileExistsError):
        write_box_table(BOXES, path)


def test_box_table_json_list_and_errors(tmp_path):
    """A bare JSON list is accepted; malformed tables raise ValueError."""
    rows = [{"label": 1, "order": 1, "xmin": 0, "xmax": 4, "ymin": 2, "ymax": 3}]
    (tmp_path / "a.json").write_text(json.dumps(rows))
    assert read_box_table(tmp_path / "a.json") == [Box(1, 1, 0, 4, 2, 3, False)]
    (tmp_path / "b.json").write_text(json.dumps([{"label": 1, "order": 1, "xmin": 0}]))
    with pytest.raises(ValueError, match="lacks column"):
        read_box_table(tmp_path / "b.json")
    (tmp_path / "c.json").write_text(json.dumps([{**rows[0], "xmin": 0.5}]))
    with pytest.raises(WfssMaskError, match="integers"):
        read_box_table(tmp_path / "c.json")
    (tmp_path / "d.json").write_text("{not json")
    with pytest.raises(ValueError):
        read_box_table(tmp_path / "d.json")
    with pytest.raises(FileNotFoundError):
        read_box_table(tmp_path / "none.ecsv")


def test_boxes_file_name():
    """Computed boxes are saved as <root>_wfssboxes.ecsv."""
    assert boxes_file_name("/data/jw1_nrcalong_rate.fits", "/out").as_posix() == \
        "/out/jw1_nrcalong_wfssboxes.ecsv"


# ------------------------------------------------------------------------------ user mask
def test_read_mask_file(tmp_path):
    """User masks: MASK extension or primary image, nonzero = background."""
    from astropy.io import fits

    mask = np.zeros((4, 5), dtype=np.uint32)
    mask[1, 2] = 1
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(mask, name="MASK")]).writeto(
        tmp_path / "ext.fits")
    fits.PrimaryHDU(mask.astype(np.float32) * 3).writeto(tmp_path / "prim.fits")
    for name in ("ext.fits", "prim.fits"):
        got = read_mask_file(tmp_path / name, (4, 5))
        assert got.dtype == bool and got.sum() == 1 and got[1, 2]
    with pytest.raises(ValueError, match="differs from the target"):
        read_mask_file(tmp_path / "ext.fits", (5, 4))
    fits.PrimaryHDU().writeto(tmp_path / "empty.fits")
    with pytest.raises(ValueError, match="no 2-D MASK"):
        read_mask_file(tmp_path / "empty.fits", (4, 5))
    with pytest.raises(FileNotFoundError):
        read_mask_file(tmp_path / "missing.fits", (4, 5))


# ------------------------------------------------------------------------------ gwcs
from astropy.modeling import Model  # noqa: E402


class ToyGrismBackward(Model):
    """world (ra, dec, wavelength, order) -> (x, y, x0, y0, order): 100 px per µm per order."""

    n_inputs = 4
    n_outputs = 5

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.inputs = ("ra", "dec", "wavelength", "order")
        self.outputs = ("x", "y", "x0", "y0", "order")

    @staticmethod
    def evaluate(ra, dec, wavelength, order):
        """Disperse along x: 100 px per micron per order from 3 micron."""
        return ra + 100.0 * (wavelength - 3.0) * order, dec + 0.0 * order, ra, dec, order


class ToyGrismForward(Model):
    """Inverse of :class:`ToyGrismBackward` (grism detector -> world)."""

    n_inputs = 5
    n_outputs = 4

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.inputs = ("x", "y", "x0", "y0", "order")
        self.outputs = ("ra", "dec", "wavelength", "order")

    @staticmethod
    def evaluate(x, y, x0, y0, order):
        """Undo the dispersion."""
        return x0, y0, (x - x0) / (100.0 * order) + 3.0, order

    @property
    def inverse(self):
        """The backward (world -> grism) transform."""
        return ToyGrismBackward()


@pytest.fixture(scope="module")
def toy_backward():
    """Backward transform of a gwcs.WCS built from the toy models."""
    gwcs = pytest.importorskip("gwcs")
    wcs = gwcs.WCS(forward_transform=ToyGrismForward(), input_frame="grism_detector",
                   output_frame="world")
    return wcs.backward_transform


def _source(label, ra, dec):
    ra_lo, ra_hi = ra
    dec_lo, dec_hi = dec
    return SourceCorners(label, np.array([ra_lo, ra_hi, ra_lo, ra_hi], dtype=np.float64),
                         np.array([dec_lo, dec_lo, dec_hi, dec_hi], dtype=np.float64), 20.0)


def test_gwcs_box_rounding_and_clipping(toy_backward):
    """Rounding, keep/drop and clipping through a gwcs backward transform."""
    orders = OrderRanges("F356W", (1, 2), {1: (3.0, 4.0), 2: (3.0, 4.0)})
    sources = [
        _source(1, (-150.0, -99.3), (300.0, 305.0)),   # order 1 xmax 0.7 -> 1: kept
        _source(2, (-150.0, -99.7), (420.0, 425.0)),   # order 1 xmax 0.3 -> 0: dropped
        _source(3, (500.0, 510.0), (2047.3, 2050.0)),  # ymin 2047: kept
        _source(4, (500.0, 510.0), (2047.6, 2050.0)),  # ymin 2048: dropped
        _source(5, (2.5, 10.5), (-0.5, 4.5)),          # halves round up
        _source(6, (2.5, 10.5), (-0.6, 4.5)),          # ymin -1: partial, kept
        _source(7, (900.0, 920.0), (np.nan, np.nan)),  # no finite y: excluded
    ]
    boxes = compute_boxes(sources, toy_backward, orders, FULL, 1)
    # x = ra at lambda_min and ra + 100 * order at lambda_max; y = dec.
    assert [b.as_row() for b in boxes] == [
        [1, 1, -150, 1, 300, 305, True],
        [1, 2, -150, 101, 300, 305, True],
        [2, 2, -150, 100, 420, 425, True],   # order 2 of source 2 survives alone
        [3, 1, 500, 610, 2047, 2050, True],
        [3, 2, 500, 710, 2047, 2050, True],
        [5, 1, 3, 111, 0, 5, False],
        [5, 2, 3, 211, 0, 5, False],
        [6, 1, 3, 111, -1, 5, True],
        [6, 2, 3, 211, -1, 5, True],
    ]
    # The mask clips the partial box to columns 0-1 (inclusive) of rows 300-305.
    mask = rasterize_boxes(boxes[:1], FULL)
    assert (~mask).sum() == 2 * 6 and not mask[300:306, 0:2].any()
    # With DISPAXIS 2, y is the dispersion axis: ymin 2047 fails the strict "< 2047" rule.
    along_y = compute_boxes(sources[2:3], toy_backward, orders, FULL, 2)
    assert along_y == []


def test_gwcs_nan_corners_are_ignored(toy_backward):
    """NaN projections are ignored; all-NaN extremes exclude the order."""
    orders = OrderRanges("F356W", (1,), {1: (3.0, 4.0)})
    src = SourceCorners(9, np.array([10.0, 20.0, np.nan, 30.0]),
                        np.array([50.0, np.nan, 60.0, 70.0]), 20.0)
    (box,) = compute_boxes([src], toy_backward, orders, FULL, 1)
    # x from the finite ra (10..30 and +100), y from the finite dec values (50..70).
    assert box.as_row() == [9, 1, 10, 130, 50, 70, False]
    assert box_bounds([np.nan] * 8, [1.0] * 8) is None
