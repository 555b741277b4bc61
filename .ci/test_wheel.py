"""Test an installed wheel (cibuildwheel's test-command): the compiled parts' tests, from a copy.

``tests/conftest.py`` puts the folder above ``tests/`` first on ``sys.path`` so that a
source checkout runs without installing; run from the source tree, the tests would then
import the uncompiled sources instead of the wheel. A copy of ``tests/`` in a temporary
folder imports the installed package.

Usage: ``python .ci/test_wheel.py PROJECT_DIR``
"""

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

TESTS = ["test_kernels_combine.py", "test_kernels_sorted.py", "test_kernels_clip.py",
         "test_clip_scale.py", "test_exactness.py", "test_io_regions.py"]


def main() -> int:
    """Copy tests/ to a temporary folder and run the kernel and reader tests there; pytest's
    exit code."""
    project = Path(sys.argv[1])
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(project / "tests", Path(tmp) / "tests")
        return subprocess.call([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                *(f"tests/{name}" for name in TESTS)], cwd=tmp)


if __name__ == "__main__":
    sys.exit(main())
