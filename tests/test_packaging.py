"""Packaging of the compiled kernels: stock setuptools, sources shipped, wheels configured."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "daskbkg" / "kernels" / "src"


@pytest.fixture(scope="module")
def pyproject():
    tomllib = pytest.importorskip("tomllib")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_stock_backend_and_no_jit_dependency(pyproject):
    build = pyproject["build-system"]
    assert build["build-backend"] == "setuptools.build_meta" and "backend-path" not in build
    # Only setuptools (77 reads the SPDX license string); the buffer protocol: no NumPy.
    assert build["requires"] == ["setuptools>=77"]
    runtime = pyproject["project"]["dependencies"]
    assert not [r for r in runtime if re.match(r"(numba|llvmlite)\b", r)]
    assert not (ROOT / "daskbkg" / "_build").exists()


def test_setup_builds_every_c_source():
    """setup.py's Extension lists exactly the .c files of src/ and depends on its headers."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    names = next(node.value for node in ast.walk(tree) if isinstance(node, ast.Assign)
                 and any(getattr(t, "id", None) == "SOURCES" for t in node.targets))
    assert sorted(ast.literal_eval(names)) == sorted(p.name for p in SRC.glob("*.c"))
    text = (ROOT / "setup.py").read_text()
    for header in SRC.glob("*.h"):
        assert f"daskbkg/kernels/src/{header.name}" in text
    assert "-ffp-contract=off" in text and "march" not in text.replace("no -march", "")


def test_setup_builds_the_reader():
    """The compiled reader of background tiles is an extension of its own, in daskbkg.io."""
    text = (ROOT / "setup.py").read_text()
    sources = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "daskbkg/io/src").glob("*.c"))
    assert sources == ["daskbkg/io/src/_readruns.c"]
    assert '"daskbkg.io._readruns"' in text and f'"{sources[0]}"' in text


def test_sdist_manifest_ships_the_sources():
    manifest = (ROOT / "MANIFEST.in").read_text()
    assert "recursive-include daskbkg/kernels/src *.c *.h" in manifest
    assert "recursive-include daskbkg/io/src *.c" in manifest


def test_cibuildwheel_targets(pyproject):
    """Linux (manylinux x86_64 and aarch64), macOS and Windows wheels, each one tested."""
    cibw = pyproject["tool"]["cibuildwheel"]
    assert set(cibw["linux"]["archs"]) == {"x86_64", "aarch64"}
    assert "manylinux" in cibw["linux"]["manylinux-x86_64-image"]
    assert cibw["macos"]["archs"] and cibw["windows"]["archs"] == ["AMD64"]
    assert ".ci/test_wheel.py" in cibw["test-command"]
    assert (ROOT / ".ci" / "test_wheel.py").is_file()
