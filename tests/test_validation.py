"""The validation layer: every bad input is refused before a graph exists, in one line.

* Errors: one parametrized table of bad inputs. Each case asserts the daskbkg exception
  class, the built-in type the reference raises (or the natural one), the file name and
  reason in the message, unchanged input files and an empty output folder.
* Warnings: inputs the reference accepts and defines a result for. The default result is
  the reference's, exactly one warning line names the file and the issue, and
  ``strict=True`` raises.
* Disk full while writing: ``OutputError`` naming the file, nothing left behind.
* Numerical hazards: NaN/inf regions, constant stacks, one background, huge values,
  float32 overflow of ERR², subarrays at the detector edge (values from the algorithm page).
"""

from __future__ import annotations

import errno
import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from helpers import const, f32, hashes, listing

import daskbkg
from daskbkg import errors as E
from daskbkg.validate import (
    Finding,
    enforce,
    validate_association,
    validate_exposures,
    validate_outputs,
    validate_params,
)

SHAPE = (4, 5)
TILT = 1e-4


@pytest.fixture
def mk(inputs):
    """Exposure maker writing into ``tmp_path/in`` (the shared ``inputs`` fixture)."""
    return inputs


@pytest.fixture
def out(tmp_path):
    """Create an empty output folder."""
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def rewrite(path: Path, name: str, **hdus) -> Path:
    """Copy ``path`` to ``name`` with extensions replaced (array) or dropped (None)."""
    with fits.open(path) as hdul:
        new = []
        for hdu in hdul:
            if hdu.name in hdus:
                if hdus[hdu.name] is not None:
                    new.append(fits.ImageHDU(hdus[hdu.name], header=hdu.header, name=hdu.name))
            else:
                new.append(hdu.copy())
        dest = path.with_name(name)
        fits.HDUList(new).writeto(dest)
    return dest


def write_asn(folder: Path, products, name="case_asn.json", asn_type="image2") -> Path:
    """Write a level-2 association; ``products`` is a list of raw product dicts."""
    path = folder / name
    path.write_text(json.dumps({"asn_type": asn_type, "asn_id": "o001", "products": products}))
    return path


def member(expname, exptype):
    """Return one association member entry."""
    return {"expname": str(expname), "exptype": exptype}


def run_api(target, bkgs, out, **kwargs):
    """Subtract and write, as a user would; errors must happen before anything is written."""
    result = daskbkg.subtract_background(target, bkgs, **kwargs)
    return result.to_fits(out / "result_bkgsub.fits", scheduler="synchronous")


# ================================================================================ errors
#
# Each builder gets (mk, out) and returns (callable, daskbkg class, built-in type, regex).

def _ok(mk, value=10.0, **kw):
    return mk.const(SHAPE, value, **kw)


def case_missing_target(mk, out):
    """Target file does not exist."""
    t = mk.folder / "nothere_rate.fits"
    return lambda b=_ok(mk): run_api(t, [b], out), E.InputFileNotFoundError, FileNotFoundError, \
        r"nothere_rate\.fits: file not found"


def case_missing_background(mk, out):
    """Second background does not exist."""
    t, b = _ok(mk, 100.0), mk.folder / "gone_rate.fits"
    return lambda a=_ok(mk): run_api(t, [a, b], out), E.InputFileNotFoundError, FileNotFoundError, \
        r"gone_rate\.fits: file not found"


def case_not_fits(mk, out):
    """Give a text file named like a product."""
    text = mk.folder / "notes_rate.fits"
    text.write_text("this is not FITS\n" * 400)
    return lambda t=_ok(mk, 100.0): run_api(t, [text], out), E.NotFitsError, OSError, \
        r"notes_rate\.fits: not a readable FITS file"


def case_directory(mk, out):
    """Give a directory where the target file should be."""
    folder = mk.folder / "dir_rate.fits"
    folder.mkdir()
    return lambda b=_ok(mk): run_api(folder, [b], out), E.NotFitsError, OSError, \
        r"dir_rate\.fits: is a directory"


def case_truncated_in_sci(mk, out):
    """File cut inside the SCI data."""
    full = _ok(mk, name="whole_rate.fits")
    cut = mk.folder / "cut_rate.fits"
    cut.write_bytes(full.read_bytes()[: 2880 * 2 + 40])  # inside the SCI data
    return lambda t=_ok(mk, 100.0): run_api(t, [cut], out), E.NotFitsError, OSError, \
        r"cut_rate\.fits: truncated"


def case_truncated_in_last_table(mk, out):
    """File cut inside the last (ASDF) table."""
    full = _ok(mk, name="whole2_rate.fits")
    data = full.read_bytes()
    with fits.open(full) as hdul:
        start = hdul.fileinfo(len(hdul) - 1)["datLoc"]  # the ASDF table's data
    cut = mk.folder / "tail_rate.fits"
    cut.write_bytes(data[: start + 10])
    return lambda t=_ok(mk, 100.0): run_api(t, [cut], out), E.NotFitsError, OSError, \
        r"tail_rate\.fits: truncated"


def _drop(ext, **kwargs):
    """SCI always, ERR/DQ under compat="jwst-3.0" (jwst 1.13 fills zeros)."""
    def build(mk, out):
        bad = rewrite(_ok(mk), f"no{ext.lower()}_rate.fits", **{ext: None})
        return lambda t=_ok(mk, 100.0): run_api(t, [bad], out, **kwargs), \
            E.MissingExtensionError, KeyError, \
            rf"no{ext.lower()}_rate\.fits: missing {ext} image extension"
    return build


