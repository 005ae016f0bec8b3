"""Experiment tracking (tracking.py): what a run records in MLflow, and that tracking never
costs a run its outputs. The slow tests read the store of real `kedro run`s through MLflow's
client."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pluggy
import pytest
from kedro.config import OmegaConfigLoader
from kedro.framework.hooks import hook_impl, specs
from kedro.io import DataCatalog, Version
from kedro.pipeline import Node, Pipeline
from kedro_cli import REPO, model_card, model_history, versions
from kedro_mlflow.config.kedro_mlflow_config import KedroMlflowConfig
from mlflow.exceptions import MlflowException

from alexnet_cifar10.datasets import JSONDataset
from alexnet_cifar10.datasets.atomic import HOST
from alexnet_cifar10.pipelines import data_processing, training
from alexnet_cifar10.settings import CONFIG_LOADER_ARGS
from alexnet_cifar10.tracking import TrackingGuard, TrackingHook

# Under pytest-xdist, the tests that read the session's tracked runs share one worker,
# which builds them once.
pytestmark = pytest.mark.xdist_group("tracked_runs")

EXPERIMENT = "alexnet_cifar10"
ARTIFACT_FILES = {
    "alexnet.keras",
    "model_summary.csv",
    "training_history.csv",
    "test_metrics.json",
    "accuracy_plot.png",
    "loss_plot.png",
    "confusion_matrix_plot.png",
    "calibration_metrics.json",
    "reliability_diagram.png",
    "promotion_report.json",
}
HISTORIES = ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "epoch_seconds")


def _flat(params: dict, prefix: str = "") -> dict[str, str]:
    """Nested parameters as MLflow keeps them: one per key, values as text."""
    flat = {}
    for key, value in params.items():
        if isinstance(value, dict):
            flat |= _flat(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = str(value)
    return flat


# --- the records, from what the pipelines save ----------------------------------------------


@pytest.mark.parametrize("env", ["base", "quick", "tuned", "test", "local"])
def test_every_environment_tracks_in_the_projects_own_store(
    env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kedro-mlflow's own configuration: the store and the artifacts at the project root,
    wherever in the project Kedro runs; runs that train or evaluate are recorded."""
    monkeypatch.chdir(REPO / "src")
    loader = OmegaConfigLoader(
        str(REPO / "conf"),
        env=None if env == "base" else env,
        **CONFIG_LOADER_ARGS,
    )
    config = KedroMlflowConfig.model_validate(dict(loader["mlflow"]))
    assert config.server.mlflow_tracking_uri == f"sqlite:///{REPO}/mlflow.db"
    experiment = config.tracking.experiment
    assert experiment.create_experiment_kwargs.artifact_location == f"{REPO}/mlartifacts"
    assert experiment.name == EXPERIMENT
    assert config.ui.host == "127.0.0.1"
    off = set(config.tracking.disable_tracking.pipelines)
    assert off == {"data_processing", "predict", "features", "robustness", "export", "promote"}


# --- the project's hook, on a run that kedro-mlflow's hook would have started ---------------


@pytest.fixture
def store(tmp_path: Path) -> Iterator[mlflow.MlflowClient]:
    """A store of its own, as kedro-mlflow's hook sets it up, and no run left open."""
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    mlflow.create_experiment(EXPERIMENT, artifact_location=str(tmp_path / "mlartifacts"))
    mlflow.set_experiment(EXPERIMENT)
    yield mlflow.MlflowClient()
    while mlflow.active_run():
        mlflow.end_run()


def _run_params(**extra: object) -> dict:
    return {"run_id": "2026-03-01T00.00.00.000Z", "env": "unit", **extra}


def _report_catalog(tmp_path: Path) -> DataCatalog:
    version = Version(None, _run_params()["run_id"])
    return DataCatalog(
        datasets={
            "dataset_report": JSONDataset(
                filepath=str(tmp_path / "report.json"),
                version=version,
                metadata={"mlflow": "artifact"},
            ),
            "sample_images": JSONDataset(filepath=str(tmp_path / "other.json"), version=version),
        }
    )


def test_the_run_is_named_tagged_and_given_the_reports_marked_as_artifacts(
    store: mlflow.MlflowClient, tmp_path: Path
) -> None:
    run = mlflow.start_run()
    hook, catalog = TrackingHook(), _report_catalog(tmp_path)
    hook.before_pipeline_run(_run_params(), data_processing.create_pipeline(), catalog)
    for name in ("dataset_report", "sample_images"):
        catalog.save(name, {"name": name})
        hook.after_dataset_saved(dataset_name=name)
    hook.after_pipeline_run(data_processing.create_pipeline(), catalog)
    recorded = store.get_run(run.info.run_id)
    assert recorded.info.run_name == "evaluate 2026-03-01T00.00.00.000Z"
    assert recorded.data.tags["run_kind"] == "evaluate"
    assert recorded.info.status == "FINISHED"
    assert [a.path for a in store.list_artifacts(run.info.run_id)] == ["report.json"]
    assert mlflow.active_run() is None and "MLFLOW_RUN_ID" not in os.environ


