"""The ``daskbkg`` command line: outputs, names, associations, errors and help.

Most tests call :func:`daskbkg.cli.main` in-process (output captured with ``capsys``);
a few run ``python -m daskbkg.cli`` in a subprocess to check real exit codes and stderr.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from helpers import Maker, assert_bits_equal, hashes, listing

import daskbkg
from daskbkg.cli import main

ROOT = Path(__file__).resolve().parents[1]
SHAPE = (6, 7)


@pytest.fixture
def bkgs(inputs):
    """Three noisy rate backgrounds."""
    rng = np.random.default_rng(5)
    return [inputs(rng.normal(10.0 + k, 0.5, SHAPE), name=f"bkg{k}_rate.fits")
            for k in range(3)]


@pytest.fixture
def outdir(tmp_path):
    """Output folder (not created in advance)."""
    return tmp_path / "out"


def cli(*args):
    """Run the CLI in-process with stringified arguments."""
    return main([str(a) for a in args])


def expected_of(target, backgrounds, **kwargs):
    """In-memory result of the public API for the same inputs."""
    return daskbkg.subtract_background(target, backgrounds, **kwargs).compute()


def assert_product(path, expected):
    """Check a written product against a computed result."""
    with fits.open(path) as hdul:
        assert_bits_equal(hdul["SCI"].data.astype(np.float32), expected.sci)
        assert_bits_equal(hdul["DQ"].data, expected.dq)
        assert_bits_equal(hdul["ERR"].data.astype(np.float32), expected.err)
        assert hdul[0].header["S_BKDSUB"] == expected.status


def error_lines(text):
    """Non-empty lines of ``text``."""
    return [line for line in text.splitlines() if line.strip()]


# ================================================================================= run


def test_run_writes_bkgsub(inputs, bkgs, outdir, capsys):
    """``run TARGET --bkg ...`` writes ``OUT/<root>_bkgsub.fits`` with the API's values."""
    target = inputs.const(SHAPE, 100.0, name="x_rate.fits")
    before = hashes([target, *bkgs])
    assert cli("run", target, "--bkg", *bkgs, "--output-dir", outdir) == 0
    assert listing(outdir) == ["x_bkgsub.fits"]
    assert_product(outdir / "x_bkgsub.fits", expected_of(target, bkgs))
    assert "x_bkgsub.fits" in capsys.readouterr().out
    assert hashes([target, *bkgs]) == before


@pytest.mark.parametrize("name, root", [
    ("x_rate.fits", "x_bkgsub"),
    ("a_rate_cal.fits", "a_rate_bkgsub"),
    ("test.fits", "test_bkgsub"),
    ("b-cal.fits", "b-bkgsub"),
    ("jw01_mirimage_rate.fits", "jw01_mirimage_bkgsub"),
])
def test_root_rules(inputs, bkgs, outdir, name, root):
    """Output and combined-background names follow the root rules."""
    target = inputs.const(SHAPE, 100.0, name=name)
    assert cli("run", target, "--bkg", *bkgs, "--output-dir", outdir,
               "--save-combined-background") == 0
    combined = root.replace("bkgsub", "combinedbackground")
    assert listing(outdir) == sorted([f"{root}.fits", f"{combined}.fits"])


def test_rateints_names_and_2d_combined(inputs, outdir):
    """A rateints target gives ``x_bkgsub`` and a 2-D combined background."""
    target = inputs(np.full((2, *SHAPE), 100.0, np.float32), name="x_rateints.fits")
    bkgs = [inputs(np.full((2, *SHAPE), 10.0 + k, np.float32), name=f"b{k}_rateints.fits")
            for k in range(2)]
    assert cli("run", target, "--bkg", *bkgs, "-o", outdir,
               "--save-combined-background") == 0
    assert listing(outdir) == ["x_bkgsub.fits", "x_combinedbackground.fits"]
    with fits.open(outdir / "x_combinedbackground.fits") as hdul:
        assert hdul["SCI"].data.shape == SHAPE
        assert (hdul["SCI"].data == 10.5).all()
    with fits.open(outdir / "x_bkgsub.fits") as hdul:
        assert hdul["SCI"].data.shape == (2, *SHAPE)
        assert (hdul["SCI"].data == 89.5).all()