def case_dq_float(mk, out):
    """DQ written as float32."""
    bad = rewrite(_ok(mk), "floatdq_rate.fits", DQ=np.zeros(SHAPE, np.float32))
    return lambda b=_ok(mk): run_api(bad, [b], out), E.DataTypeError, TypeError, \
        (r"floatdq_rate\.fits: DQ extension \(HDU \d\): stored as BITPIX -32, which astropy "
         r"decodes to float32 values; DQ must hold integers")


def case_dq_scaled(mk, out):
    """DQ written as int16 with BSCALE 0.5 (astropy gives float32)."""
    bad = rewrite(_ok(mk), "scaleddq_rate.fits", DQ=np.zeros(SHAPE, np.float32))
    with fits.open(bad, mode="update") as hdul:
        hdul["DQ"].scale("int16", bscale=0.5)
    return lambda b=_ok(mk): run_api(bad, [b], out), E.DataTypeError, TypeError, \
        r"scaleddq_rate\.fits: DQ extension \(HDU \d\): stored as BITPIX 16, BSCALE 0\.5"


def case_sci_4d(mk, out):
    """SCI is 4-D."""
    bad = rewrite(_ok(mk), "fourd_rate.fits", SCI=np.ones((1, 1, *SHAPE), np.float32))
    return lambda b=_ok(mk): run_api(bad, [b], out), E.GeometryError, ValueError, \
        r"fourd_rate\.fits: SCI must be 2-D or 3-D, not 4-D"


def case_err_shape(mk, out):
    """ERR shaped differently from SCI."""
    bad = rewrite(_ok(mk), "errshape_rate.fits", ERR=np.ones((3, 3), np.float32))
    return lambda t=_ok(mk, 100.0): run_api(t, [bad], out), E.GeometryError, ValueError, \
        r"errshape_rate\.fits: ERR shape \(3, 3\) differs from SCI shape \(4, 5\)"


def case_unknown_exp_type_target(mk, out):
    """Target EXP_TYPE is not a JWST type."""
    t = _ok(mk, 100.0, name="odd_rate.fits", exp_type="FOO_BAR")
    return lambda b=_ok(mk): run_api(t, [b], out), E.UnsupportedExposureError, ValueError, \
        r"odd_rate\.fits: unknown EXP_TYPE 'FOO_BAR'"


def case_unknown_exp_type_background(mk, out):
    """Background EXP_TYPE is not a JWST type."""
    b = _ok(mk, name="oddbkg_rate.fits", exp_type="NOT_JWST")
    return lambda t=_ok(mk, 100.0): run_api(t, [b], out), E.UnsupportedExposureError, ValueError, \
        r"oddbkg_rate\.fits: unknown EXP_TYPE 'NOT_JWST'"


def case_wfss_target(mk, out):
    """WFSS target given to the imaging path."""
    t = _ok(mk, 100.0, name="grism_rate.fits", instrument="NIRCAM", exp_type="NRC_WFSS")
    return lambda b=_ok(mk, instrument="NIRCAM"): run_api(t, [b], out), \
        E.UnsupportedExposureError, ValueError, r"grism_rate\.fits: EXP_TYPE NRC_WFSS is WFSS"


def _param(kwargs, cls, builtin, regex):
    def build(mk, out):
        t, b = _ok(mk, 100.0), _ok(mk)
        return lambda: run_api(t, [b], out, **kwargs), cls, builtin, regex
    return build


def case_combine_bad_sigma(mk, out):
    """combine_backgrounds with a negative sigma."""
    return lambda b=_ok(mk): daskbkg.combine_backgrounds([b], sigma=-2.0), E.ParameterError, \
        ValueError, r"sigma must be a positive finite number, not -2\.0"


def case_unknown_format(mk, out):
    """Output format that does not exist."""
    return lambda: enforce(validate_params(fmt="hdf5")), E.ParameterError, ValueError, \
        r"unknown output format 'hdf5'; use fits or zarr"


def case_output_dir_not_creatable(mk, out):
    """Output folder below a regular file."""
    blocker = out / "afile"
    blocker.write_text("x")
    target = blocker / "sub" / "x_bkgsub.fits"

    def call():
        enforce(validate_outputs([target], []))
    return call, E.OutputError, OSError, \
        r"x_bkgsub\.fits: cannot create output directory .*afile is not a directory"


def case_output_dir_missing_api(mk, out):
    """to_fits into a folder that does not exist."""
    t = _ok(mk, 100.0)
    return lambda b=_ok(mk): daskbkg.subtract_background(t, [b]).to_fits(out / "no" / "x.fits"), \
        E.OutputError, OSError, r"output directory does not exist"


def case_output_is_input(mk, out):
    """to_fits onto the target file itself."""
    t = _ok(mk, 100.0, name="same_rate.fits")
    b = _ok(mk)
    return lambda: daskbkg.subtract_background(t, [b]).to_fits(t), E.OutputError, OSError, \
        r"same_rate\.fits: output path is an input file"


def case_output_clash(mk, out):
    """Two outputs of one run with the same path."""
    return lambda: enforce(validate_outputs([out / "p_bkgsub.fits", out / "." / "p_bkgsub.fits"],
                                            [])), \
        E.OutputError, OSError, r"p_bkgsub\.fits: two outputs of this run would be written"


