"""The example notebooks run from top to bottom without errors and show their figures.

Each notebook is executed in a fresh Jupyter kernel (nbclient) with the repository on
``PYTHONPATH``. Skipped when nbclient, nbformat, ipykernel or matplotlib is missing
(``pip install "daskbkg[notebooks]"``).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="nbformat is not installed")
nbclient = pytest.importorskip("nbclient", reason="nbclient is not installed")
pytest.importorskip("ipykernel", reason="ipykernel is not installed (no Jupyter kernel)")
pytest.importorskip("matplotlib", reason="matplotlib is not installed")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    """The quick-start notebook is where the README says."""
    assert [p.name for p in NOTEBOOKS][:1] == ["01-quickstart.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_without_outputs(path):
    """Notebooks are stored valid and without outputs (small, reviewable diffs)."""
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, "clear outputs first"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, tmp_path, monkeypatch):
    """The notebook executes without errors, quickly, and shows a PNG figure."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the notebook's temporary folder
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError on the first failing cell
    elapsed = time.perf_counter() - start

    outputs = [out for cell in notebook.cells if cell.cell_type == "code"
               for out in cell.outputs]
    errors = [out for out in outputs if out.output_type == "error"]
    assert not errors, errors
    assert any("image/png" in out.get("data", {}) for out in outputs), "no figure was shown"
    text = "".join(out.get("text", "") for out in outputs if out.output_type == "stream")
    assert "Traceback" not in text
    if path.stem == "01-quickstart":
        assert "dashboard: http://127.0.0.1:" in text
        assert "file SCI identical to the computed array: True" in text
        assert not list(tmp_path.glob("daskbkg-quickstart-*")), "temporary folder left behind"
    assert elapsed < 90, f"{path.name} took {elapsed:.0f} s; keep notebooks quick"
