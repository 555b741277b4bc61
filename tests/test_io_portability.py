"""Concurrent bookkeeping writes and the portable (non-POSIX) positional I/O path."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from astropy.io import fits
from helpers import assert_bits_equal

import daskbkg
from daskbkg.io import positional
from daskbkg.io.source import temp_name, write_text

_WRITER = """
import json, sys
from daskbkg.io.source import write_text
path, who, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
for i in range(count):
    write_text(path, json.dumps({"writer": who, "i": i, "pad": "x" * 2000}))
"""


def test_two_processes_writing_one_marker_never_fail(tmp_path):
    """2 x 1000 writes of one marker: no failure, and every read sees whole JSON."""
    marker = tmp_path / "product.done.json"
    root = str(Path(__file__).resolve().parents[1])
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(marker), who, "1000"],
                              cwd=root, stderr=subprocess.PIPE, text=True)
             for who in ("a", "b")]
    reads = 0
    while any(p.poll() is None for p in procs):
        if marker.exists():
            doc = json.loads(marker.read_text())  # never partial
            assert doc["writer"] in ("a", "b") and len(doc["pad"]) == 2000
            reads += 1
        time.sleep(0.001)
    errors = [p.communicate()[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    assert json.loads(marker.read_text())["i"] == 999
    assert sorted(p.name for p in tmp_path.iterdir()) == ["product.done.json"]  # no temp left
    assert reads > 0


def test_temporary_names_are_unique(tmp_path):
    """Two temporary names for one file never coincide, and carry the process id."""
    import os

    names = {temp_name(tmp_path / "x.json") for _ in range(1000)}
    assert len(names) == 1000
    assert all(f".x.json.{os.getpid()}-" in n.name for n in names)


def test_write_text_failure_leaves_nothing(tmp_path):
    """A failed write (the destination is a folder) removes its temporary file."""
    (tmp_path / "taken").mkdir()
    try:
        write_text(tmp_path / "taken", "{}")
    except OSError:
        pass
    else:  # pragma: no cover - os.replace onto a folder must fail
        raise AssertionError("replacing a folder by a file succeeded")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_fallback_without_pwrite_gives_the_same_files(inputs, tmp_path, monkeypatch):
    """Forcing the seek+write fallback (as on Windows) changes no output byte."""
    rng = np.random.default_rng(3)
    target = inputs(rng.normal(10, 1, (5, 7)).astype(np.float32),
                    dq=rng.integers(0, 2**32, (5, 7), dtype=np.uint32))
    bkgs = [inputs(rng.normal(1, 0.1, (5, 7)).astype(np.float32),
                   dq=rng.integers(0, 2**32, (5, 7), dtype=np.uint32)) for _ in range(3)]
    posix = daskbkg.subtract_background(target, bkgs, chunks=(2, 3))
    posix.to_fits(tmp_path / "posix_bsub.fits")
    from daskbkg.io import fitsarray

    fitsarray.close_cached_files()
    monkeypatch.setattr(positional, "POSITIONAL", False)
    calls = []
    real = positional.os.lseek
    monkeypatch.setattr(positional.os, "lseek", lambda *a: calls.append(a) or real(*a))
    portable = daskbkg.subtract_background(target, bkgs, chunks=(2, 3))
    portable.to_fits(tmp_path / "portable_bsub.fits", scheduler="threads")
    assert calls  # the fallback really ran
    with fits.open(tmp_path / "posix_bsub.fits") as a, \
            fits.open(tmp_path / "portable_bsub.fits") as b:
        assert len(a) == len(b)
        for hdu_a, hdu_b in zip(a, b):
            if hdu_a.is_image and hdu_a.data is not None:
                assert_bits_equal(hdu_b.data, hdu_a.data)


def test_two_cli_runs_into_one_folder(inputs, tmp_path):
    """Two `daskbkg run` processes writing one output folder, round after round: both exit 0.

    Each round redoes the products (--no-resume) while the other process reads markers,
    writes the same outputs and replaces them; the final files are whole and valid.
    """
    from output_checks import check_fits

    rng = np.random.default_rng(9)
    targets = [inputs(rng.normal(10, 1, (8, 9)).astype(np.float32), name=f"t{k}_rate.fits")
               for k in range(3)]
    bkgs = [inputs(rng.normal(1, 0.1, (8, 9)).astype(np.float32), name=f"b{k}_rate.fits")
            for k in range(2)]
    out = tmp_path / "out"
    root = str(Path(__file__).resolve().parents[1])
    argv = [sys.executable, "-m", "daskbkg.cli", "run", *map(str, targets), "--bkg",
            *map(str, bkgs), "--output-dir", str(out), "--quiet"]
    for round_ in range(4):
        extra = ["--no-resume"] if round_ % 2 else []
        procs = [subprocess.Popen(argv + extra, cwd=root, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
        results = [p.communicate(timeout=300) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], results
    names = sorted(p.name for p in out.iterdir() if p.suffix == ".fits")
    assert names == [f"t{k}_bkgsub.fits" for k in range(3)]
    for name in names:
        check_fits(out / name)
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
