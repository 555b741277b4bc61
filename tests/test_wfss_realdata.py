"""WFSS boxes and masks on the real-format test data (testdata/wfss, see its README).

Each scenario's target holds a real NIRCam grism gwcs (written by the reference's
assign_wcs step). The boxes, the mask and the counts must equal the reference's exactly.
The gwcs is evaluated once per scenario and rule (module-scoped fixtures).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("gwcs")
pytest.importorskip("stdatamodels.jwst.datamodels")

from astropy.table import Table  # noqa: E402

from daskbkg.io.exposure import read_exposure  # noqa: E402
from daskbkg.options import make_compat  # noqa: E402
from daskbkg.wfss.boxes import round_half_up  # noqa: E402
from daskbkg.wfss.catalog import read_catalog, select_sources  # noqa: E402
from daskbkg.wfss.grismwcs import grism_backward_transform  # noqa: E402
from daskbkg.wfss.params import WfssParams  # noqa: E402
from daskbkg.wfss.sources import background_mask, describe  # noqa: E402

DATA = Path(os.environ.get("DASKBKG_WFSS_TESTDATA", "/work/shared/testdata/wfss"))
CASES = ("nrc_grismr_f356w", "nrc_grismr_f356w_mmag26", "nrc_grismc_f356w")

if not DATA.is_dir():
    pytest.skip(f"WFSS test data not found in {DATA}", allow_module_level=True)


class Case:
    """One scenario: files, expectations and the computed masks (both NaN rules)."""

    def __init__(self, name: str):
        self.name = name
        self.folder = DATA / name
        self.expected = json.loads((self.folder / "expected.json").read_text())
        self.target = read_exposure(self.folder / self.expected["files"]["target"])
        self.params = WfssParams(mmag_extract=self.expected["wfss_mmag_extract"])
        self.dispaxis = self.expected["keywords"]["DISPAXIS"]
        self.mask = background_mask(self.target, params=self.params)
        self.mask30 = background_mask(self.target, params=self.params,
                                      compat=make_compat(wfss_nan_mag="include"))

    def expected_rows(self):
        """Rows of expected_boxes.ecsv as [label, order, xmin, xmax, ymin, ymax, partial]."""
        table = Table.read(self.folder / "expected_boxes.ecsv", format="ascii.ecsv")
        return [[int(r["source_id"]), int(r["order"]), int(r["xmin"]), int(r["xmax"]),
                 int(r["ymin"]), int(r["ymax"]), bool(r["partial"])] for r in table]

    def expected_source_mask(self):
        """Return the reference's source mask (True = source)."""
        z = np.load(self.folder / "expected_mask.npz")
        shape = tuple(int(n) for n in z["shape"])
        flat = np.unpackbits(z["packed_mask"], count=shape[0] * shape[1])
        return flat.reshape(shape).astype(bool)


@pytest.fixture(scope="module", params=CASES)
def case(request):
    """One scenario, evaluated once."""
    return Case(request.param)


def _rows(mask):
    return [b.as_row() for b in mask.boxes]


def test_boxes_equal_reference_in_order(case):
    """Boxes equal expected_boxes.ecsv, in order."""
    assert case.mask.origin == "catalog"
    assert _rows(case.mask) == case.expected_rows()


def test_mask_equals_reference(case):
    """The mask equals expected_mask.npz."""
    assert np.array_equal(~case.mask.mask, case.expected_source_mask())


def test_counts_equal_reference(case):
    """Counts equal expected.json['reference']."""
    ref = case.expected["reference"]
    got = describe(case.mask)
    assert got["n_objects_with_boxes"] == ref["n_objects_with_boxes"]
    assert got["n_boxes"] == ref["n_boxes"]
    assert got["n_partial_boxes"] == ref["n_partial_boxes"]
    assert got["mask_background_pixels"] == ref["mask_background_pixels"]
    assert got["mask_pixels"] - got["mask_background_pixels"] == ref["mask_source_pixels"]


def test_jwst30_nan_magnitude_rule_counts(case):
    """wfss_nan_mag='include' gives the jwst 3.0.0 counts."""
    ref = case.expected["jwst_3_0_0"]
    got = describe(case.mask30)
    for key in ("n_objects_with_boxes", "n_boxes", "n_partial_boxes",
                "mask_background_pixels"):
        assert got[key] == ref[key], key
    extra = {tuple(r) for r in _rows(case.mask30)} - {tuple(r) for r in _rows(case.mask)}
    nan_labels = {int(r["label"]) for r in read_catalog(case.mask.catalog)
                  if not np.isfinite(float(r["isophotal_abmag"]))}
    assert extra and {r[0] for r in extra} <= nan_labels


def test_box_table_route_reproduces_mask(case, tmp_path):
    """expected_boxes.ecsv as a user box table reproduces the mask."""
    table = Table.read(case.folder / "expected_boxes.ecsv", format="ascii.ecsv")
    table.rename_column("source_id", "label")
    table.keep_columns(["label", "order", "xmin", "xmax", "ymin", "ymax"])
    table.write(tmp_path / "boxes.ecsv", format="ascii.ecsv")
    via_table = background_mask(case.target, source_boxes=tmp_path / "boxes.ecsv")
    assert via_table.origin == "boxes"
    assert np.array_equal(via_table.mask, case.mask.mask)


def test_clipped_columns_rasterise_to_the_same_mask(case):
    """The *_clip columns rasterise to the same mask."""
    table = Table.read(case.folder / "expected_boxes.ecsv", format="ascii.ecsv")
    source = np.zeros((2048, 2048), dtype=bool)
    for r in table:
        source[r["ymin_clip"]:r["ymax_clip"] + 1, r["xmin_clip"]:r["xmax_clip"] + 1] = True
    assert np.array_equal(source, ~case.mask.mask)


