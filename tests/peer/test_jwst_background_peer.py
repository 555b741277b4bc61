"""jwst's own background-step tests, run against ``DaskBackgroundStep``.

Skipped unless jwst is installed. The installed ``jwst/background/tests/test_background.py``
is run by pytest in a subprocess with the plugin ``swap_background_step``, which replaces
``jwst.background.BackgroundStep`` by daskbkg's step with ``compat="jwst-3.0"`` before the
module is imported. Nothing of jwst is copied here. To run it::

    python3 -m venv /tmp/peer && /tmp/peer/bin/pip install "jwst==3.0.0" -e ".[jwst]" pytest
    /tmp/peer/bin/python -m pytest tests/peer
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

pytestmark = pytest.mark.skipif(importlib.util.find_spec("jwst") is None,
                                reason="jwst is not installed (pip install jwst==3.0.0)")


def _jwst_test_module() -> Path:
    spec = importlib.util.find_spec("jwst.background.tests.test_background")
    assert spec is not None and spec.origin, "jwst ships no background tests"
    return Path(spec.origin)


def test_jwst_background_tests_pass_with_daskbkg(tmp_path):
    module = _jwst_test_module()
    package_root = module.parents[2]  # .../site-packages/jwst
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), str(ROOT)]),
               CRDS_SERVER_URL=os.environ.get("CRDS_SERVER_URL", "http://127.0.0.1:9"),
               CRDS_PATH=os.environ.get("CRDS_PATH", str(tmp_path / "crds")))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(module), "-p", "swap_background_step",
         f"--rootdir={package_root}", f"--confcutdir={module.parent}", "-p",
         "no:cacheprovider", "-W", "ignore"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800)
    output = proc.stdout + proc.stderr
    assert "PeerBackgroundStep" in output, output[-3000:]
    assert proc.returncode == 0, output[-6000:]
    summary = re.search(r"(\d+) passed", output)
    assert summary and int(summary.group(1)) >= 20, output[-3000:]
    assert " failed" not in output and " error" not in output, output[-3000:]