def case_output_is_directory(mk, out):
    """Output FITS path is an existing directory."""
    (out / "d_bkgsub.fits").mkdir()
    return lambda: enforce(validate_outputs([out / "d_bkgsub.fits"], [])), E.OutputError, \
        OSError, r"d_bkgsub\.fits: output path is a directory"


def _asn(products, regex, name="case_asn.json", asn_type="image2", cls=E.AssociationError,
         builtin=ValueError, raw=None):
    def build(mk, out):
        _ok(mk, 100.0, name="sci_rate.fits")
        _ok(mk, 10.0, name="bkg_rate.fits")
        if raw is not None:
            path = mk.folder / name
            path.write_text(raw)
        else:
            path = write_asn(mk.folder, products, name=name, asn_type=asn_type)
        return lambda: enforce(validate_association(path)), cls, builtin, regex
    return build


SCI_M, BKG_M = member("sci_rate.fits", "science"), member("bkg_rate.fits", "background")

ERROR_CASES = {
    "missing-target": case_missing_target,
    "missing-background": case_missing_background,
    "not-fits": case_not_fits,
    "directory": case_directory,
    "truncated-sci": case_truncated_in_sci,
    "truncated-last-table": case_truncated_in_last_table,
    "missing-sci": _drop("SCI"),
    "missing-err-jwst30": _drop("ERR", compat="jwst-3.0"),
    "missing-dq-jwst30": _drop("DQ", compat="jwst-3.0"),
    "dq-scaled": case_dq_scaled,
    "dq-float": case_dq_float,
    "sci-4d": case_sci_4d,
    "err-shape": case_err_shape,
    "exp-type-target": case_unknown_exp_type_target,
    "exp-type-background": case_unknown_exp_type_background,
    "wfss-target": case_wfss_target,
    "sigma-zero": _param({"sigma": 0}, E.ParameterError, ValueError,
                         r"sigma must be a positive finite number, not 0$"),
    "sigma-nan": _param({"sigma": float("nan")}, E.ParameterError, ValueError,
                        r"sigma must be a positive finite number, not nan"),
    "sigma-inf": _param({"sigma": float("inf")}, E.ParameterError, ValueError,
                        r"sigma must be a positive finite number, not inf"),
    "sigma-string": _param({"sigma": "3"}, E.ParameterTypeError, TypeError,
                           r"sigma must be a number, not '3'"),
    "combine-sigma-negative": case_combine_bad_sigma,
    "maxiters-float": _param({"maxiters": 2.5}, E.ParameterTypeError, TypeError,
                             r"maxiters must be an integer or None, not 2\.5"),
    "maxiters-string": _param({"maxiters": "3"}, E.ParameterTypeError, TypeError,
                              r"maxiters must be an integer or None, not '3'"),
    "maxiters-bool": _param({"maxiters": True}, E.ParameterTypeError, TypeError,
                            r"maxiters must be an integer or None, not True"),
    "chunks-text": _param({"chunks": "ten,3"}, E.ParameterError, ValueError,
                          r"invalid chunk shape 'ten,3'"),
    "chunks-zero": _param({"chunks": (0, 5)}, E.ParameterError, ValueError,
                          r"invalid chunk shape \(0, 5\)"),
    "chunks-float": _param({"chunks": (2.5, 3)}, E.ParameterError, ValueError,
                           r"invalid chunk shape \(2\.5, 3\)"),
    "memory-text": _param({"memory_limit": "lots"}, E.ParameterError, ValueError,
                          r"invalid memory limit 'lots'"),
    "memory-negative": _param({"memory_limit": -5}, E.ParameterError, ValueError,
                              r"memory limit must be positive, not -5"),
    "memory-nan": _param({"memory_limit": float("nan")}, E.ParameterError, ValueError,
                         r"invalid memory limit nan"),
    "unknown-format": case_unknown_format,
    "output-dir-not-creatable": case_output_dir_not_creatable,
    "output-dir-missing": case_output_dir_missing_api,
    "output-is-input": case_output_is_input,
    "output-clash": case_output_clash,
    "output-is-directory": case_output_is_directory,
    "asn-bad-json": _asn(None, r"broken_asn\.json: not a valid JSON association",
                         name="broken_asn.json", raw="{not json"),
    "asn-no-products": _asn(None, r"noprod_asn\.json: association has no 'products' list",
                            name="noprod_asn.json", raw='{"asn_type": "image2"}'),
    "asn-empty-products": _asn([], r"empty_asn\.json: association has no products",
                               name="empty_asn.json"),
    "asn-no-members": _asn([{"name": "p1"}], r"case_asn\.json: product 'p1' has no members list"),
    "asn-no-expname": _asn([{"name": "p2", "members": [SCI_M, {"exptype": "background"}]}],
                           r"product 'p2': member .* lacks expname/exptype"),
    "asn-unknown-exptype": _asn([{"name": "p3", "members": [SCI_M, member("bkg_rate.fits",
                                                                          "flat")]}],
                                r"product 'p3': unknown exptype 'flat' for bkg_rate\.fits"),
    "asn-level3": _asn([{"name": "p4", "members": [SCI_M]}],
                       r"l3_asn\.json: level-3 association \(image3\) not supported",
                       name="l3_asn.json", asn_type="image3"),
    "asn-no-science": _asn([{"name": "p5", "members": [BKG_M]}],
                           r"product 'p5': expected exactly one science member, found 0"),
    "asn-two-science": _asn([{"name": "p6", "members": [SCI_M, member("bkg_rate.fits",
                                                                      "science")]}],
                            r"product 'p6': expected exactly one science member, found 2"),
    "asn-member-missing": _asn([{"name": "p7", "members": [SCI_M, member("lost_rate.fits",
                                                                         "background")]}],
                               r"lost_rate\.fits: file not found \(member of product 'p7'",
                               cls=E.InputFileNotFoundError, builtin=FileNotFoundError),
}


