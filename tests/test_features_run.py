"""End to end: `kedro run --pipelines features` after a run, as a user types it."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from kedro_cli import kedro, saved, versions

pytestmark = pytest.mark.slow


def test_embeddings_probe_and_projection_of_the_trained_model(finished_project: Path) -> None:
    project = finished_project
    [model_version] = versions(project, "06_models", "alexnet.keras")
    result = kedro(project, "run", "--env", "test", "--pipelines", "features")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "Traceback" not in output

    [run] = versions(project, "07_model_output", "embeddings.parquet")
    embeddings = pd.read_parquet(
        project / "data/test/07_model_output/embeddings.parquet" / run / "embeddings.parquet"
    )
    splits = json.loads(
        saved(project, "08_reporting", "dataset_report.json", model_version).read_text()
    )["splits"]  # fmt: skip
    counts = embeddings["split"].value_counts().to_dict()
    assert counts == {name: splits[name]["images"] for name in ("train", "validation", "test")}
    # conf/test's network: dense_units [16, 16], so fc2 gives 16 features.
    assert [c for c in embeddings.columns if c.startswith("fc2_")] == [
        f"fc2_{i:04d}" for i in range(16)
    ]
    assert set(embeddings["model_version"]) == {model_version}

    metrics = json.loads(
        (
            project / "data/test/08_reporting/linear_probe_metrics.json" / run
            / "linear_probe_metrics.json"
        ).read_text()
    )  # fmt: skip
    assert metrics["model_version"] == model_version
    assert metrics["images"]["test"] == counts["test"]
    assert 0 <= metrics["test_accuracy"] <= 1
    test_metrics = json.loads(
        (project / "data/test/08_reporting/test_metrics.json" / model_version / "test_metrics.json")
        .read_text()
    )  # fmt: skip
    # The network's own accuracy, recomputed from the embeddings run, is evaluate's.
    assert metrics["network_test_accuracy"] == pytest.approx(test_metrics["accuracy"])
    assert f"Linear probe test accuracy {metrics['test_accuracy']:.4f}" in result.log
    assert versions(project, "08_reporting", "embedding_projection.png") == [run]
