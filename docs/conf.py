"""Sphinx configuration of the daskbkg documentation.

Build with ``sphinx-build -W --keep-going -b html docs docs/_build/html`` after
``pip install -e ".[docs]"``. Nothing is fetched from the network: no intersphinx
inventories, no remote images. The notebooks in ``notebooks/`` are copied into
``docs/notebooks/`` (ignored by git) and executed by myst-nb during the build.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))

# The notebooks' kernels import this tree's daskbkg too, installed or not.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))

# One thread per kernel call: dask's threads do the parallelism (also in the notebooks).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import daskbkg  # noqa: E402

project = "daskbkg"
author = "the daskbkg developers"
copyright = "the daskbkg developers, BSD-3-Clause"
release = daskbkg.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "sphinxarg.ext",
]

# -- sources --------------------------------------------------------------------------------
exclude_patterns = ["_build", "**.ipynb_checkpoints", "jupyter_execute"]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}

# Keep "--option" and quotes as typed (no en dashes in option names).
smartquotes = False

# -- MyST -----------------------------------------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

# -- notebooks (myst-nb) --------------------------------------------------------------------
# The notebooks are executed at every build, on their own small synthetic data.
# DASKBKG_DOCS_NB_EXECUTION=off gives a quick draft build that shows the stored outputs.
nb_execution_mode = os.environ.get("DASKBKG_DOCS_NB_EXECUTION", "force")
nb_execution_timeout = 300
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True
# Markdown produced by code cells (the benchmark table) may hold tables.
nb_render_markdown_format = "myst"

# -- API reference --------------------------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
napoleon_numpy_docstring = True
napoleon_google_docstring = False
napoleon_use_rtype = False
# Docstrings name types in prose ("int or None", "array-like"); do not cross-link them.
nitpicky = False

# -- HTML -----------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"daskbkg {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_sidebars = {"**": ["sidebar-nav-bs"]}
html_show_sourcelink = False

# No network at build time: no intersphinx, no version switcher, no analytics.
intersphinx_mapping: dict = {}


def _copy_notebooks(app) -> None:
    """Copy ``notebooks/*.ipynb`` next to the pages that render them (re-copied each build)."""
    target = DOCS / "notebooks"  # holds index.md; the copies are ignored by git
    for old in target.glob("*.ipynb"):
        old.unlink()
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        shutil.copy2(notebook, target / notebook.name)


def _join_wrapped_parameter_names(app, what, name, obj, options, lines) -> None:
    """Join a numpydoc parameter line whose list of names wraps onto the next line.

    ``a, b, c,`` followed by ``d, e`` at the same indentation is one entry for a reader,
    but napoleon reads the second line as a new, malformed entry.
    """
    i = 0
    while i < len(lines) - 1:
        line, nxt = lines[i], lines[i + 1]
        indent = len(line) - len(line.lstrip())
        if (line.rstrip().endswith(",") and nxt.strip()
                and len(nxt) - len(nxt.lstrip()) == indent and ":" not in line):
            lines[i] = line.rstrip() + " " + nxt.strip()
            del lines[i + 1]
            continue
        i += 1


def setup(app):
    """Copy the notebooks before Sphinx reads its sources; mend wrapped parameter lists."""
    _copy_notebooks(app)
    app.connect("autodoc-process-docstring", _join_wrapped_parameter_names, priority=100)
    return {"parallel_read_safe": True}