# Errors the reference raises itself (same built-in type, algorithm page A.16), and window keywords
# that cannot be right.

def case_window_missing(mk, out):
    """No window keywords on a non-full-frame target (G6)."""
    t = _ok(mk, 100.0, name="nowin_rate.fits", window_keywords=False)
    return lambda b=_ok(mk): run_api(t, [b], out), E.GeometryError, ValueError, \
        r"nowin_rate\.fits: SUBSTRT/SUBSIZE keywords missing and the 4x5 array is not a MIRI " \
        r"full frame"


def case_window_and_instrument_missing(mk, out):
    """No window keywords and no INSTRUME."""
    b = _ok(mk, name="noinst_rate.fits", window_keywords=False, extra_primary={"INSTRUME": None})
    return lambda t=_ok(mk, 100.0): run_api(t, [b], out), E.MissingKeywordError, AttributeError, \
        r"noinst_rate\.fits: SUBSTRT/SUBSIZE keywords and INSTRUME are missing"


def case_2d_target_3d_background(mk, out):
    """Rate target, rateints background (G9)."""
    b = mk(np.ones((2, *SHAPE), np.float32), name="cube_rateints.fits")
    return lambda t=_ok(mk, 100.0): run_api(t, [b], out), E.GeometryError, ValueError, \
        r"cube_rateints\.fits: 3-D background \(2, 4, 5\) cannot be combined with a 2-D"


def case_3d_target_2d_background(mk, out):
    """Rateints target, rate background (G9)."""
    t = mk(np.ones((2, *SHAPE), np.float32), name="t_rateints.fits")
    return lambda b=_ok(mk, name="flat_rate.fits"): run_api(t, [b], out), E.DimensionError, \
        IndexError, r"flat_rate\.fits: 2-D background cannot be combined with a 3-D"


def case_rateints_more_integrations(mk, out):
    """Background with more integrations than the target (R8)."""
    t = mk(np.ones((2, *SHAPE), np.float32), name="t2_rateints.fits")
    b = mk(np.ones((3, *SHAPE), np.float32), name="three_rateints.fits")
    return lambda: run_api(t, [b], out), E.GeometryError, ValueError, \
        r"three_rateints\.fits: could not broadcast .*\(integrations differ\)"


def case_rateints_width(mk, out):
    """Rateints overlap width neither nx nor 1 (R6)."""
    t = mk(np.ones((2, 4, 6), np.float32), name="t3_rateints.fits")
    b = mk(np.ones((2, 4, 3), np.float32), name="narrow_rateints.fits")
    return lambda: run_api(t, [b], out), E.GeometryError, ValueError, \
        r"narrow_rateints\.fits: could not broadcast .*\(columns differ\)"


def case_nirspec_missing_tilt(mk, out):
    """NIRSpec background without GWA_YTIL."""
    t = mk.const((6, 6), 100.0, instrument="NIRSPEC",
                 extra_primary={"GWA_XTIL": TILT, "GWA_YTIL": TILT})
    b = mk.const((6, 6), 10.0, instrument="NIRSPEC", name="notilt_rate.fits",
                 extra_primary={"GWA_XTIL": TILT})
    return lambda: run_api(t, [b], out), E.MissingTiltError, TypeError, \
        r"notilt_rate\.fits: NIRSpec GWA_XTIL/GWA_YTIL keyword missing"


def case_window_zero(mk, out):
    """SUBSTRT1 = 0."""
    b = _ok(mk, name="zero_rate.fits", substrt=(0, 1))
    return lambda t=_ok(mk, 100.0): run_api(t, [b], out), E.GeometryError, ValueError, \
        r"zero_rate\.fits: invalid window keyword SUBSTRT1=0"


ERROR_CASES.update({
    "window-missing": case_window_missing,
    "window-and-instrume-missing": case_window_and_instrument_missing,
    "2d-target-3d-background": case_2d_target_3d_background,
    "3d-target-2d-background": case_3d_target_2d_background,
    "rateints-more-integrations": case_rateints_more_integrations,
    "rateints-width": case_rateints_width,
    "nirspec-missing-tilt": case_nirspec_missing_tilt,
    "window-zero": case_window_zero,
})


def _all_files(*folders):
    return sorted(p for folder in folders for p in Path(folder).rglob("*") if p.is_file())


@pytest.mark.parametrize("kind", list(ERROR_CASES))
def test_bad_input_is_refused(mk, out, kind):
    """Each bad input raises the documented class and built-in type with a one-line reason."""
    call, cls, builtin, regex = ERROR_CASES[kind](mk, out)
    before = hashes(_all_files(mk.folder, out))
    with pytest.raises(cls, match=regex) as info:
        call()
    assert isinstance(info.value, builtin) and isinstance(info.value, E.DaskbkgError)
    assert "\n" not in str(info.value)
    assert hashes(_all_files(mk.folder, out)) == before  # inputs unchanged
    assert [p for p in _all_files(out) if str(p) not in before] == []  # nothing new written
    assert not [n for n in listing(mk.folder) if n.startswith(".")]  # no temporary file


