"""Output-name roots (algorithm page C.4) and level-2 associations (C.5)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from daskbkg.errors import AssociationError
from daskbkg.io.asn import is_association, read_association
from daskbkg.io.naming import KNOWN_SUFFIXES, output_name, split_root

# ================================================================================ naming


@pytest.mark.parametrize("name, expected", [
    ("x_rate.fits", ("x", "_")),
    ("a_rate_cal.fits", ("a_rate", "_")),
    ("test.fits", ("test", "_")),
    ("b-cal.fits", ("b", "-")),
    ("x_calints.fits", ("x", "_")),
    ("x_rateints.fits", ("x", "_")),
    ("jw00623037001_02101_00001_mirimage_rate.fits",
     ("jw00623037001_02101_00001_mirimage", "_")),
    ("x_outlier_detection.fits", ("x", "_")),     # multi-word suffix removed whole
    ("x_rate_outlier_detection.fits", ("x_rate", "_")),
    ("x_psf-amiavg.fits", ("x", "_")),            # suffix that contains a dash
    ("x_mirimage.fits", ("x_mirimage", "_")),     # unknown suffix: whole stem
    ("x_rate", ("x", "_")),                       # no .fits extension
    ("x-rate_foo.fits", ("x-rate_foo", "_")),
])
def test_split_root(name, expected):
    """Roots and separators of target file names."""
    assert split_root(name) == expected


def test_split_root_ignores_folders():
    """Only the basename matters."""
    assert split_root("/data/run_rate/x_rate.fits") == ("x", "_")
    assert split_root(Path("some") / "dir" / "a_rate_cal.fits") == ("a_rate", "_")


def test_split_root_removes_one_suffix_only():
    """Exactly one known suffix is removed."""
    assert split_root("x_rate_rate.fits") == ("x_rate", "_")
    assert split_root("x_cal_rateints.fits") == ("x_cal", "_")


def test_output_names():
    """Output names join root, separator and suffix."""
    root, sep = split_root("x_rateints.fits")
    assert output_name(root, sep, "bkgsub") == "x_bkgsub.fits"
    assert output_name(root, sep, "combinedbackground") == "x_combinedbackground.fits"
    root, sep = split_root("b-cal.fits")
    assert output_name(root, sep, "bkgsub", ".zarr") == "b-bkgsub.zarr"


def test_known_suffix_list():
    """The suffix list is the reference's."""
    for sfx in ("rate", "rateints", "cal", "calints", "bsub", "bsubints", "psf-amiavg",
                "outlier_detection", "x1dints", "backgroundstep"):
        assert sfx in KNOWN_SUFFIXES
    assert len(KNOWN_SUFFIXES) == 160  # the reference list (algorithm page C.4)
    assert "bkgsub" not in KNOWN_SUFFIXES and "mirimage" not in KNOWN_SUFFIXES


# =========================================================================== association


def write(folder: Path, content, name="x_asn.json") -> Path:
    """Write ``content`` (JSON-encoded unless a string) to ``folder/name``."""
    path = folder / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def product(name, *members):
    """Build an association product with ``(expname, exptype)`` members."""
    return {"name": name, "members": [{"expname": e, "exptype": t} for e, t in members]}


def test_valid_association(tmp_path):
    """Products, roles and member order of a valid association."""
    asn = write(tmp_path, {"asn_type": "image2", "asn_id": "o037", "products": [
        product("p1", ("t1_rate.fits", "science"), ("b1_rate.fits", "background"),
                ("b2_rate.fits", "background"), ("cat.ecsv", "sourcecat"),
                ("seg.fits", "segmap"), ("d.fits", "direct_image"), ("i.fits", "imprint")),
        product("p2", ("b1_rate.fits", "science"), ("t1_rate.fits", "background")),
    ]})
    products = read_association(asn)
    assert [p.name for p in products] == ["p1", "p2"]
    p1, p2 = products
    assert p1.error is None and p2.error is None
    assert p1.science == tmp_path / "t1_rate.fits"
    assert p1.backgrounds == (tmp_path / "b1_rate.fits", tmp_path / "b2_rate.fits")
    assert p1.sourcecat == tmp_path / "cat.ecsv"
    assert p2.science == tmp_path / "b1_rate.fits"
    assert p2.backgrounds == (tmp_path / "t1_rate.fits",)


def test_members_resolved_against_asn_folder(tmp_path, monkeypatch):
    """Relative members resolve against the ASN folder, not the cwd."""
    folder = tmp_path / "a" / "b"
    folder.mkdir(parents=True)
    asn = write(folder, {"asn_type": "spec2", "products": [
        product("p", ("sub/t_rate.fits", "science"), ("../bk_rate.fits", "background"))]})
    monkeypatch.chdir(tmp_path)
    (p,) = read_association(Path("a/b/x_asn.json"))
    assert p.error is None
    assert p.science.resolve() == (folder / "sub" / "t_rate.fits").resolve()
    assert p.backgrounds[0].resolve() == (tmp_path / "a" / "bk_rate.fits").resolve()
    assert asn.exists()


