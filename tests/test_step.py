"""The optional stpipe face, ``daskbkg.step.DaskBackgroundStep``.

The step must give bit-identical products to the public API, honour the reference's
parameter names, and never be imported by the core package. Everything but the import
test is skipped when stpipe is not installed (``pip install stpipe``; neither jwst nor
CRDS is needed).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from helpers import assert_bits_equal

import daskbkg
from daskbkg.datasets import make_dataset

ROOT = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT), CRDS_SERVER_URL="http://127.0.0.1:9",
                CRDS_PATH=os.environ.get("CRDS_PATH", "/nonexistent-crds-cache"))


def test_core_package_does_not_import_stpipe():
    """``import daskbkg`` (and its CLI) never imports stpipe."""
    code = ("import sys, daskbkg, daskbkg.cli, daskbkg.runner, daskbkg.datasets; "
            "print('stpipe' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


HAVE_STPIPE = importlib.util.find_spec("stpipe") is not None
if HAVE_STPIPE:  # an import error of daskbkg.step itself must fail, not skip
    from daskbkg.step import DaskBackgroundStep

needs_stpipe = pytest.mark.skipif(not HAVE_STPIPE,
                                  reason="stpipe is not installed (pip install stpipe)")


@pytest.mark.skipif(HAVE_STPIPE, reason="stpipe is installed")
def test_step_without_stpipe_says_what_to_install():
    """Without stpipe, importing the step names the package to install."""
    with pytest.raises(ImportError, match="pip install stpipe"):
        import daskbkg.step  # noqa: F401


def _native(array: np.ndarray) -> np.ndarray:
    """Return the same values in native byte order (FITS data are big-endian)."""
    array = np.asarray(array)
    return array.astype(array.dtype.newbyteorder("="))


def _read(path: Path) -> dict[str, np.ndarray]:
    with fits.open(path) as hdul:
        return {hdu.name: _native(hdu.data) for hdu in hdul if hdu.data is not None
                and hdu.name in ("SCI", "ERR", "DQ", "NBKG")}


def _assert_matches_api(main: Path, combined: Path | None, target, backgrounds, **kwargs):
    expected = daskbkg.subtract_background(target, backgrounds, **kwargs).compute()
    product = _read(main)
    assert_bits_equal(product["SCI"], expected.sci)
    assert_bits_equal(product["ERR"], expected.err)
    assert_bits_equal(product["DQ"], expected.dq)
    if combined is not None:
        written = _read(combined)
        assert set(written) == {"SCI", "ERR", "DQ", "NBKG"}
        for name, values in expected.combined.items():
            assert_bits_equal(written[name.upper()], values)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Two targets, four backgrounds and an association."""
    return make_dataset(tmp_path_factory.mktemp("step-data"), n_backgrounds=4, n_targets=2,
                        seed=11)


@needs_stpipe
def test_spec_has_reference_and_daskbkg_parameters():
    """The spec uses the reference's names and defaults plus daskbkg's options."""
    pars = DaskBackgroundStep().get_pars()
    assert pars["sigma"] == 3.0 and pars["maxiters"] is None
    assert pars["save_combined_background"] is False and pars["bkg_list"] is None
    for name in ("scheduler", "chunks", "memory_limit"):
        assert pars[name] is None
    assert pars["compat"] == "jwst-1.13"


@needs_stpipe
def test_spec_exposes_every_switch_and_the_reference_names():
    """Every compatibility switch and every reference parameter is a step parameter."""
    from daskbkg.options import COMPAT_CHOICES

    pars = DaskBackgroundStep().get_pars()
    for name in COMPAT_CHOICES:
        assert name in pars, name
        if name != "compat":
            assert pars[name] is None  # None = the preset's value
    reference = {"bkg_list": None, "save_combined_background": False, "sigma": 3.0,
                 "maxiters": None, "soss_source_percentile": 35.0, "soss_bkg_percentile": None,
                 "wfss_mmag_extract": None, "wfss_maxiter": 5, "wfss_rms_stop": 0.0,
                 "wfss_outlier_percent": 1.0, "wfss_mask": None}
    assert {k: pars[k] for k in reference} == reference
    assert pars["campaign"] is False