def test_options_reach_the_computation(inputs, bkgs, outdir):
    """Clip, tiling and scheduler flags are applied and recorded."""
    target = inputs.const(SHAPE, 100.0, name="x_rate.fits")
    assert cli("run", target, "--bkg", *bkgs, "--output-dir", outdir, "--sigma", "1.5",
               "--maxiters", "1", "--chunks", "4,3", "--memory-limit", "1MB",
               "--scheduler", "synchronous") == 0
    assert_product(outdir / "x_bkgsub.fits", expected_of(target, bkgs, sigma=1.5, maxiters=1))
    with fits.open(outdir / "x_bkgsub.fits") as hdul:
        history = " ".join(str(h) for h in hdul[0].header["HISTORY"])
        assert "sigma=1.5" in history and "maxiters=1" in history


def test_compat_flags(inputs, outdir):
    """Compatibility flags change the result and are recorded in HISTORY."""
    target = inputs.const((4, 4), 100.0, name="g_rate.fits")
    bkg = inputs.const((4, 4), 7.0, substrt=(4, 1), name="g_bkg_rate.fits")
    assert cli("run", target, "--bkg", bkg, "-o", outdir, "--subarray-placement",
               "aligned") == 0
    with fits.open(outdir / "g_bkgsub.fits") as hdul:
        assert (hdul["SCI"].data[:, 3] == 93.0).all() and (hdul["SCI"].data[:, 0] == 100).all()
        history = " ".join(str(h) for h in hdul[0].header["HISTORY"])
        assert "subarray_placement='aligned'" in history


def test_snake_case_aliases(inputs, bkgs, outdir):
    """``--output_dir`` and ``--save_combined_background`` work."""
    target = inputs.const(SHAPE, 100.0, name="x_rate.fits")
    assert cli("run", target, "--bkg", *bkgs, "--output_dir", outdir,
               "--save_combined_background") == 0
    assert listing(outdir) == ["x_bkgsub.fits", "x_combinedbackground.fits"]


def test_format_zarr(inputs, bkgs, outdir):
    """``--format zarr`` writes zarr groups equal to the API result."""
    import zarr

    target = inputs.const(SHAPE, 100.0, name="x_rate.fits")
    assert cli("run", target, "--bkg", *bkgs, "--output-dir", outdir, "--format", "zarr",
               "--save-combined-background") == 0
    assert listing(outdir) == ["x_bkgsub.zarr", "x_combinedbackground.zarr"]
    expected = expected_of(target, bkgs)
    group = zarr.open_group(str(outdir / "x_bkgsub.zarr"), mode="r")
    assert_bits_equal(group["sci"][...], expected.sci)
    assert_bits_equal(group["dq"][...], expected.dq)
    comb = zarr.open_group(str(outdir / "x_combinedbackground.zarr"), mode="r")
    assert_bits_equal(comb["sci"][...], expected.combined["SCI"])


def test_zero_backgrounds_reference_behaviour(inputs, outdir, caplog):
    """No background with ``--empty-bkg-list nan``: warning, all-NaN SCI, COMPLETE (reference)."""
    target = inputs.const(SHAPE, 100.0, name="x_rate.fits")
    with caplog.at_level(logging.WARNING, logger="daskbkg"):
        assert cli("run", target, "--output-dir", outdir, "--save-combined-background",
                   "--empty-bkg-list", "nan") == 0
    assert any("background" in r.getMessage() for r in caplog.records
               if r.levelno >= logging.WARNING)
    with fits.open(outdir / "x_bkgsub.fits") as hdul:
        assert np.isnan(hdul["SCI"].data).all()
        assert (hdul["ERR"].data == 1.0).all() and (hdul["DQ"].data == 0).all()
        assert hdul[0].header["S_BKDSUB"] == "COMPLETE"
    with fits.open(outdir / "x_combinedbackground.fits") as hdul:  # the combination ran
        assert np.isnan(hdul["SCI"].data).all()
        assert (hdul["ERR"].data == 0).all() and (hdul["DQ"].data == 0).all()


def test_zero_backgrounds_skip_option(inputs, outdir):
    """No background with ``--empty-bkg-list skip``: SKIPPED copy."""
    target = inputs.const(SHAPE, 100.0, name="x_rate.fits")
    assert cli("run", target, "--output-dir", outdir, "--empty-bkg-list", "skip",
               "--save-combined-background") == 0
    assert listing(outdir) == ["x_bkgsub.fits"]
    with fits.open(outdir / "x_bkgsub.fits") as hdul:
        assert (hdul["SCI"].data == 100.0).all()
        assert hdul[0].header["S_BKDSUB"] == "SKIPPED"


