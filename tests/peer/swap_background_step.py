"""pytest plugin: make ``jwst.background.BackgroundStep`` daskbkg's step (``compat="jwst-3.0"``).

Loaded with ``-p swap_background_step`` before jwst's own test modules are collected, so
their ``from jwst.background import BackgroundStep`` gets :class:`PeerBackgroundStep`.
jwst's top-level conftest asks CRDS for its context (a server) to print a header, so the
run cuts conftest loading below it and this plugin provides the one fixture the module
uses from there, ``tmp_cwd``.
"""

from __future__ import annotations

import os

import jwst.background
import pytest

from daskbkg.step import DaskBackgroundStep

_DEFAULT = 'compat = option("jwst-1.13", "jwst-3.0", default="jwst-1.13")'
assert _DEFAULT in DaskBackgroundStep.spec


class PeerBackgroundStep(DaskBackgroundStep):
    """``DaskBackgroundStep`` whose ``compat`` preset defaults to jwst 3.0's behaviour."""

    spec = DaskBackgroundStep.spec.replace(_DEFAULT, _DEFAULT.replace('default="jwst-1.13"',
                                                                      'default="jwst-3.0"'))


jwst.background.BackgroundStep = PeerBackgroundStep


@pytest.fixture
def tmp_cwd(tmp_path):
    """Run the test inside its own temporary folder."""
    previous = os.getcwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(previous)


def pytest_report_header(config):
    """Say which class the peer run tests."""
    return "jwst.background.BackgroundStep -> daskbkg PeerBackgroundStep (compat='jwst-3.0')"
