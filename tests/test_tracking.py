"""Experiment tracking (tracking.py): what a run records in MLflow, and that tracking never
costs a run its outputs. The slow tests read the store of real `kedro run`s through MLflow's
client."""

from __future__ import annotations

import json
import logging
import sqlite3
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from kedro.config import OmegaConfigLoader
from kedro.io import DataCatalog, MemoryDataset
from kedro_cli import REPO, kedro, model_card, model_history, versions

from alexnet_cifar10.pipelines import data_processing, training
from alexnet_cifar10.settings import CONFIG_LOADER_ARGS
from alexnet_cifar10.tracking import TrackingHook, resolve_store, runs_table, store_path

# Under pytest-xdist, the tests that read the session's tracked runs share one worker,
# which builds them once.
pytestmark = pytest.mark.xdist_group("tracked_runs")

EXPERIMENT = "alexnet_cifar10"
ARTIFACT_FILES = {
    "model_summary.csv",
    "training_history.csv",
    "test_metrics.json",
    "accuracy_plot.png",
    "loss_plot.png",
    "confusion_matrix.png",
    "calibration_metrics.json",
    "reliability_diagram.png",
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


def test_a_relative_sqlite_store_is_taken_from_the_project_root(tmp_path: Path) -> None:
    assert store_path("sqlite:///mlflow.db", tmp_path) == tmp_path / "mlflow.db"
    assert store_path("sqlite:////srv/x.db", tmp_path) == Path("/srv/x.db")
    assert store_path("http://mlflow.example.com:5000", tmp_path) is None
    assert store_path("sqlite:///:memory:", tmp_path) is None
    conf = resolve_store({"server": {"mlflow_tracking_uri": "sqlite:///s/m.db"}}, tmp_path)
    assert conf["server"]["mlflow_tracking_uri"] == f"sqlite:///{tmp_path}/s/m.db"
    location = conf["tracking"]["experiment"]["create_experiment_kwargs"]["artifact_location"]
    assert location == str(tmp_path / "s" / "mlartifacts")


def test_a_tracking_server_keeps_its_own_artifact_location(tmp_path: Path) -> None:
    conf = {"server": {"mlflow_tracking_uri": "http://mlflow.example.com:5000"}}
    assert resolve_store(conf, tmp_path) == conf


def test_runs_table_shows_the_parameters_that_differ() -> None:
    runs = pd.DataFrame(
        {
            "tags.mlflow.runName": ["a", "b", "evaluate c"],
            "tags.run_kind": ["train", "train", "evaluate"],
            "tags.model_version": ["a", "b", "a"],
            "metrics.test.accuracy": [0.5, 0.6, 0.5],
            "params.training.epochs": ["1", "2", None],
            "params.seed": ["42", "42", None],
            "params.evaluate.batch_size": ["256", "256", "256"],
        }
    )
    table = runs_table(runs)
    assert list(table.columns) == ["kind", "model version", "test accuracy", "training.epochs"]
    assert table.loc["b", "training.epochs"] == "2"
    assert runs_table(pd.DataFrame()).empty


@pytest.mark.parametrize("env", ["base", "quick", "tuned", "test", "local"])
def test_every_environment_tracks_in_the_projects_own_store(env: str, tmp_path: Path) -> None:
    config_module = pytest.importorskip("kedro_mlflow.config.kedro_mlflow_config")
    loader = OmegaConfigLoader(
        str(REPO / "conf"), env=None if env == "base" else env, **CONFIG_LOADER_ARGS
    )
    conf = dict(loader["mlflow"])
    assert conf.pop("enabled") is True
    config = config_module.KedroMlflowConfig.model_validate(resolve_store(conf, tmp_path))
    assert config.server.mlflow_tracking_uri == f"sqlite:///{tmp_path}/mlflow.db"
    assert config.tracking.experiment.name == EXPERIMENT
    assert config.ui.host == "127.0.0.1"


# --- the hook, on small catalogs --------------------------------------------------------------


@pytest.fixture
def hook_with(tmp_path: Path):
    """A TrackingHook after the context of a project in tmp_path with this mlflow.yml."""
    pytest.importorskip("kedro_mlflow", reason="kedro-mlflow is a dependency of the project")

    def make(conf: dict) -> tuple[TrackingHook, SimpleNamespace]:
        context = SimpleNamespace(
            config_loader={"mlflow": conf},
            project_path=tmp_path,
            _get_config_credentials=dict,
        )
        hook = TrackingHook()
        hook.after_context_created(context)
        return hook, context

    return make


def _catalog(base_params: dict) -> DataCatalog:
    return DataCatalog(
        datasets={
            "parameters": MemoryDataset(base_params),
            "params:run_label": MemoryDataset(base_params["run_label"]),
        }
    )


def _run_params(**extra: object) -> dict:
    return {"run_id": "2026-03-01T00.00.00.000Z", "env": "unit", **extra}


STORE = {"enabled": True, "server": {"mlflow_tracking_uri": "sqlite:///mlflow.db"}}


@pytest.mark.parametrize(
    ("conf", "line"),
    [
        ({**STORE, "enabled": False}, "MLflow tracking is off: 'enabled: False' in mlflow.yml."),
        (
            {**STORE, "server": {"mlflow_tracking_url": "sqlite:///mlflow.db"}},
            "MLflow tracking is off: mlflow.yml is not valid (server.mlflow_tracking_url: "
            "Extra inputs are not permitted).",
        ),
        (
            {**STORE, "tracking": {"disable_tracking": {"pipelines": ["training"]}}},
            "MLflow tracking is off: tracking.disable_tracking.pipelines in mlflow.yml lists "
            "training.",
        ),
    ],
)
def test_tracking_switched_off_says_so_in_one_line_and_opens_no_store(
    hook_with, conf: dict, line: str, base_params: dict, tmp_path: Path, caplog
) -> None:
    hook, _ = hook_with(conf)
    with caplog.at_level(logging.INFO, logger="alexnet_cifar10.tracking"):
        hook.before_pipeline_run(
            _run_params(pipeline_names=["training"]),
            training.create_pipeline(),
            _catalog(base_params),
        )
        hook.after_pipeline_run({}, data_processing.create_pipeline(), _catalog(base_params))
    assert [record.getMessage() for record in caplog.records] == [line]
    assert not (tmp_path / "mlflow.db").exists()


def test_a_run_that_neither_trains_nor_evaluates_is_not_tracked(
    hook_with, base_params: dict, tmp_path: Path, caplog
) -> None:
    hook, context = hook_with(STORE)
    assert context.mlflow.server.mlflow_tracking_uri == f"sqlite:///{tmp_path}/mlflow.db"
    with caplog.at_level(logging.INFO, logger="alexnet_cifar10.tracking"):
        hook.before_pipeline_run(
            _run_params(), data_processing.create_pipeline(), _catalog(base_params)
        )
        hook.after_pipeline_run({}, data_processing.create_pipeline(), _catalog(base_params))
    assert caplog.records == []
    assert not (tmp_path / "mlflow.db").exists()


def test_a_corrupt_store_is_reported_in_one_line(
    hook_with, base_params: dict, tmp_path: Path, caplog
) -> None:
    (tmp_path / "mlflow.db").write_bytes(b"not a database" * 100)
    hook, _ = hook_with(STORE)
    with caplog.at_level(logging.INFO, logger="alexnet_cifar10.tracking"):
        catalog = _catalog(base_params)
        hook.before_pipeline_run(_run_params(), training.create_pipeline(), catalog)
        hook.on_pipeline_error(RuntimeError(), _run_params(), training.create_pipeline(), catalog)
    assert [record.getMessage() for record in caplog.records] == [
        f"Not tracked in MLflow: this run (sqlite:///{tmp_path}/mlflow.db: "
        "(sqlite3.DatabaseError) file is not a database). "
        "The run's versioned outputs are saved as usual."
    ]


# --- real runs, read back through MLflow's client --------------------------------------------


def _client(project: Path):
    mlflow = pytest.importorskip("mlflow", reason="MLflow is a dependency of the project")
    return mlflow.MlflowClient(f"sqlite:///{project / 'mlflow.db'}")


def _saved(project: Path, layer: str, name: str, version: str) -> Path:
    return project / "data" / layer / name / version / name


def _runs(client, **filters: str) -> list:
    experiment = client.get_experiment_by_name(EXPERIMENT)
    query = " and ".join(f"tags.{key} = '{value}'" for key, value in filters.items())
    return client.search_runs([experiment.experiment_id], query)


@pytest.mark.slow
def test_two_runs_started_together_are_two_mlflow_runs_with_their_own_records(
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
        copy = client.download_artifacts(run.info.run_id, "confusion_matrix.png", str(tmp_path))
        plot = _saved(project, "08_reporting", "confusion_matrix.png", version)
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
    assert artifacts == ARTIFACT_FILES - {"model_summary.csv"}


@pytest.mark.slow
def test_a_locked_store_costs_the_run_nothing_but_its_tracking(finished_project: Path) -> None:
    project = finished_project
    store = project / "mlflow.db"
    tracked_before = len(_runs(_client(project)))
    # Another process holds SQLite's write lock for the whole run.
    with sqlite3.connect(store, isolation_level=None) as lock:
        lock.execute("BEGIN EXCLUSIVE")
        result = kedro(project, "run", "--env", "test", "--pipelines", "training,evaluate")
        lock.execute("ROLLBACK")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "Traceback" not in output
    # The run's versions are all there: a second model, its history, metrics and plots.
    for layer, name in [
        ("06_models", "alexnet.keras"),
        ("07_model_output", "training_history.csv"),
        ("08_reporting", "test_metrics.json"),
        ("08_reporting", "confusion_matrix.png"),
    ]:
        assert len(versions(project, layer, name)) == 2, name
    [line] = [line for line in result.log.splitlines() if "Not tracked in MLflow" in line]
    assert line.endswith(
        f"WARNING - Not tracked in MLflow: this run (sqlite:///{store}: "
        "(sqlite3.OperationalError) database is locked). "
        "The run's versioned outputs are saved as usual."
    ), line
    assert len(_runs(_client(project))) == tracked_before, "a half-recorded run"


HIDE_MLFLOW = textwrap.dedent(
    """
    # As on a machine without MLflow: mlflow and kedro_mlflow cannot be imported, and their
    # distributions (so kedro-mlflow's entry points) are not found.
    import importlib.abc
    import importlib.metadata
    import re
    import sys

    def hidden(name):
        name = re.sub(r"[-_.]+", "_", name).lower()
        return name in ("mlflow", "kedro_mlflow") or name.startswith("mlflow_")

    class HideMlflow(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if hidden(name.split(".")[0]):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    sys.meta_path.insert(0, HideMlflow())
    discover = importlib.metadata.Distribution.discover.__func__

    def visible(cls, **kwargs):
        return (d for d in discover(cls, **kwargs) if not hidden(d.metadata["Name"] or ""))

    importlib.metadata.Distribution.discover = classmethod(visible)
    """
)


@pytest.mark.slow
def test_without_mlflow_the_pipelines_run_and_say_tracking_is_off(
    project: Path, tmp_path: Path
) -> None:
    (tmp_path / "no_mlflow").mkdir()
    (tmp_path / "no_mlflow" / "sitecustomize.py").write_text(HIDE_MLFLOW)
    result = kedro(project, "run", "--env", "test", env={"PYTHONPATH": str(tmp_path / "no_mlflow")})
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "Traceback" not in output
    off = [line for line in result.log.splitlines() if "tracking" in line.lower()]
    assert len(off) == 1 and off[0].endswith(
        "INFO - MLflow tracking is off: MLflow is not installed (pip install kedro-mlflow)."
    ), off
    assert len(versions(project, "06_models", "alexnet.keras")) == 1
    assert len(versions(project, "08_reporting", "test_metrics.json")) == 1
    assert not (project / "mlflow.db").exists()
