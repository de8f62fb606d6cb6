"""The example notebook runs top to bottom in a real Jupyter kernel, as a user would run it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "respread.ipynb"


def test_the_example_notebook_runs_and_shows_the_figures(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    monkeypatch.chdir(tmp_path)  # the notebook writes runs/notebook-eval
    client = nbclient.NotebookClient(notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute(env=dict(os.environ))
    text = "\n".join(
        str(output.get("text", "")) + str(output.get("data", {}).get("text/plain", ""))
        for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
    )
    assert "valid mass" in text and "TV among valid answers" in text
    assert "tv_valid" in text and "exact" in text  # the DataFrame came back
    assert (tmp_path / "runs" / "notebook-eval" / "metrics.json").is_file()
