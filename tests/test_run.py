"""End to end: `kedro run` as a user types it, in the `test` environment."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from kedro_cli import kedro, versions

VERSIONED = {
    "02_intermediate": ["dataset_split.npz"],
    "05_model_input": [
        "model_input_train.npz",
        "model_input_validation.npz",
        "model_input_test.npz",
    ],
    "06_models": ["alexnet.keras"],
    "07_model_output": ["training_history.csv", "test_predictions.csv"],
    "08_reporting": [
        "dataset_report.json",
        "sample_images.png",
        "training_run.json",
        "test_metrics.json",
        "accuracy_plot.png",
        "loss_plot.png",
        "confusion_matrix.png",
    ],
}


def snapshot(project: Path) -> dict[str, str]:
    """Hash of every file under data/ except the raw input."""
    return {
        str(p.relative_to(project)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((project / "data").rglob("*"))
        if p.is_file() and "01_raw" not in p.parts
    }


def test_run_then_evaluate_alone_then_again(finished_project: Path) -> None:
    project = finished_project
    for layer, names in VERSIONED.items():
        for name in names:
            assert len(versions(project, layer, name)) == 1, f"{layer}/{name}"
    [model_version] = versions(project, "06_models", "alexnet.keras")
    metrics_file = project / "data/08_reporting/test_metrics.json"
    first = json.loads(next(metrics_file.glob("*/test_metrics.json")).read_text())
    assert first["run_label"].startswith("TEST RUN")
    assert first["test_images"] == 50
    history = next((project / "data/07_model_output/training_history.csv").glob("*/*.csv"))
    assert history.read_text().splitlines()[0].startswith("epoch,")
    before = snapshot(project)

    # Re-evaluate the latest model without retraining, with both spellings of the flag.
    for flag in ("--pipeline", "--pipelines"):
        result = kedro(project, "run", "--env", "test", flag, "evaluate")
        assert result.returncode == 0, result.stderr[-4000:]
    assert versions(project, "06_models", "alexnet.keras") == [model_version]
    assert len(versions(project, "08_reporting", "test_metrics.json")) == 3
    result = kedro(
        project,
        "run",
        "--env",
        "test",
        "--pipeline",
        "evaluate",
        "--load-versions",
        f"model:{model_version}",
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert len(versions(project, "08_reporting", "test_metrics.json")) == 4

    # A second data_processing run adds versions and leaves the first run's files untouched.
    result = kedro(project, "run", "--env", "test", "--pipelines", "data_processing")
    assert result.returncode == 0, result.stderr[-4000:]
    assert len(versions(project, "05_model_input", "model_input_train.npz")) == 2
    after = snapshot(project)
    assert {path: after[path] for path in before} == before


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("training.epochs=0", "training.epochs"),
        ("training.optimizer.name=adamax", "training.optimizer.name"),
    ],
)
def test_bad_parameters_stop_the_run_before_any_node(
    project: Path, override: str, named: str
) -> None:
    result = kedro(project, "run", "--env", "test", "--params", override)
    assert result.returncode != 0
    assert f"Parameter '{named}' must be" in result.stdout + result.stderr
    assert not (project / "data" / "02_intermediate" / "dataset_split.npz").exists()