def test_findings_are_collected_and_attached(mk):
    """Every problem is listed; the raised error carries them all, first one raised."""
    t = _ok(mk, 100.0)
    missing = mk.folder / "gone_rate.fits"
    bad_type = rewrite(_ok(mk), "floatdq_rate.fits", DQ=np.ones(SHAPE, np.float32))
    findings = validate_exposures(t, [missing, bad_type])
    assert [f.severity for f in findings] == ["error", "error"]
    assert "gone_rate.fits" in str(findings[0]) and "floatdq_rate.fits" in str(findings[1])
    with pytest.raises(FileNotFoundError) as info:
        enforce(findings)
    assert info.value.findings == findings


def test_reference_order_geometry_error_before_later_missing_file(mk):
    """As in the reference, background 1's geometry error wins over background 2's absence."""
    t = _ok(mk, 100.0)
    cube = mk(np.ones((2, *SHAPE), np.float32), name="cube_rateints.fits")
    with pytest.raises(ValueError, match="cube_rateints.fits"):
        daskbkg.subtract_background(t, [cube, mk.folder / "gone_rate.fits"])


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_output_dir_not_writable(tmp_path):
    """A read-only output folder (or its parent) is refused."""
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    with pytest.raises(E.OutputError, match="not writable"):
        enforce(validate_outputs([locked / "x_bkgsub.fits"], []))
    with pytest.raises(E.OutputError, match=r"cannot create output directory .*not writable"):
        enforce(validate_outputs([locked / "sub" / "x_bkgsub.fits"], []))


def test_good_outputs_and_params_have_no_findings(mk, out):
    """Valid outputs and parameters give no finding."""
    t = _ok(mk, 100.0)
    assert validate_outputs([out / "a.fits", out / "new" / "b.fits", None], [t]) == []
    assert validate_params(3.0, 5, chunks="16,-1", memory_limit="1MB", fmt="zarr") == []
    assert validate_params(1.5, np.int64(2), chunks=(8, 8), memory_limit=2**20) == []


# ============================================================================== warnings

def _warnings(caplog):
    return [r.getMessage() for r in caplog.records
            if r.name == "daskbkg" and r.levelno == logging.WARNING]


def check_warning(caplog, call, needle, strict_cls, strict_builtin):
    """Run ``call(strict)``: one warning line by default, the strict error otherwise."""
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="daskbkg"):
        value = call(False)
    lines = _warnings(caplog)
    assert len(lines) == 1, lines
    assert needle in lines[0] and "\n" not in lines[0]
    with pytest.raises(strict_cls) as info:
        call(True)
    assert isinstance(info.value, strict_builtin)
    assert needle in str(info.value)
    return value


def sub(target, bkgs, **kw):
    """Return ``call(strict)`` computing the subtraction in memory."""
    def call(strict):
        return daskbkg.subtract_background(target, bkgs, strict=strict, **kw).compute(
            scheduler="synchronous")
    return call


def test_warn_non_overlapping_background(mk, caplog):
    """G3: a background beside the target gives a NaN plane (SCI_bk 0, DQ ignored)."""
    t = mk.const((4, 4), 100.0)
    b = mk.const((4, 4), 7.0, dq=4, substrt=(5, 1), name="beside_rate.fits")
    res = check_warning(caplog, sub(t, [b]), "beside_rate.fits: does not overlap the target",
                        E.GeometryError, ValueError)
    assert (res.combined["SCI"] == 0).all() and (res.combined["DQ"] == 0).all()
    assert (res.sci == 100.0).all() and res.status == "COMPLETE"


@pytest.mark.parametrize("subsize, expected", [
    ((3, 3), np.pad(np.full((3, 3), 9.0, np.float32), ((0, 1), (0, 1)))),   # G7
    ((6, 6), np.full((4, 4), 9.0, np.float32)),                              # G8
])
def test_warn_subsize_disagrees_with_array(mk, caplog, subsize, expected):
    """G7/G8: SUBSIZE smaller or larger than the array."""
    t = mk.const((4, 4), 100.0)
    b = mk.const((4, 4), 9.0, subsize=subsize, name="sized_rate.fits")
    res = check_warning(caplog, sub(t, [b]),
                        f"sized_rate.fits: SUBSIZE1/2 = {subsize[0]}x{subsize[1]} but the SCI "
                        "array is 4x4", E.GeometryError, ValueError)
    np.testing.assert_array_equal(res.combined["SCI"], expected)


def test_warn_nints_keyword_disagrees(mk, caplog):
    """NINTS disagrees with the cube: the cube wins."""
    t = mk(np.full((2, 2, 3), 100.0, np.float32))
    b = mk(np.stack([np.full((2, 3), 10.0), np.full((2, 3), 12.0)]), nints=5,
           name="nints_rateints.fits")
    with pytest.warns(UserWarning, match="NINTS"):
        res = check_warning(caplog, sub(t, [b]), "nints_rateints.fits: NINTS=5 but the SCI cube "
                            "has 2 integrations", E.InconsistentInputError, ValueError)
    np.testing.assert_array_equal(res.combined["SCI"], np.full((2, 3), 11.0, np.float32))


