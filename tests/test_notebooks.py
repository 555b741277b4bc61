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


#: Text each notebook must print (stream output or a cell's plain-text result).
EXPECTED_TEXT = {
    "01-quickstart": ["dashboard: http://127.0.0.1:",
                      "file SCI identical to the computed array: True"],
    "02-campaign": ["dashboard: http://127.0.0.1:",
                    # the summary line ("N products: ...") of report.table(), both runs
                    "10 products: 10 done in",
                    "10 products: 1 done, 9 skipped in",
                    "background combinations:    3",
                    "other products' files untouched: True"],
}
#: Prefix of each notebook's temporary folder (removed by its last cell).
TEMP_PREFIX = {"01-quickstart": "daskbkg-quickstart-", "02-campaign": "daskbkg-campaign-"}


def test_there_are_notebooks():
    """The quick-start notebook is where the README says, the campaign one follows it."""
    names = [p.name for p in NOTEBOOKS]
    assert names[:2] == ["01-quickstart.ipynb", "02-campaign.ipynb"]


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
    outputs, elapsed = _execute(path, tmp_path, monkeypatch)
    errors = [out for out in outputs if out.output_type == "error"]
    assert not errors, errors
    assert any("image/png" in out.get("data", {}) for out in outputs), "no figure was shown"
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
    return outputs, elapsed


def _text(outputs) -> str:
    """Join the printed text and plain-text results of ``outputs``, in order."""
    parts = []
    for out in outputs:
        if out.output_type == "stream":  # a printed line may span several stream outputs
            parts.append(out.get("text", ""))
        elif out.output_type in ("execute_result", "display_data"):
            parts.append("\n" + out.get("data", {}).get("text/plain", "") + "\n")
    return "".join(parts)