def test_background_order_kept(tmp_path):
    """Backgrounds keep member order, science anywhere."""
    names = [f"bk{k}_rate.fits" for k in (3, 1, 2, 0)]
    asn = write(tmp_path, {"asn_type": "image2", "products": [
        product("p", *[(n, "background") for n in names[:2]], ("t_rate.fits", "science"),
                *[(n, "background") for n in names[2:]])]})
    (p,) = read_association(asn)
    assert [b.name for b in p.backgrounds] == names


def test_bad_json(tmp_path):
    """Invalid JSON raises AssociationError (a ValueError)."""
    asn = write(tmp_path, '{"asn_type": "image2", "products": [')
    with pytest.raises(AssociationError) as info:
        read_association(asn)
    assert isinstance(info.value, ValueError)
    assert "x_asn.json" in str(info.value)


def test_missing_file(tmp_path):
    """A missing association file raises AssociationError."""
    with pytest.raises(AssociationError, match="not found"):
        read_association(tmp_path / "none_asn.json")


@pytest.mark.parametrize("content", [{"asn_type": "image2"}, {"products": "p"}, [1, 2],
                                     {"asn_type": "image2", "products": None}])
def test_missing_products(tmp_path, content):
    """An association without a products list is rejected."""
    with pytest.raises(AssociationError, match="products"):
        read_association(write(tmp_path, content))


@pytest.mark.parametrize("asn_type", ["image3", "spec3", "IMAGE3"])
def test_level3_rejected(tmp_path, asn_type):
    """Level-3 associations are rejected."""
    asn = write(tmp_path, {"asn_type": asn_type, "products": [
        product("p", ("t_rate.fits", "science"))]})
    with pytest.raises(AssociationError, match="level-3"):
        read_association(asn)


def test_unknown_exptype(tmp_path):
    """An unknown role fails its product only."""
    asn = write(tmp_path, {"asn_type": "image2", "products": [
        product("bad", ("t_rate.fits", "science"), ("b_rate.fits", "bkg")),
        product("good", ("u_rate.fits", "science"), ("b_rate.fits", "background")),
    ]})
    bad, good = read_association(asn)
    assert bad.error and "bkg" in bad.error and "bad" in bad.error
    assert good.error is None and good.science.name == "u_rate.fits"


def test_exptype_is_case_insensitive(tmp_path):
    """Roles are matched case-insensitively."""
    asn = write(tmp_path, {"asn_type": "image2", "products": [
        product("p", ("t_rate.fits", "SCIENCE"), ("b_rate.fits", "Background"))]})
    (p,) = read_association(asn)
    assert p.error is None and p.backgrounds[0].name == "b_rate.fits"


def test_no_science_member(tmp_path):
    """A product without a science member fails."""
    asn = write(tmp_path, {"asn_type": "image2", "products": [
        product("p", ("b_rate.fits", "background"))]})
    (p,) = read_association(asn)
    assert p.error and "science" in p.error and "found 0" in p.error
    assert p.science is None


def test_two_science_members(tmp_path):
    """A product with two science members fails."""
    asn = write(tmp_path, {"asn_type": "image2", "products": [
        product("p", ("t1_rate.fits", "science"), ("t2_rate.fits", "science"))]})
    (p,) = read_association(asn)
    assert p.error and "found 2" in p.error and p.science is None


def test_malformed_members(tmp_path):
    """Missing members lists or member keys fail the product."""
    asn = write(tmp_path, {"asn_type": "image2", "products": [
        {"name": "nomembers"},
        {"name": "badmember", "members": [{"expname": "t_rate.fits"},
                                          {"expname": "u_rate.fits", "exptype": "science"}]},
    ]})
    nomembers, badmember = read_association(asn)
    assert nomembers.error and "members" in nomembers.error
    assert badmember.error and "expname/exptype" in badmember.error


def test_absolute_path_warning(tmp_path, caplog):
    """An absolute member path is used, with one warning."""
    absolute = tmp_path / "elsewhere" / "t_rate.fits"
    asn = write(tmp_path, {"asn_type": "image2", "products": [
        product("p", (str(absolute), "science"), ("b_rate.fits", "background"))]})
    with caplog.at_level(logging.WARNING, logger="daskbkg"):
        (p,) = read_association(asn)
    assert p.science == absolute
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "absolute" in warnings[0].getMessage()
    assert str(absolute) in warnings[0].getMessage()


def test_relative_path_no_warning(tmp_path, caplog):
    """Relative member paths give no warning."""
    asn = write(tmp_path, {"asn_type": "image2", "products": [
        product("p", ("t_rate.fits", "science"))]})
    with caplog.at_level(logging.WARNING, logger="daskbkg"):
        read_association(asn)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_is_association():
    """JSON files are associations, FITS files are not."""
    assert is_association("x_asn.json") and is_association(Path("a/X.JSON"))
    assert not is_association("x_rate.fits")