# ========================================================================== associations


def write_asn(folder, products, asn_type="image2", name="test_asn.json"):
    """Write a level-2 association of ``products`` = [(name, [(expname, exptype)])]."""
    asn = {"asn_type": asn_type, "asn_id": "o001", "asn_pool": "pool.csv",
           "products": [{"name": pname, "members": [{"expname": str(e), "exptype": t}
                                                    for e, t in members]}
                        for pname, members in products]}
    path = Path(folder) / name
    path.write_text(json.dumps(asn))
    return path


@pytest.fixture
def asn_dir(tmp_path):
    """Association folder with three targets and two backgrounds."""
    folder = tmp_path / "asn"
    folder.mkdir()
    mk = Maker(folder)
    rng = np.random.default_rng(9)
    files = {n: mk(rng.normal(v, 0.1, SHAPE), name=f"{n}_rate.fits")
             for n, v in [("a", 100.0), ("b", 80.0), ("c", 60.0), ("s1", 10.0), ("s2", 11.0)]}
    return folder, files


def test_asn_processes_every_product(asn_dir, tmp_path, monkeypatch, capsys):
    """Every product is processed; members resolve against the ASN folder."""
    folder, f = asn_dir
    products = [
        ("prodA", [("a_rate.fits", "science"), ("s1_rate.fits", "background"),
                   ("s2_rate.fits", "background")]),
        ("prodB", [("b_rate.fits", "science"), ("s1_rate.fits", "background"),
                   ("s2_rate.fits", "background")]),
        # nod pair: a file is science in one product and background in another
        ("prodC", [("c_rate.fits", "science"), ("a_rate.fits", "background")]),
    ]
    asn = write_asn(folder, products)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    rel_asn = os.path.relpath(asn, elsewhere)
    assert cli("run", rel_asn, "--output-dir", "out", "--save-combined-background") == 0
    out = elsewhere / "out"
    assert listing(out) == sorted(f"prod{p}_{s}.fits" for p in "ABC"
                                  for s in ("bkgsub", "combinedbackground"))
    assert_product(out / "prodA_bkgsub.fits", expected_of(f["a"], [f["s1"], f["s2"]]))
    assert_product(out / "prodB_bkgsub.fits", expected_of(f["b"], [f["s1"], f["s2"]]))
    assert_product(out / "prodC_bkgsub.fits", expected_of(f["c"], [f["a"]]))
    assert listing(elsewhere) == ["out"]
    assert capsys.readouterr().err == ""


def test_asn_missing_member_reported_others_complete(asn_dir, tmp_path, capsys):
    """A product with a missing member fails alone (exit 2)."""
    folder, f = asn_dir
    products = [
        ("good1", [("a_rate.fits", "science"), ("s1_rate.fits", "background")]),
        ("broken", [("b_rate.fits", "science"), ("gone_rate.fits", "background")]),
        ("good2", [("c_rate.fits", "science"), ("s2_rate.fits", "background")]),
    ]
    asn = write_asn(folder, products)
    out = tmp_path / "out"
    assert cli("run", asn, "--output-dir", out) == 2
    assert listing(out) == ["good1_bkgsub.fits", "good2_bkgsub.fits"]
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "gone_rate.fits" in lines[0]
    assert "Traceback" not in lines[0]
    assert_product(out / "good2_bkgsub.fits", expected_of(f["c"], [f["s2"]]))


def test_asn_bad_product_reported(asn_dir, tmp_path, capsys):
    """A product with two science members fails alone."""
    folder, _ = asn_dir
    products = [
        ("two", [("a_rate.fits", "science"), ("b_rate.fits", "science")]),
        ("ok", [("c_rate.fits", "science"), ("s1_rate.fits", "background")]),
    ]
    asn = write_asn(folder, products)
    out = tmp_path / "out"
    assert cli("run", asn, "--output-dir", out) == 2
    assert listing(out) == ["ok_bkgsub.fits"]
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "two" in lines[0] and "science" in lines[0]


# ============================================================================ bad inputs


def _no_dq(folder):
    path = Maker(folder).const(SHAPE, 1.0, name="nodq_full.fits")
    with fits.open(path) as hdul:
        hdus = fits.HDUList([h.copy() for h in hdul if h.name != "DQ"])
        hdus.writeto(Path(folder) / "nodq_rate.fits")
    path.unlink()
    return Path(folder) / "nodq_rate.fits"