def test_a_failed_run_is_recorded_failed(store: mlflow.MlflowClient, tmp_path: Path) -> None:
    """A failed node ends the run FAILED. (Ctrl-C and SIGTERM, which end the interpreter
    without Kedro's after_pipeline_run, record KILLED: tests/test_faults.py, on a real run.)"""
    run = mlflow.start_run()
    mlflow.start_run(run_id=run.info.run_id, nested=True)  # as kedro-mlflow leaves it
    hook = TrackingHook()
    hook.before_pipeline_run(_run_params(), training.create_pipeline(), _report_catalog(tmp_path))
    hook.on_pipeline_error()
    assert store.get_run(run.info.run_id).info.status == "FAILED"
    assert mlflow.active_run() is None


def test_a_run_left_running_by_a_killed_process_is_recorded_killed(
    store: mlflow.MlflowClient, tmp_path: Path
) -> None:
    """kill -9 leaves a run RUNNING; the next tracked run on the machine closes it, and
    leaves alone a run whose process still runs."""
    experiment = store.get_experiment_by_name(EXPERIMENT).experiment_id
    dead = subprocess.Popen(["true"])
    dead.wait()
    killed, alive = (store.create_run(experiment) for _ in range(2))
    store.set_tag(killed.info.run_id, "process", f"{HOST}:{dead.pid}")
    store.set_tag(alive.info.run_id, "process", f"{HOST}:{os.getpid()}")
    run = mlflow.start_run()
    hook = TrackingHook()
    hook.before_pipeline_run(
        _run_params(), data_processing.create_pipeline(), _report_catalog(tmp_path)
    )
    hook.after_pipeline_run(data_processing.create_pipeline(), _report_catalog(tmp_path))
    assert store.get_run(killed.info.run_id).info.status == "KILLED"
    assert store.get_run(alive.info.run_id).info.status == "RUNNING"
    assert store.get_run(run.info.run_id).data.tags["process"] == f"{HOST}:{os.getpid()}"


def test_a_run_that_tracking_leaves_off_is_left_alone(store, tmp_path: Path) -> None:
    hook, catalog = TrackingHook(), _report_catalog(tmp_path)
    hook.before_pipeline_run(_run_params(), data_processing.create_pipeline(), catalog)
    catalog.save("dataset_report", {"a": 1})
    hook.after_dataset_saved(dataset_name="dataset_report")
    hook.after_pipeline_run(data_processing.create_pipeline(), catalog)
    assert store.search_runs([store.get_experiment_by_name(EXPERIMENT).experiment_id]) == []


# --- real runs, read back through MLflow's client --------------------------------------------


def _client(project: Path):
    mlflow = pytest.importorskip("mlflow", reason="MLflow is a dependency of the project")
    return mlflow.MlflowClient(f"sqlite:///{project / 'mlflow.db'}")


def _saved(project: Path, layer: str, name: str, version: str) -> Path:
    return project / "data" / "test" / layer / name / version / name


def _runs(client, **filters: str) -> list:
    experiment = client.get_experiment_by_name(EXPERIMENT)
    query = " and ".join(f"tags.{key} = '{value}'" for key, value in filters.items())
    return client.search_runs([experiment.experiment_id], query)


@pytest.mark.slow
def test_two_runs_are_two_mlflow_runs_with_their_own_records(
    tracked_runs: Path, tmp_path: Path
) -> None:
    project = tracked_runs
    client = _client(project)
    runs = {run.data.tags["model_version"]: run for run in _runs(client, run_kind="train")}
    assert sorted(runs) == versions(project, "06_models", "alexnet.keras")
    first, second = (run.data.params for run in runs.values())
    assert {key for key in first | second if first.get(key) != second.get(key)} == {
        "training.epochs",
        "training.optimizer.learning_rate",
    }
    for version, run in runs.items():
        assert run.info.status == "FINISHED"
        tags = run.data.tags
        assert tags["run_label"] == "TEST RUN: synthetic data"
        assert (tags["kedro_env"], tags["run_kind"]) == ("test", "train")
        assert tags["run_id"] == run.info.run_name == version  # kedro-mlflow: the save version

        # Every parameter the run used, as its model's card recorded them.
        parameters = model_card(project, version)["parameters"]
        assert _flat({"training": parameters["training"]}).items() <= run.data.params.items()
        assert run.data.params["seed"] == str(parameters["seed"])

        # One point per epoch of every history, equal to the history in the model's archive.
        saved = model_history(project, version)
        epochs = int(run.data.params["training.epochs"])
        assert saved["epoch"].tolist() == list(range(1, epochs + 1))
        for metric in HISTORIES:
            points = client.get_metric_history(run.info.run_id, f"history.{metric}")
            assert [point.step for point in points] == saved["epoch"].tolist(), metric
            np.testing.assert_allclose([point.value for point in points], saved[metric])

        metrics = json.loads(
            _saved(project, "08_reporting", "test_metrics.json", version).read_text()
        )
        assert run.data.metrics["test.accuracy"] == metrics["accuracy"]
        assert run.data.metrics["test.loss"] == metrics["loss"]
        assert run.data.metrics["test.macro_f1"] == metrics["macro_f1"]
        for name, scores in metrics["per_class"].items():
            assert run.data.metrics[f"test.f1_{name}"] == scores["f1"]

        artifacts = {artifact.path for artifact in client.list_artifacts(run.info.run_id)}
        assert artifacts == ARTIFACT_FILES
        copy = client.download_artifacts(
            run.info.run_id, "confusion_matrix_plot.png", str(tmp_path)
        )
        plot = _saved(project, "08_reporting", "confusion_matrix_plot.png", version)
        assert Path(copy).read_bytes() == plot.read_bytes()
        assert Path(run.info.artifact_uri.removeprefix("file://")).is_relative_to(project)


