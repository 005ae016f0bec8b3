"""notebooks/results.ipynb as a data scientist uses it: opened after runs, run top to bottom."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from kedro_cli import versions

# Under pytest-xdist, the tests that read the session's tracked runs share one worker,
# which builds them once.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("tracked_runs")]

nbformat = pytest.importorskip("nbformat", reason="nbformat is in the test extra")
nbclient = pytest.importorskip("nbclient", reason="nbclient is in the test extra")

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "results.ipynb"
VERSION = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}\.\d{2}\.\d{2}\.\d{3}Z")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def cell_text(cell) -> str:
    """Everything a code cell printed or displayed, as plain text."""
    parts = []
    for output in cell.get("outputs", []):
        parts.append(output.get("text", ""))
        for mime in ("text/plain", "text/markdown", "text/html"):
            parts.append(output.get("data", {}).get(mime, ""))
    return ANSI.sub("", "\n".join(parts))


def test_notebook_is_committed_without_outputs():
    """Outputs and execution counts are stripped, so the notebook diffs cleanly in git."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code_cells
    for cell in code_cells:
        assert cell.outputs == [], f"outputs left in cell:\n{cell.source[:200]}"
        assert cell.execution_count is None, f"execution count left in cell:\n{cell.source[:200]}"
    assert notebook.metadata.kernelspec.name == "python3"


def test_notebook_runs_top_to_bottom_after_runs(
    tracked_project: Path, monkeypatch: pytest.MonkeyPatch
):
    """After two tracked runs with different parameters and an evaluate run (conftest's
    `tracked_runs`), every cell runs and shows what it promises."""
    project = tracked_project

    # Where a data scientist keeps it: notebooks/ of the project, the working directory.
    notebooks = project / "notebooks"
    notebooks.mkdir()
    shutil.copy(NOTEBOOK, notebooks)
    notebook = nbformat.read(notebooks / NOTEBOOK.name, as_version=4)

    # The kernel inherits this environment: the catalog of `--env test`, no telemetry, and no
    # ALEXNET_CIFAR10_PROJECT, so the notebook must find the project from its own folder.
    monkeypatch.setenv("KEDRO_ENV", "test")
    monkeypatch.setenv("KEDRO_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    monkeypatch.delenv("ALEXNET_CIFAR10_PROJECT", raising=False)
    client = nbclient.NotebookClient(
        notebook,
        timeout=180,
        kernel_name="python3",
        resources={"metadata": {"path": str(notebooks)}},
    )
    client.execute()  # raises CellExecutionError on the first cell that raises

    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.execution_count for cell in code_cells), "a cell did not run"
    errors = [o for cell in code_cells for o in cell.outputs if o.output_type == "error"]
    assert not errors, errors

    text = "\n".join(cell_text(cell) for cell in code_cells)
    assert str(project) in text, "the notebook did not load this project's catalog"
    assert "TEST RUN: synthetic data" in text, "the metrics are not the test run's"
    assert "test accuracy" in text

    figures = [
        output
        for cell in code_cells
        for output in cell.outputs
        if "image/png" in output.get("data", {})
    ]
    # Training curves, confusion matrix and the grid of confidently wrong images.
    assert len(figures) >= 3, f"expected 3 figures, got {len(figures)}"

    versions_cell = next(cell for cell in code_cells if "versions" in cell.metadata.get("tags", []))
    on_disk = sorted(
        path.name for path in (project / "data/test/08_reporting/test_metrics.json").iterdir()
    )
    shown = sorted(set(VERSION.findall(cell_text(versions_cell))))
    assert len(on_disk) >= 2
    assert shown == on_disk, f"version table {shown} != saved versions {on_disk}"

    # The tracked runs: both trainings and the evaluation, the parameters that differ
    # between the trainings, and each run's test accuracy.
    tracked = cell_text(
        next(cell for cell in code_cells if "tracked-runs" in cell.metadata.get("tags", []))
    )
    models = versions(project, "06_models", "alexnet.keras")
    assert len(models) == 2 and all(model in tracked for model in models)
    assert f"evaluate {on_disk[-1]}" in tracked
    assert "training.epochs" in tracked and "training.optimizer.learning_rate" in tracked
    assert "class_names" not in tracked and "evaluate.batch_size" not in tracked
    # pandas rounds a column to the digits it needs (0.1 may show as "0.1" or "0.10").
    cells = [float(cell) for cell in re.findall(r"<td>(\d+\.\d+)</td>", tracked)]
    for version in on_disk:
        saved = project / "data/test/08_reporting/test_metrics.json" / version / "test_metrics.json"
        accuracy = json.loads(saved.read_text())["accuracy"]
        assert any(abs(cell - accuracy) < 5e-3 for cell in cells), (accuracy, cells)