def _bad_case(kind, folder, target, bkgs):
    """(argv, text expected in the error line) of one bad-input case."""
    folder = Path(folder)
    if kind == "missing-target":
        return ["run", folder / "nothere_rate.fits", "--bkg", *bkgs], "nothere_rate.fits"
    if kind == "missing-background":
        return ["run", target, "--bkg", bkgs[0], folder / "gone_rate.fits"], "gone_rate.fits"
    if kind == "not-fits":
        text = folder / "notes_rate.fits"
        text.write_text("SIMPLE? no, this is a text file\n" * 100)
        return ["run", target, "--bkg", text], "notes_rate.fits"
    if kind == "no-dq":
        return ["run", _no_dq(folder), "--bkg", *bkgs], "nodq_rate.fits: missing DQ"
    if kind == "width":
        mk = Maker(folder)
        t3 = mk(np.full((2, 4, 6), 100.0, np.float32), name="w_rateints.fits")
        b3 = mk(np.full((2, 4, 3), 1.0, np.float32), subsize=(3, 4), name="narrow_rateints.fits")
        return ["run", t3, "--bkg", b3], "narrow_rateints.fits"
    if kind == "dimension":
        mk = Maker(folder)
        t3 = mk(np.full((2, *SHAPE), 100.0, np.float32), name="d_rateints.fits")
        return ["run", t3, "--bkg", bkgs[0]], "bkg0_rate.fits"
    if kind == "asn-missing":
        return ["run", folder / "none_asn.json"], "none_asn.json"
    if kind == "asn-level3":
        asn = write_asn(folder, [("p", [(Path(target).name, "science")])], asn_type="image3",
                        name="l3_asn.json")
        return ["run", asn], "l3_asn.json"
    if kind == "asn-bad-json":
        asn = folder / "broken_asn.json"
        asn.write_text("{not json")
        return ["run", asn], "broken_asn.json"
    if kind == "bad-chunks":
        return ["run", target, "--bkg", *bkgs, "--chunks", "ten,3"], "chunk"
    if kind == "zero-chunks":
        return ["run", target, "--bkg", *bkgs, "--chunks", "0"], "chunk"
    if kind == "bad-scheduler":
        return ["run", target, "--bkg", *bkgs, "--scheduler", "warp-drive"], "warp-drive"
    if kind == "bad-memory":
        return ["run", target, "--bkg", *bkgs, "--memory-limit", "lots"], "lots"
    raise AssertionError(kind)


BAD = ["missing-target", "missing-background", "not-fits", "no-dq", "width", "dimension",
       "asn-missing", "asn-level3", "asn-bad-json", "bad-chunks", "zero-chunks",
       "bad-scheduler", "bad-memory"]


@pytest.mark.parametrize("kind", BAD)
def test_bad_input_one_line_exit_2(inputs, bkgs, outdir, capsys, kind):
    """Bad input: one stderr line naming the problem, exit 2, no output."""
    target = inputs.const(SHAPE, 100.0, name="x_rate.fits")
    argv, needle = _bad_case(kind, inputs.folder, target, bkgs)
    before = hashes([p for p in inputs.folder.iterdir() if p.suffix == ".fits"])
    assert cli(*argv, "--output-dir", outdir) == 2
    captured = capsys.readouterr()
    lines = error_lines(captured.err)
    assert len(lines) == 1, lines
    assert lines[0].startswith("daskbkg: error:")
    assert needle in lines[0]
    assert "Traceback" not in captured.err
    assert not outdir.exists() or listing(outdir) == []
    assert hashes([p for p in inputs.folder.iterdir() if p.suffix == ".fits"
                   and str(p) in before]) == before


@pytest.mark.parametrize("kind", ["missing-background", "width", "bad-scheduler"])
def test_bad_input_debug_raises(inputs, bkgs, outdir, kind):
    """With ``--debug`` the exception propagates."""
    target = inputs.const(SHAPE, 100.0, name="x_rate.fits")
    argv, _ = _bad_case(kind, inputs.folder, target, bkgs)
    with pytest.raises(Exception):
        cli(*argv, "--output-dir", outdir, "--debug")
    assert not outdir.exists() or listing(outdir) == []