@needs_stpipe
def test_association_matches_api_bitwise(dataset, tmp_path):
    """An association run writes the API's SCI, ERR, DQ and combined background bit for bit."""
    out = tmp_path / "out"
    outcomes = DaskBackgroundStep.call(str(dataset.asn), output_dir=str(out), campaign=True,
                                       save_combined_background=True, configure_log=False)
    assert [o.state for o in outcomes] == ["done", "done"]
    for target in dataset.targets:
        root = target.name.removesuffix("_rate.fits")
        main, comb = out / f"{root}_bkgsub.fits", out / f"{root}_combinedbackground.fits"
        assert {main, comb} <= {p for o in outcomes for p in map(Path, o.outputs)}
        _assert_matches_api(main, comb, target, dataset.backgrounds)
        with fits.open(main) as hdul:
            assert hdul[0].header["S_BKDSUB"] == "COMPLETE"


@needs_stpipe
def test_target_with_bkg_list_and_parameters(dataset, tmp_path):
    """A target with a comma-separated ``bkg_list`` and non-default parameters."""
    target, backgrounds = dataset.targets[0], dataset.backgrounds
    out = tmp_path / "out"
    DaskBackgroundStep.call(str(target), bkg_list=",".join(map(str, backgrounds)) + ",",
                            output_dir=str(out), sigma=2.0, maxiters=1, chunks="48,-1",
                            memory_limit="64MiB", compat="jwst-3.0", scheduler="synchronous",
                            campaign=True, configure_log=False)
    main = out / target.name.replace("_rate.fits", "_bkgsub.fits")
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [main.name]
    _assert_matches_api(main, None, target, backgrounds, sigma=2.0, maxiters=1,
                        compat="jwst-3.0")
    with fits.open(main) as hdul:
        history = " ".join(str(card) for card in hdul[0].header.get("HISTORY", []))
    assert "sigma" in history and "jwst-3.0" in history


@needs_stpipe
def test_positional_bkg_list_and_switch(dataset, tmp_path):
    """``run(target, bkg_list)`` with a compatibility switch and a custom suffix."""
    target, backgrounds = dataset.targets[1], [str(b) for b in dataset.backgrounds[:3]]
    step = DaskBackgroundStep(output_dir=str(tmp_path), no_valid_background="nan",
                              suffix="sub", campaign=True)
    outcomes = step.run(str(target), backgrounds)
    main = tmp_path / target.name.replace("_rate.fits", "_sub.fits")
    assert outcomes[0].outputs == [main]
    _assert_matches_api(main, None, target, backgrounds, no_valid_background="nan")


@needs_stpipe
def test_bad_parameter_is_refused(dataset, tmp_path):
    """Invalid parameters fail before anything is written."""
    with pytest.raises(Exception, match="sigma|float"):
        DaskBackgroundStep.call(str(dataset.asn), output_dir=str(tmp_path), sigma="lots",
                                campaign=True, configure_log=False)
    with pytest.raises(Exception, match="invalid chunk shape"):
        DaskBackgroundStep.call(str(dataset.asn), output_dir=str(tmp_path), chunks="0",
                                campaign=True, configure_log=False)
    assert not list(tmp_path.glob("*.fits"))


@needs_stpipe
def test_campaign_mode_needs_a_path():
    """The campaign mode writes files from files: an object is refused with a clear message."""
    with pytest.raises(daskbkg.errors.InputError, match="campaign mode takes a file path"):
        DaskBackgroundStep(campaign=True).run(object())


@needs_stpipe
def test_strun_subprocess(dataset, tmp_path):
    """``strun daskbkg.step.DaskBackgroundStep ASN --campaign=True`` works from the shell."""
    strun = Path(sys.executable).with_name("strun")
    command = ([str(strun)] if strun.exists()
               else [sys.executable, "-c", "from stpipe._cli.strun import main; main()"])
    out = tmp_path / "out"
    proc = subprocess.run(
        [*command, "daskbkg.step.DaskBackgroundStep", str(dataset.asn),
         f"--output_dir={out}", "--save_combined_background=True", "--sigma=2.5",
         "--campaign=True"],
        env=_env(), cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    target = dataset.targets[0]
    root = target.name.removesuffix("_rate.fits")
    _assert_matches_api(out / f"{root}_bkgsub.fits", out / f"{root}_combinedbackground.fits",
                        target, dataset.backgrounds, sigma=2.5)


@needs_stpipe
def test_stpipe_entry_point_function():
    """``_get_steps`` (the ``stpipe.steps`` entry point) names the step and its alias."""
    from stpipe.utilities import import_class

    from daskbkg.step import _get_steps

    ((class_name, alias, is_pipeline),) = _get_steps()
    assert import_class(class_name) is DaskBackgroundStep
    assert alias == DaskBackgroundStep.class_alias == "daskbkg" and is_pipeline is False