def test_warn_empty_background_list(mk, caplog):
    """I12: all-NaN SCI, ERR/DQ unchanged, COMPLETE; strict refuses."""
    t = mk.const(SHAPE, 100.0, dq=2, name="lonely_rate.fits")
    res = check_warning(caplog, sub(t, []), "empty background list", E.InconsistentInputError,
                        ValueError)
    assert np.isnan(res.sci).all() and (res.err == 1).all() and (res.dq == 2).all()
    assert res.status == "COMPLETE"
    assert np.isnan(res.combined["SCI"]).all() and (res.combined["ERR"] == 0).all()


def test_warn_duplicate_background(mk, caplog):
    """A background listed twice is counted twice."""
    a, b = mk.const(SHAPE, 10.0, name="twice_rate.fits"), mk.const(SHAPE, 13.0)
    res = check_warning(caplog, sub(mk.const(SHAPE, 100.0), [a, b, a]),
                        "twice_rate.fits: listed 2 times as a background",
                        E.InconsistentInputError, ValueError)
    assert (res.combined["SCI"] == f32(11.0)).all()  # (10 + 13 + 10) / 3: counted twice


def test_warn_target_is_also_background(mk, caplog):
    """The target in its own background list."""
    t = mk.const(SHAPE, 100.0, name="self_rate.fits")
    res = check_warning(caplog, sub(t, [t, mk.const(SHAPE, 10.0)]),
                        "self_rate.fits: the target is also listed as a background",
                        E.InconsistentInputError, ValueError)
    assert (res.combined["SCI"] == 55.0).all() and (res.sci == 45.0).all()


def test_warn_maxiters_below_minus_one(mk, caplog):
    """maxiters=-3 makes one pass, like maxiters=1 (C2 lane: only 100 rejected)."""
    t = mk.const((1, 1), 0.0)
    bkgs = [mk.const((1, 1), v) for v in (1.0, 2.0, 3.0, 100.0)]
    res = check_warning(caplog, sub(t, bkgs, sigma=1, maxiters=-3), "maxiters=-3 is below -1",
                        E.ParameterError, ValueError)
    assert res.combined["SCI"][0, 0] == f32(2.0)
    one = daskbkg.subtract_background(t, bkgs, sigma=1, maxiters=1).compute()
    assert one.combined["SCI"][0, 0] == res.combined["SCI"][0, 0]


def test_warn_instrument_setup_mismatch(mk, caplog):
    """A background taken with another filter."""
    b = mk.const(SHAPE, 10.0, name="otherfilter_rate.fits", extra_primary={"FILTER": "F560W"})
    res = check_warning(caplog, sub(mk.const(SHAPE, 100.0), [b]),
                        "otherfilter_rate.fits: FILTER=F560W differs from the target's (F770W)",
                        E.InconsistentInputError, ValueError)
    assert (res.sci == 90.0).all()


def test_warn_reference_misplacement(mk, caplog):
    """G2: a background subarray inside a larger target lands at the origin (reference)."""
    y, x = np.mgrid[0:6, 0:8]
    frame = (100 * y + x).astype(np.float32)
    t = mk.const((6, 8), 1000.0)
    b = mk(frame[1:4, 2:6], substrt=(3, 2), name="inner_rate.fits")
    res = check_warning(caplog, sub(t, [b]), "inner_rate.fits: window starts inside the target",
                        E.GeometryError, ValueError)
    np.testing.assert_array_equal(res.combined["SCI"][0:3, 0:4], frame[1:4, 2:6])
    aligned = daskbkg.subtract_background(t, [b], subarray_placement="aligned", strict=True)
    np.testing.assert_array_equal(aligned.compute().combined["SCI"][1:4, 2:6], frame[1:4, 2:6])


def test_warn_rateints_one_column_replicated(mk, caplog):
    """R7: a one-column rateints overlap is replicated across every column."""
    t = mk(np.full((2, 4, 6), 100.0, np.float32))
    col = np.arange(4, dtype=np.float32).reshape(1, 4, 1).repeat(2, axis=0)
    b = mk(col, name="column_rateints.fits")
    res = check_warning(caplog, sub(t, [b]), "column_rateints.fits: overlap is one column wide",
                        E.GeometryError, ValueError)
    np.testing.assert_array_equal(res.combined["SCI"], np.repeat(np.arange(4.0), 6).reshape(4, 6))


def test_warn_file_after_tilt_mismatch_is_not_used(mk, caplog):
    """I13: the tilt walk stops at the mismatch; a later missing file only warns."""
    def nirspec(value, xtil=TILT, name=None):
        return mk.const((6, 6), value, instrument="NIRSPEC", name=name,
                        extra_primary={"GWA_XTIL": xtil, "GWA_YTIL": TILT})
    t = nirspec(100.0)
    missing = mk.folder / "later_rate.fits"
    caplog.set_level(logging.WARNING, logger="daskbkg")
    res = daskbkg.subtract_background(t, [nirspec(10.0, xtil=TILT + 1e-5), missing]).compute()
    assert res.status == "SKIPPED" and (res.sci == 100.0).all()
    lines = [m for m in _warnings(caplog) if "later_rate.fits" in m]
    assert len(lines) == 1 and "not used" in lines[0] and "file not found" in lines[0]
    with pytest.raises(E.InputFileNotFoundError, match="later_rate.fits"):
        daskbkg.subtract_background(t, [nirspec(10.0, xtil=TILT + 1e-5), missing], strict=True)


def test_clean_inputs_give_no_warning(mk, caplog):
    """Clean inputs: no warning, strict passes."""
    with caplog.at_level(logging.WARNING, logger="daskbkg"):
        daskbkg.subtract_background(mk.const(SHAPE, 100.0), [mk.const(SHAPE, 10.0)],
                                    strict=True).compute()
    assert _warnings(caplog) == []


