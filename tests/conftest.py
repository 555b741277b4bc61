"""Shared pytest configuration: make the repository root importable without installing."""

import os
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)


import pytest  # noqa: E402


@pytest.fixture
def inputs(tmp_path):
    """Exposure maker writing into ``tmp_path/in``."""
    from tests.helpers import Maker

    folder = tmp_path / "in"
    folder.mkdir()
    return Maker(folder)
