"""Build backend of daskbkg: setuptools, plus a kernel warm-up for editable and wheel builds.

``pip install -e .`` builds through :func:`build_editable`, which hands the build to
``setuptools.build_meta`` and then compiles the combine kernels once, so that the first
``daskbkg`` run after installation finds them in the numba cache instead of spending a
few seconds compiling, and, given a C compiler, links them into the native library that
runs without numba (``daskbkg.kernels.native``). :func:`build_wheel` warms up too, as
``pip install .`` builds a wheel on the machine that installs it: the numba cache it
fills belongs to the source tree (numba keys it on the file's path and time stamp), but
the native library is keyed by the kernels' source code and this CPU, so it serves the
installed copy. For wheels built elsewhere see ``daskbkg.kernels.preload`` and
``daskbkg demo``.

The warm-up is best effort: it runs in a child process with a time limit, any failure is
reported and ignored, and ``DASKBKG_NO_CACHE_WARMUP=1`` skips it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F401,F403 -- every other hook unchanged

#: The project root (this file is ``<root>/daskbkg/_build/daskbkg_backend.py``).
ROOT = Path(__file__).resolve().parents[2]
WARMUP_TIMEOUT_S = 600

# Imports the kernels without ``daskbkg/__init__.py`` (which needs dask, absent from the
# build environment): the package is a bare module whose search path is the source tree.
_WARMUP = """
import sys, types
package = types.ModuleType("daskbkg")
package.__path__ = [sys.argv[1]]
sys.modules["daskbkg"] = package
from daskbkg.kernels import HAVE_NUMBA, preload
if HAVE_NUMBA:
    preload(rateints=False)
    preload(rateints=True)
"""


def warm_kernel_cache(env: dict[str, str] | None = None) -> bool:
    """Compile the default kernels into the numba cache; True on success.

    ``env`` adds variables for the compiling process (e.g. ``NUMBA_CACHE_DIR``).
    """
    if os.environ.get("DASKBKG_NO_CACHE_WARMUP", "") not in ("", "0"):
        return False
    start = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-c", _WARMUP, str(ROOT / "daskbkg")],
                              env={**os.environ, **(env or {})}, capture_output=True,
                              text=True, timeout=WARMUP_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError) as exc:
        print(f"daskbkg: numba cache warm-up skipped ({exc})", file=sys.stderr)
        return False
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        print(f"daskbkg: numba cache warm-up failed, kernels will compile on first use "
              f"({last})", file=sys.stderr)
        return False
    print(f"daskbkg: kernels compiled into the cache in "
          f"{time.perf_counter() - start:.1f} s", file=sys.stderr)
    return True


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    """setuptools' editable build, then the kernel cache warm-up."""
    name = _setuptools.build_editable(wheel_directory, config_settings, metadata_directory)
    warm_kernel_cache()
    return name


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    """setuptools' wheel build, then the kernel cache warm-up (see the module docstring)."""
    name = _setuptools.build_wheel(wheel_directory, config_settings, metadata_directory)
    warm_kernel_cache()
    return name