def _subprocess(args, cwd):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "daskbkg.cli", *map(str, args)], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("kind", ["missing-background", "not-fits", "width"])
def test_subprocess_exit_code_and_stderr(inputs, bkgs, tmp_path, kind):
    """Real process: exit 2 and one stderr line; ``--debug`` shows a traceback."""
    target = inputs.const(SHAPE, 100.0, name="x_rate.fits")
    argv, needle = _bad_case(kind, inputs.folder, target, bkgs)
    proc = _subprocess([*argv, "--output-dir", tmp_path / "out"], cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = error_lines(proc.stderr)
    assert len(lines) == 1, lines
    assert needle in lines[0] and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists() or listing(tmp_path / "out") == []
    debug = _subprocess([*argv, "--output-dir", tmp_path / "out", "--debug"], cwd=tmp_path)
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_subprocess_success_and_warning(inputs, bkgs, tmp_path):
    """Real process: success exits 0; no background warns on stderr."""
    target = inputs.const(SHAPE, 100.0, name="x_rate.fits")
    proc = _subprocess(["run", target, "--bkg", *bkgs, "--output-dir", "out"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert listing(tmp_path / "out") == ["x_bkgsub.fits"]
    assert_product(tmp_path / "out" / "x_bkgsub.fits", expected_of(target, bkgs))
    empty = _subprocess(["run", target, "--output-dir", "out2", "--empty-bkg-list", "nan"],
                        cwd=tmp_path)
    assert empty.returncode == 0
    assert "warning" in empty.stderr.lower() and "background" in empty.stderr.lower()
    with fits.open(tmp_path / "out2" / "x_bkgsub.fits") as hdul:
        assert np.isnan(hdul["SCI"].data).all()
        assert hdul[0].header["S_BKDSUB"] == "COMPLETE"


def test_output_equal_to_input_is_refused(inputs, bkgs, capsys):
    """An output name equal to an input file is refused."""
    target = inputs.const(SHAPE, 100.0, name="x_rate.fits")
    before = hashes([target, *bkgs])
    code = cli("run", target, "--bkg", *bkgs, "--output-dir", inputs.folder, "--suffix", "rate")
    assert code in (1, 2)
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "x_rate.fits" in lines[0]
    assert hashes([target, *bkgs]) == before
    assert not [n for n in listing(inputs.folder) if n.startswith(".")]


# ================================================================================= help

OPTIONS = ["--sigma", "--maxiters", "--save-combined-background", "--format", "--chunks",
           "--scheduler", "--memory-limit", "--output-dir", "--bkg"]


def _help(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0
    return capsys.readouterr().out


def test_run_help_mentions_every_option(capsys):
    """``run --help`` lists every option and the snake_case aliases."""
    text = _help(["run", "--help"], capsys)
    for option in OPTIONS + ["--save_combined_background", "--output_dir"]:
        assert option in text, option


def test_top_level_help_lists_run(capsys):
    """Top-level help lists the sub-commands."""
    text = _help(["--help"], capsys)
    assert "run" in text and "demo" in text


def test_top_level_help_mentions_every_option(capsys):
    """Top-level help mentions the run options (CLI contract)."""
    text = _help(["--help"], capsys)
    for option in OPTIONS:
        assert option in text, option


def test_version(capsys):
    """``--version`` prints the package version."""
    text = _help(["--version"], capsys)
    assert daskbkg.__version__ in text


def test_asn_output_conflict_in_one_product_does_not_stop_others(tmp_path, capsys):
    """An output conflict in one product leaves the others and no temp file."""
    mk = Maker(tmp_path)
    mk.const(SHAPE, 100.0, name="a_rate.fits")
    mk.const(SHAPE, 100.0, name="q_bkgsub.fits")
    mk.const(SHAPE, 1.0, name="s_rate.fits")
    asn = write_asn(tmp_path, [
        ("p1", [("a_rate.fits", "science"), ("s_rate.fits", "background")]),
        ("q", [("q_bkgsub.fits", "science"), ("s_rate.fits", "background")]),
    ])
    before = hashes([tmp_path / "q_bkgsub.fits"])
    code = cli("run", asn, "--output-dir", tmp_path)
    assert hashes([tmp_path / "q_bkgsub.fits"]) == before
    assert code != 0
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "q_bkgsub.fits" in lines[0]
    assert not [n for n in listing(tmp_path) if n.startswith(".")]
    assert (tmp_path / "p1_bkgsub.fits").exists()


# ----------------------------------------------------------------- a CLI that explains itself


def _fails(argv, capsys) -> list[str]:
    """Run the CLI, expect exit 2, return the stderr lines."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    return capsys.readouterr().err.splitlines()


@pytest.mark.parametrize("argv, first", [
    (["--maxiters", "lots"], "daskbkg: error: --maxiters: invalid value 'lots' (expected an "
                             "integer, or None)"),
    (["--format", "jpeg"], "daskbkg: error: --format: invalid choice: 'jpeg' (choose from "
                           "'fits', 'zarr')"),
    (["--sigma", "abc"], "daskbkg: error: --sigma: invalid value 'abc' (expected a number)"),
])
def test_bad_values_are_two_lines_naming_option_and_value(argv, first, capsys):
    lines = _fails(["run", "x_rate.fits", *argv], capsys)
    assert lines == [first, "see 'daskbkg run --help'"]


@pytest.mark.parametrize("typo, suggestion", [("--sigmma", "--sigma"),
                                              ("--bkg-lst", "--bkg-list"),
                                              ("--output-dri", "--output-dir")])
def test_option_typos_get_a_suggestion(typo, suggestion, capsys):
    lines = _fails(["run", "x_rate.fits", typo, "3"], capsys)
    assert lines == [f"daskbkg: error: unrecognized arguments: {typo} 3",
                     f"did you mean {suggestion}? (see 'daskbkg --help')"]


def test_run_help_is_grouped_each_option_once_with_examples(capsys):
    text = _help(["run", "--help"], capsys)
    for group in ("inputs:", "clipping:", "output:", "execution:",
                  "compatibility (defaults reproduce jwst 1.13.2):",
                  "WFSS (NRC_WFSS / NIS_WFSS targets):", "examples:"):
        assert f"\n{group}" in text, group
    assert text.count("--sigma SIGMA") == 1 and "--output_dir OUT" not in text
    flat = " ".join(text.split())
    assert "64 MiB per thread" in flat and "128MiB" not in flat


def test_target_without_backgrounds_is_refused(inputs, outdir, capsys):
    target = inputs.const(SHAPE, 100.0, name="x_rate.fits")
    assert cli("run", target, "--output-dir", outdir) == 2
    assert error_lines(capsys.readouterr().err) == [
        "daskbkg: error: x_rate.fits: no background given; add --bkg B1 [B2 ...] (a WFSS target "
        "needs --wfss-bkg-ref REF.fits), or --empty-bkg-list nan|skip to accept an empty list "
        "(nan: all-NaN SCI as in the reference; skip: unchanged copy)"]
    assert not outdir.exists() or listing(outdir) == []


def test_repeated_bkg_appends_and_globs_expand(inputs, bkgs, outdir):
    """``--bkg a --bkg 'b*'`` gives the same product as the explicit list."""
    target = inputs.const(SHAPE, 100.0, name="x_rate.fits")
    pattern = str(inputs.folder / "bkg[12]_rate.fits")
    assert cli("run", target, "--bkg", bkgs[0], "--bkg", pattern, "--output-dir", outdir) == 0
    assert_product(outdir / "x_bkgsub.fits", expected_of(target, bkgs))


def test_glob_without_match_in_bkg(inputs, outdir, capsys):
    target = inputs.const(SHAPE, 100.0, name="x_rate.fits")
    assert cli("run", target, "--bkg", str(inputs.folder / "none*.fits"), "-o", outdir) == 2
    (line,) = error_lines(capsys.readouterr().err)
    assert line == f"daskbkg: error: --bkg {inputs.folder / 'none*.fits'}: no file matches this pattern"


def test_duplicate_inputs_processed_once(inputs, bkgs, outdir, caplog):
    target = inputs.const(SHAPE, 100.0, name="x_rate.fits")
    with caplog.at_level(logging.WARNING, logger="daskbkg"):
        assert cli("run", target, target, "--bkg", *bkgs, "--output-dir", outdir,
                   "--report", outdir / "r.json") == 0
    assert any("given more than once; processed once" in r.getMessage() for r in caplog.records)
    assert len(json.loads((outdir / "r.json").read_text())["products"]) == 1


def test_missing_scheduler_file_is_named(inputs, bkgs, outdir, capsys):
    target = inputs.const(SHAPE, 100.0, name="x_rate.fits")
    assert cli("run", target, "--bkg", *bkgs, "-o", outdir, "--scheduler", "sched.json") == 2
    assert error_lines(capsys.readouterr().err) == [
        "daskbkg: error: sched.json: scheduler file not found (start the scheduler with "
        "'dask scheduler --scheduler-file FILE' first)"]