@pytest.mark.slow
def test_an_evaluate_only_run_is_recorded_against_the_model_it_evaluated(
    tracked_runs: Path,
) -> None:
    project = tracked_runs
    older = versions(project, "06_models", "alexnet.keras")[0]
    client = _client(project)
    [run] = _runs(client, run_kind="evaluate")
    [trained] = _runs(client, model_version=older, run_kind="train")
    assert run.data.tags["model_version"] == older
    assert run.data.tags["mlflow.parentRunId"] == trained.info.run_id
    assert (run.data.tags["run_label"], run.data.tags["kedro_env"]) == (
        trained.data.tags["run_label"],
        trained.data.tags["kedro_env"],
    )
    this_run = run.data.tags["run_id"]
    assert run.info.run_name == f"evaluate {this_run}"
    assert set(run.data.params) == {
        "class_names",
        "evaluate.batch_size",
        "evaluate.calibration.bins",
        "evaluate.test_time_augmentation.horizontal_flip",
        "evaluate.test_time_augmentation.shift",
    }
    metrics = json.loads(_saved(project, "08_reporting", "test_metrics.json", this_run).read_text())
    assert metrics["model_version"] == older
    assert run.data.metrics["test.accuracy"] == metrics["accuracy"]
    assert client.get_metric_history(run.info.run_id, "history.loss") == []
    artifacts = {artifact.path for artifact in client.list_artifacts(run.info.run_id)}
    # The evaluated model is the older run's: this run trained none.
    assert artifacts == ARTIFACT_FILES - {
        "model_summary.csv",
        "promotion_report.json",
        "alexnet.keras",
    }


class _LockedStore:
    """A tracking hook whose store fails, as kedro-mlflow's does on a locked SQLite file."""

    calls = 0

    @hook_impl
    def before_node_run(self, node) -> None:
        _LockedStore.calls += 1
        raise MlflowException("(sqlite3.OperationalError) database is locked\n[SQL: SELECT 1]")

    @hook_impl
    def after_node_run(self, node) -> None:
        raise ValueError("a project error, not tracking's")


def test_the_guard_turns_tracking_failures_into_one_line_and_lets_other_errors_through(
    store: mlflow.MlflowClient, caplog: pytest.LogCaptureFixture
) -> None:
    closed: list[str] = []
    manager = pluggy.PluginManager("kedro")
    for spec in (specs.NodeSpecs, specs.PipelineSpecs, specs.DatasetSpecs):
        manager.add_hookspecs(spec)
    manager.register(_LockedStore())
    manager.register(TrackingGuard(closed.append))
    uri = mlflow.get_tracking_uri()
    pipeline, catalog = Pipeline([]), DataCatalog()
    manager.hook.before_pipeline_run(run_params={}, pipeline=pipeline, catalog=catalog)
    work = Node(lambda: None, None, "x", name="work")
    for _ in range(3):
        manager.hook.before_node_run(
            node=work, catalog=catalog, inputs={}, is_async=False, run_id="r"
        )
    assert _LockedStore.calls == 3
    lines = [r.getMessage() for r in caplog.records if "MLflow could not record" in r.message]
    assert lines == [
        "MLflow could not record the parameters of node work ((sqlite3.OperationalError) "
        "database is locked): the run goes on untracked, its outputs are saved as usual."
    ]
    assert mlflow.get_tracking_uri() != uri  # kedro-mlflow's later calls go to a scratch store
    with pytest.raises(ValueError, match="a project error"):
        manager.hook.after_node_run(
            node=work, catalog=catalog, inputs={}, outputs={}, is_async=False, run_id="r"
        )
    manager.hook.after_pipeline_run(
        run_params={}, run_result={}, pipeline=pipeline, catalog=catalog
    )
    assert closed == ["FINISHED"]
    assert mlflow.get_tracking_uri() == uri
