"""End to end: `kedro run --env labelled` on a folder of a person's labelled pictures,
fine-tuned from a CIFAR-10 model that MLflow recorded, then predict with the new model."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pandas as pd
import pytest
import yaml
from kedro_cli import REPO, kedro, make_project
from labelled_folder import add_broken_files, write_class, write_folder

pytestmark = pytest.mark.slow

CLASSES = ["chat noir", "ünï dog"]


def _newest(project: Path, layer: str, name: str) -> Path:
    folder = project / "data" / "labelled" / layer / name
    return max(folder.iterdir()) / name


def _tiny(project: Path) -> None:
    """The labelled environment on the test environment's tiny network and gates."""
    test = yaml.safe_load((REPO / "conf/test/parameters.yml").read_text())
    path = project / "conf/labelled/parameters.yml"
    labelled = yaml.safe_load(path.read_text())
    labelled["training"]["model"] |= test["training"]["model"]
    labelled["training"] |= {"epochs": 1, "batch_size": 8, "jit_compile": False}
    labelled["promote"] |= {"accuracy_tolerance": 1.0, "max_ece": 1.0}
    labelled["robustness"] = test["robustness"]
    path.write_text(yaml.safe_dump(labelled, allow_unicode=True))


def _training_run(project: Path) -> str:
    with closing(sqlite3.connect(project / "mlflow.db")) as store:
        [(run_id,)] = store.execute(
            "SELECT run_uuid FROM runs JOIN tags USING (run_uuid) "
            "WHERE tags.key = 'kedro_env' AND tags.value = 'test'"
        ).fetchall()
    return run_id


def test_a_folder_of_own_pictures_fine_tuned_from_a_tracked_model(
    finished_project: Path,
) -> None:
    project = finished_project
    folder = project / "data" / "01_raw" / "labelled_images"
    write_folder(folder, CLASSES, 10)
    broken = add_broken_files(folder / CLASSES[1])
    (folder / CLASSES[0] / ".thumbs").mkdir()
    (folder / CLASSES[0] / ".thumbs" / "x.png").write_bytes(b"")
    _tiny(project)
    write_class(project / "data" / "01_raw" / "user_images", 0, 3)
    source = f"runs:/{_training_run(project)}/alexnet.keras"
    # `kedro run` (its default pipeline), then the trained model on the other pipelines.
    result = kedro(
        project, "run", "--env", "labelled",
        "--pipelines", "__default__,predict,features,robustness", "--params",
        f"training.fine_tune.from={source},training.fine_tune.head.epochs=1,"
        "training.fine_tune.all_layers.epochs=1",
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "Traceback" not in output

    report = json.loads(_newest(project, "08_reporting", "dataset_report.json").read_text())
    refused = {item["file"] for item in report["raw"]["refused"]}
    assert refused == {f"{CLASSES[1]}/{name}" for name in broken}
    assert report["raw"]["classes"][CLASSES[1]] == {"files": 13, "refused": 3}
    assert sum(split["images"] for split in report["splits"].values()) == 20
    metrics = json.loads(_newest(project, "08_reporting", "test_metrics.json").read_text())
    assert sorted(metrics["per_class"]) == CLASSES and metrics["kedro_env"] == "labelled"
    predictions = pd.read_csv(_newest(project, "07_model_output", "test_predictions.csv"))
    assert set(predictions["true_class"]) == set(CLASSES)
    assert (
        predictions["file_name"].str.split("/").str[0].tolist()
        == predictions["true_class"].tolist()
    )
    promotion = json.loads(_newest(project, "08_reporting", "promotion_report.json").read_text())
    assert promotion["alias"] == "champion-labelled"

    mine = pd.read_csv(_newest(project, "07_model_output", "user_predictions.csv"))
    assert set(mine["top1_class"]) <= set(CLASSES)
    assert mine.filter(like="p_").columns.tolist() == [f"p_{name}" for name in CLASSES]
    assert set(mine["model_version"]) == {metrics["model_version"]}
    embeddings = pd.read_parquet(_newest(project, "07_model_output", "embeddings.parquet"))
    assert set(embeddings["class"]) == set(CLASSES)
    robustness = pd.read_csv(_newest(project, "07_model_output", "robustness_results.csv"))
    assert set(robustness["model_version"]) == {metrics["model_version"]}


def test_a_folder_with_one_class_is_one_line(tmp_path: Path) -> None:
    project = make_project(tmp_path / "project")
    write_class(project / "data" / "01_raw" / "labelled_images" / "only", 0, 2)
    # In a process of its own: a session in this one would leave kedro-mlflow's tracking
    # URI set for the tests that follow.
    result = kedro(project, "run", "--env", "labelled")
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 1 and "Traceback" not in output
    assert "Configuration refused: No labelled pictures to learn from: 1 class folder(s)." in output
