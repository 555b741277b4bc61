"""The example notebooks run from top to bottom without errors and show their figures.

Each notebook is executed in a fresh Jupyter kernel (nbclient) with the repository on
``PYTHONPATH``. The notebooks themselves choose no matplotlib backend; the test sets
``MPLBACKEND`` to Jupyter's inline backend, which renders every figure to a PNG output
off-screen (Agg would render nothing into the outputs). The notebooks are stored *with*
their outputs, so that a saved copy shows the pictures; the stored copy is checked too.
Skipped when nbclient, nbformat, ipykernel or matplotlib is missing
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


#: Text each notebook must print (stream output or a cell's plain-text result).
EXPECTED_TEXT = {
    "01-quickstart": ["dashboard: http://127.0.0.1:",
                      "file SCI identical to the computed array: True"],
    "02-campaign": ["dashboard: http://127.0.0.1:",
                    # the summary line ("N products: ...") of report.table(), both runs
                    "10 products: 10 done in",
                    "10 products: 1 done, 9 skipped in",
                    "combined backgrounds:       3",
                    "other products' files untouched: True"],
}
#: Figures each notebook must show, at least.
MIN_FIGURES = 3
#: Cell tag of the figure that pictures the computation itself (the recorded task stream).
COMPUTATION_TAG = "computation-figure"
#: Prefix of each notebook's temporary folder (removed by its last cell).
TEMP_PREFIX = {"01-quickstart": "daskbkg-quickstart-", "02-campaign": "daskbkg-campaign-"}


def test_there_are_notebooks():
    """The quick-start notebook is where the README says, the campaign one follows it."""
    names = [p.name for p in NOTEBOOKS]
    assert names[:2] == ["01-quickstart.ipynb", "02-campaign.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_with_outputs(path):
    """Notebooks are stored valid, executed top to bottom, with their figures."""
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    counts = [cell.execution_count for cell in code]
    assert counts == list(range(1, len(code) + 1)), "execute the notebook top to bottom, then save"
    outputs = [out for cell in code for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    assert _figures(outputs) >= MIN_FIGURES
    _assert_computation_figure(code)
    for cell in code:  # the notebook leaves the backend to Jupyter (and to the test)
        assert "matplotlib.use(" not in cell.source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, tmp_path, monkeypatch):
    """The notebook executes without errors, quickly, and shows a PNG figure."""
    outputs, elapsed, cells = _execute(path, tmp_path, monkeypatch)
    _assert_computation_figure(cells)
    errors = [out for out in outputs if out.output_type == "error"]
    assert not errors, errors
    assert _figures(outputs) >= MIN_FIGURES, "too few figures were shown"
    text = _text(outputs)
    assert "Traceback" not in text
    for expected in EXPECTED_TEXT.get(path.stem, []):
        assert expected in text, f"{expected!r} not in the output of {path.name}"
    prefix = TEMP_PREFIX.get(path.stem)
    if prefix:
        assert not list(tmp_path.glob(prefix + "*")), "temporary folder left behind"
    assert elapsed < 90, f"{path.name} took {elapsed:.0f} s; keep notebooks quick"


def _execute(path, tmp_path, monkeypatch):
    """Run ``path`` in a fresh kernel inside ``tmp_path``; return its outputs and run time."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the notebook's temporary folder
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError on the first failing cell
    elapsed = time.perf_counter() - start
    cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    outputs = [out for cell in cells for out in cell.outputs]
    return outputs, elapsed, cells


def _figures(outputs) -> int:
    """Number of PNG images among ``outputs``."""
    return sum("image/png" in out.get("data", {}) for out in outputs)


def _assert_computation_figure(cells) -> None:
    """A cell tagged COMPUTATION_TAG exists and shows a picture."""
    tagged = [cell for cell in cells if COMPUTATION_TAG in cell.metadata.get("tags", [])]
    assert tagged, f"no cell tagged {COMPUTATION_TAG!r}"
    assert all(_figures(cell.outputs) for cell in tagged), "the computation figure is missing"


def _text(outputs) -> str:
    """Join the printed text and plain-text results of ``outputs``, in order."""
    parts = []
    for out in outputs:
        if out.output_type == "stream":  # a printed line may span several stream outputs
            parts.append(out.get("text", ""))
        elif out.output_type in ("execute_result", "display_data"):
            parts.append("\n" + out.get("data", {}).get("text/plain", "") + "\n")
    return "".join(parts)
