"""The build backend's numba cache warm-up (daskbkg/_build/daskbkg_backend.py)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BACKEND = ROOT / "daskbkg" / "_build" / "daskbkg_backend.py"
KERNELS = ("block_bounds", "rate_kernel", "rateints_kernel")


def _load_backend():
    spec = importlib.util.spec_from_file_location("daskbkg_backend_under_test", BACKEND)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cached_kernels(cache_root: Path) -> set[str]:
    names = {p.name.split("-")[0].split(".")[-1] for p in cache_root.rglob("*.nbi")}
    return names & set(KERNELS)


def test_pyproject_uses_the_backend():
    import tomllib

    build = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]
    assert build["build-backend"] == "daskbkg_backend"
    assert (ROOT / build["backend-path"][0] / "daskbkg_backend.py") == BACKEND
    assert any(r.startswith("numba") for r in build["requires"])


def test_warm_up_fills_the_cache_used_by_a_later_run(tmp_path, monkeypatch):
    """After the warm-up, a new process loads every kernel and compiles nothing.

    With a C compiler at hand the native library is there too.
    """
    import shutil

    backend = _load_backend()
    cache = tmp_path / "cache"
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(cache))
    monkeypatch.delenv("DASKBKG_NO_CACHE_WARMUP", raising=False)
    assert backend.warm_kernel_cache() is True
    assert _cached_kernels(cache) == set(KERNELS)
    if shutil.which("cc") and sys.platform.startswith("linux"):
        from daskbkg.kernels import native

        assert native.library_dir().parent == cache
        assert (native.library_dir() / "ok").exists()
    run = subprocess.run(
        [sys.executable, "-c", "from daskbkg.kernels import preload; preload(); "
                               "preload(rateints=True)"],
        env={**os.environ, "NUMBA_DEBUG_CACHE": "1", "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, check=True)
    log = run.stdout + run.stderr
    assert "data loaded" in log
    assert "data saved" not in log  # nothing had to be compiled


@pytest.mark.parametrize("hook", ["build_editable", "build_wheel"])
def test_editable_and_wheel_builds_warm_up(tmp_path, monkeypatch, hook):
    backend = _load_backend()
    calls = []
    monkeypatch.setattr(backend._setuptools, hook,
                        lambda *args: calls.append("build") or "daskbkg-0-py3-none-any.whl")
    monkeypatch.setattr(backend, "warm_kernel_cache", lambda: calls.append("warm") or True)
    assert getattr(backend, hook)(str(tmp_path)) == "daskbkg-0-py3-none-any.whl"
    assert calls == ["build", "warm"]


def test_warm_up_can_be_switched_off(tmp_path, monkeypatch):
    backend = _load_backend()
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("DASKBKG_NO_CACHE_WARMUP", "1")
    assert backend.warm_kernel_cache() is False
    assert not (tmp_path / "cache").exists()


def test_failed_warm_up_never_fails_the_build(tmp_path, monkeypatch, capsys):
    """A broken warm-up is reported on stderr and the editable build still succeeds."""
    backend = _load_backend()
    monkeypatch.delenv("DASKBKG_NO_CACHE_WARMUP", raising=False)
    monkeypatch.setattr(backend, "_WARMUP", "raise SystemExit('no compiler today')")
    built = []
    monkeypatch.setattr(backend._setuptools, "build_editable",
                        lambda *args: built.append(args) or "daskbkg-0-py3-none-any.whl")
    assert backend.build_editable(str(tmp_path)) == "daskbkg-0-py3-none-any.whl"
    assert built and "no compiler today" in capsys.readouterr().err


def test_sdist_carries_the_backend(tmp_path):
    """The sdist carries daskbkg/_build, the backend path its pyproject.toml names.

    Without it nobody could build a wheel from the sdist.
    """
    import shutil
    import tarfile

    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "daskbkg", src / "daskbkg",
                    ignore=shutil.ignore_patterns("__pycache__"))
    script = ("import sys; sys.path.insert(0, 'daskbkg/_build'); import daskbkg_backend as b; "
              "print(b.build_sdist(sys.argv[1]))")
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "dist")], cwd=src,
                          capture_output=True, text=True, check=True)
    name = done.stdout.strip().splitlines()[-1]
    with tarfile.open(tmp_path / "dist" / name) as sdist:
        members = {m.split("/", 1)[1] for m in sdist.getnames() if "/" in m}
    assert "daskbkg/_build/daskbkg_backend.py" in members
    assert "daskbkg/kernels/sortclip.py" in members