def test_combine_backgrounds_strict_and_default(mk, caplog):
    """combine_backgrounds warns or refuses too."""
    a = mk.const(SHAPE, 10.0, name="ca_rate.fits")
    with caplog.at_level(logging.WARNING, logger="daskbkg"):
        bk = daskbkg.combine_backgrounds([a, a])
    assert (bk.sci.compute() == 10.0).all()
    assert len(_warnings(caplog)) == 1 and "listed 2 times" in _warnings(caplog)[0]
    with pytest.raises(E.InconsistentInputError, match="ca_rate.fits"):
        daskbkg.combine_backgrounds([a, a], strict=True)
    assert daskbkg.combine_backgrounds([a], strict=True).sci.shape == SHAPE


def test_finding_str_and_exception():
    """Finding text and exception."""
    f = Finding("warning", "/x/y.fits", "something odd", E.GeometryError)
    assert str(f) == "/x/y.fits: something odd"
    assert isinstance(f.exception(), ValueError)
    assert str(f.exception()) == "/x/y.fits: something odd (refused: strict)"
    assert enforce([f]) == [f]


# ============================================================================= disk full

def _disk_full_after(monkeypatch, calls: int, code=errno.ENOSPC):
    real = os.pwrite
    count = {"n": 0}

    def pwrite(fd, data, offset):
        count["n"] += 1
        if count["n"] > calls:
            raise OSError(code, os.strerror(code))
        return real(fd, data, offset)
    monkeypatch.setattr(os, "pwrite", pwrite)
    return count


@pytest.mark.parametrize("code, scheduler", [(errno.ENOSPC, "synchronous"),
                                             (errno.EDQUOT, "threads")])
def test_disk_full_fits(mk, out, monkeypatch, code, scheduler):
    """ENOSPC/EDQUOT mid-write: OutputError naming the file, no file left, inputs intact."""
    t = mk.const((16, 5), 100.0)
    bkgs = [mk.const((16, 5), 10.0 + k) for k in range(3)]
    before = hashes([t, *bkgs])
    result = daskbkg.subtract_background(t, bkgs, chunks=(2, -1))
    count = _disk_full_after(monkeypatch, 3, code)
    with pytest.raises(E.DiskFullError, match=r"x_(bkgsub|combinedbackground)\.fits: disk full"):
        result.to_fits(out / "x_bkgsub.fits", combined_path=out / "x_combinedbackground.fits",
                       scheduler=scheduler)
    assert count["n"] > 3  # it failed mid-write, after some tiles were stored
    monkeypatch.undo()
    assert listing(out) == [] and hashes([t, *bkgs]) == before
    assert not [n for n in listing(mk.folder) if n.startswith(".")]


def test_disk_full_error_carries_errno(mk, out, monkeypatch):
    """The DiskFullError keeps errno and names the file."""
    t, b = mk.const(SHAPE, 100.0), mk.const(SHAPE, 10.0)
    result = daskbkg.subtract_background(t, [b])
    _disk_full_after(monkeypatch, 0)
    with pytest.raises(OSError) as info:
        result.to_fits(out / "y_bkgsub.fits", scheduler="synchronous")
    assert isinstance(info.value, E.OutputError) and info.value.errno == errno.ENOSPC
    assert str(info.value).startswith(str(out / "y_bkgsub.fits"))
    assert listing(out) == []


def test_disk_full_while_laying_out_the_file(mk, out, monkeypatch):
    """ENOSPC while copying the target's extensions into the new file."""
    from daskbkg.io import fits_writer

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(fits_writer, "_copy_bytes", full)
    t, b = mk.const(SHAPE, 100.0), mk.const(SHAPE, 10.0)
    with pytest.raises(E.DiskFullError, match=r"z_bkgsub\.fits: disk full"):
        daskbkg.subtract_background(t, [b]).to_fits(out / "z_bkgsub.fits")
    assert listing(out) == []


@pytest.mark.parametrize("what", ["chunks", "metadata"])
def test_disk_full_zarr(mk, out, monkeypatch, what):
    """Zarr: ENOSPC from the store (chunk or metadata write) -> OutputError, no group left."""
    import zarr.storage._local as local

    real = local._put

    def put(path, value, exclusive=False):
        if (Path(path).name == "zarr.json") == (what == "metadata"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, value, exclusive=exclusive)
    t, b = mk.const(SHAPE, 100.0), mk.const(SHAPE, 10.0)
    result = daskbkg.subtract_background(t, [b])
    monkeypatch.setattr(local, "_put", put)
    with pytest.raises(E.DiskFullError, match=r"w_bkgsub\.zarr: disk full"):
        result.to_zarr(out / "w_bkgsub.zarr", scheduler="synchronous")
    assert listing(out) == []


# ==================================================================== numerical hazards

def calc(target, bkgs, **kw):
    """Compute the subtraction in memory (synchronous scheduler)."""
    return daskbkg.subtract_background(target, bkgs, **kw).compute(scheduler="synchronous")