def _disp_cross(row, dispaxis):
    """(dmin, dmax, cmin, cmax) of a box row in the scenario's dispersion frame."""
    _, _, xmin, xmax, ymin, ymax, _ = row
    return (xmin, xmax, ymin, ymax) if dispaxis == 1 else (ymin, ymax, xmin, xmax)


def test_edge_sources(case):
    """The hand-placed edge sources show each rule (README item 5)."""
    rows = {(r[0], r[1]): r for r in _rows(case.mask)}
    labels = {r[0] for r in rows.values()}
    d = case.dispaxis
    # 73 straddles the cross-axis edge 0: partial, bound -3, clipped to 0 in the mask.
    _, _, cmin, cmax = _disp_cross(rows[(73, 1)], d)
    assert rows[(73, 1)][6] is True and cmin == -3
    edge = case.mask.mask[0, :] if d == 1 else case.mask.mask[:, 0]
    assert not edge.all()
    # 74 order 1: the along-dispersion max rounds to 1, so it is kept.
    assert _disp_cross(rows[(74, 1)], d)[1] == 1
    # 75: order 1 rounds to 0 and is dropped; its order 2 is kept.
    assert (75, 1) not in rows and (75, 2) in rows
    # 76: cross-axis min 2047, kept; 77: 2048, dropped.
    assert _disp_cross(rows[(76, 1)], d)[2] == 2047
    assert 77 not in labels
    # 71: NaN magnitude -> no box (kept under the jwst 3.0 rule).
    assert 71 not in labels
    assert 71 in {r[0] for r in _rows(case.mask30)}
    # 72: 27.9 mag -> kept without a cut, dropped with cut 26.
    cut = case.expected["wfss_mmag_extract"]
    assert (72 in labels) is (cut is None)


def test_raw_edge_values(case):
    """The raw projected extremes of 74/75 (order 1) and 76/77 straddle the rounding."""
    table = read_catalog(case.mask.catalog)
    sources = {s.label: s for s in select_sources(table, 999.0)}
    d = case.dispaxis
    with grism_backward_transform(case.target.path) as backward:
        def extremes(label, order):
            s = sources[label]
            pts = [backward(s.ra, s.dec, np.full(4, lam), np.full(4, order)) for lam in (3.1, 4.0)]
            xs = np.concatenate([np.asarray(p[0]) for p in pts])
            ys = np.concatenate([np.asarray(p[1]) for p in pts])
            disp, cross = (xs, ys) if d == 1 else (ys, xs)
            return np.nanmax(disp), np.nanmin(cross)

        assert abs(extremes(74, 1)[0] - 0.7) < 0.05 and round_half_up(extremes(74, 1)[0]) == 1
        assert abs(extremes(75, 1)[0] - 0.3) < 0.05 and round_half_up(extremes(75, 1)[0]) == 0
        assert abs(extremes(76, 1)[1] - 2047.3) < 0.05
        assert abs(extremes(77, 1)[1] - 2047.6) < 0.05


# ------------------------------------------------------------------- full product (catalog)
@pytest.fixture(scope="module")
def ones_reference(tmp_path_factory):
    """Write a full-frame background reference of ones."""
    from daskbkg.datasets import write_exposure

    path = tmp_path_factory.mktemp("wfssbkg") / "ones_wfssbkg.fits"
    ones = np.ones((2048, 2048), dtype=np.float32)
    return write_exposure(path, ones, ones, None, instrument="NIRCAM", exp_type="NRC_WFSS",
                          var_arrays=False, asdf_extension=False)


def _hdu_bytes(path, name):
    from daskbkg.io.layout import scan_fits

    hdu = scan_fits(path).find(name)
    with open(path, "rb") as f:
        f.seek(hdu.header_offset)
        return f.read(hdu.end - hdu.header_offset)


def test_catalog_route_product_and_output(ones_reference, tmp_path):
    """The zeroed target through the whole catalog route.

    The factor is 0 (README), the mask count is the reference's and the gwcs-holding ASDF
    extension is copied verbatim.
    """
    from astropy.io import fits

    from daskbkg.result import BackgroundResult
    from daskbkg.wfss import build_wfss_product

    case = Case("nrc_grismr_f356w")
    product = build_wfss_product(case.target.path, bkg_ref=ones_reference, params=case.params,
                                 compat=make_compat(save_wfss_mask=True))
    assert product.status == "COMPLETE"
    assert product.info["scale_factor"] == 0.0
    assert product.info["mask_background_pixels"] == \
        case.expected["reference"]["mask_background_pixels"]
    out = tmp_path / "out.fits"
    BackgroundResult(product).to_fits(out)
    with fits.open(out) as hdul:
        assert hdul[0].header["S_BKDSUB"] == "COMPLETE"
        assert not np.asarray(hdul["SCI"].data).any()
        mask = np.asarray(hdul["MASK"].data).astype(bool)
    assert np.array_equal(mask, ~case.expected_source_mask())
    assert _hdu_bytes(out, "ASDF") == _hdu_bytes(case.target.path, "ASDF")

    failed = build_wfss_product(case.target.path, bkg_ref=ones_reference, params=case.params,
                                compat=make_compat("jwst-3.0"))
    assert failed.status == "FAILED"  # zero variance everywhere (README)
    assert failed.primary_updates == {"S_BKDSUB": "FAILED", "BKGD_SCL": 0.0}
    assert failed.info["mask_background_pixels"] == \
        case.expected["jwst_3_0_0"]["mask_background_pixels"]