def test_all_nan_region_in_every_background(mk):
    """I7: no valid background -> SCI_bk 0, ERR_bk 0, target unchanged, DQ still ORed."""
    t = mk.const((2, 3), 100.0, dq=8)
    sci_a, sci_b = const((2, 3), 5.0), const((2, 3), 7.0)
    sci_a[0, :2] = sci_b[0, :2] = np.nan
    dq_a, dq_b = np.zeros((2, 3), np.uint32), np.zeros((2, 3), np.uint32)
    dq_a[0, :2], dq_b[0, 0] = 1, 2
    res = calc(t, [mk(sci_a, dq=dq_a), mk(sci_b, dq=dq_b)])
    assert (res.combined["SCI"][0, :2] == 0).all() and (res.combined["ERR"][0, :2] == 0).all()
    assert (res.sci[0, :2] == 100.0).all()
    assert res.dq[0].tolist() == [8 | 1 | 2, 8 | 1, 8] and (res.dq[1] == 8).all()
    assert (res.combined["SCI"][1] == 6.0).all()
    assert (res.combined["ERR"][1] == f32(np.sqrt(2.0) / 2)).all()


def test_inf_values_in_backgrounds(mk):
    """I8/I9: +inf SCI is clipped; NaN or inf ERR of a kept background reaches ERR_bk."""
    sci_a, err_a = const((2, 2), 5.0), const((2, 2), 1.0)
    err_a[0, 0], sci_a[1, 1] = np.nan, np.inf
    sci_a[1, 0] = -np.inf
    res = calc(mk.const((2, 2), 100.0), [mk(sci_a, err_a), mk.const((2, 2), 7.0)])
    np.testing.assert_array_equal(res.combined["SCI"], [[6, 6], [7, 7]])
    err = res.combined["ERR"]
    assert np.isnan(err[0, 0]) and err[0, 1] == f32(0.70710677) and err[1, 1] == 1.0
    inf_err = calc(mk.const((1, 1), 100.0), [mk.const((1, 1), 5.0, err=np.inf),
                                             mk.const((1, 1), 7.0)])
    assert inf_err.combined["SCI"][0, 0] == 6.0 and np.isposinf(inf_err.combined["ERR"][0, 0])


def test_constant_stack(mk):
    """Five equal backgrounds: std 0, every value on the bounds, all kept."""
    res = calc(mk.const(SHAPE, 100.0), [mk.const(SHAPE, 10.0) for _ in range(5)])
    assert (res.combined["SCI"] == 10.0).all() and (res.combined["NBKG"] == 5).all()
    assert (res.combined["ERR"] == f32(np.sqrt(5.0) / 5)).all() and (res.sci == 90.0).all()


def test_single_background(mk):
    """I5: one background is used as is (ERR through float32 squaring)."""
    res = calc(mk.const(SHAPE, 100.0), [mk.const(SHAPE, 5.0, err=f32(0.1))])
    assert (res.combined["SCI"] == 5.0).all() and (res.combined["ERR"] == f32(0.1)).all()


@pytest.mark.parametrize("n", [3, 8])
def test_huge_outlier(mk, n):
    """A 1e30 background: N = 3 cannot reject it (float64 mean), N = 8 rejects it (I4)."""
    big = float(f32(1e30))
    bkgs = [mk.const((1, 2), 10.0) for _ in range(n - 1)] + [mk.const((1, 2), 1e30)]
    res = calc(mk.const((1, 2), 100.0), bkgs)
    want = f32((10.0 * (n - 1) + big) / n) if n == 3 else f32(10.0)
    assert (res.combined["SCI"] == want).all()
    assert (res.sci == np.subtract(f32(100.0), want, dtype=np.float32)).all()


def test_err_square_overflows_float32(mk):
    """ERR = 3e20: ERR² is inf in float32, so ERR_bk is +inf (rate mode, algorithm page A.13)."""
    res = calc(mk.const(SHAPE, 100.0), [mk.const(SHAPE, 5.0, err=3e20, var_arrays=False),
                                        mk.const(SHAPE, 7.0)])
    assert np.isposinf(res.combined["ERR"]).all() and (res.combined["SCI"] == 6.0).all()
    assert (res.err == 1.0).all()  # output ERR is the target's, unchanged
    one = calc(mk.const(SHAPE, 100.0), [mk.const(SHAPE, 5.0, err=3e20, var_arrays=False)])
    assert np.isposinf(one.combined["ERR"]).all()


def test_err_square_overflow_rateints_lane_is_empty(mk):
    """Rateints: every inf ERR² is clipped, the lane is empty and gives 0 (algorithm page A.8)."""
    t = mk(np.full((2, *SHAPE), 100.0, np.float32))
    b = mk(np.full((2, *SHAPE), 5.0, np.float32), err=3e20, var_arrays=False)
    res = calc(t, [b])
    assert (res.combined["SCI"] == 5.0).all() and (res.combined["ERR"] == 0.0).all()


def test_subarray_at_the_detector_edge(mk):
    """A target window in the far corner of a full-frame background takes the right cut."""
    y, x = np.mgrid[0:8, 0:8]
    frame = (100 * y + x).astype(np.float32)
    bkgs = [mk(frame), mk(frame + 2)]
    t = mk.const((3, 3), 1000.0, substrt=(6, 6))
    res = calc(t, bkgs, strict=True)
    np.testing.assert_array_equal(res.combined["SCI"], frame[5:8, 5:8] + 1)
    # a background whose SUBSIZE runs past its array at the edge is clamped (with a warning)
    wide = mk(frame[5:8, 5:8], substrt=(6, 6), subsize=(5, 5))
    np.testing.assert_array_equal(calc(t, [wide]).combined["SCI"], frame[5:8, 5:8])
