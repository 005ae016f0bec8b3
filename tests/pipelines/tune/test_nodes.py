"""The tune pipeline's nodes on tiny synthetic splits: trials, resume, failures, reports."""

from __future__ import annotations

from pathlib import Path

import mlflow
import optuna
import pytest
from synthetic_cifar import CLASS_NAMES, make_split

from alexnet_cifar10.pipelines.training.nodes import TrainingDivergedError
from alexnet_cifar10.pipelines.tune import study as studies
from alexnet_cifar10.pipelines.tune.nodes import best_parameters, run_study, trials_table

CONTEXT = {"kedro_env": "test"}


def _run(tiny_training: dict, tune: dict) -> optuna.Study:
    splits = make_split(48, seed=1), make_split(16, seed=2)
    return run_study(*splits, tiny_training, tune, 0, CLASS_NAMES, "tune test", CONTEXT)


def test_a_rerun_continues_the_study(tiny_training: dict, tune: dict) -> None:
    _run(tiny_training, tune)
    study = _run(tiny_training, tune)
    table = trials_table(study)
    assert table["number"].tolist() == [0, 1, 2, 3]
    assert table["state"].tolist() == ["complete"] * 4
    assert table["epochs_run"].tolist() == [2] * 4
    assert table["val_accuracy"].between(0, 1).all()
    # Every trial's values lie in the search space; the objective is validation accuracy.
    assert table["params_batch_size"].isin([8, 16]).all()
    assert table["params_model.dropout"].between(0.1, 0.5).all()


def test_best_parameters_are_a_run_configuration_of_the_best_trial(
    tiny_training: dict, tune: dict
) -> None:
    study = _run(tiny_training, tune)
    best = study.best_trial
    configuration = best_parameters(study)
    assert configuration["run"] == {
        "env": "test",
        "params": {
            "training": {
                "optimizer": {"learning_rate": best.params["optimizer.learning_rate"]},
                "batch_size": best.params["batch_size"],
                "model": {"dropout": best.params["model.dropout"]},
            }
        },
    }
    assert configuration["study"] == {
        "name": tune["study_name"],
        "trial": best.number,
        "val_accuracy": best.value,
        "epochs": 2,
    }


def test_a_study_without_a_completed_trial_has_no_best_parameters() -> None:
    with pytest.raises(studies.StudyError, match=r"No trial of study 'empty' has completed \(0"):
        best_parameters(optuna.create_study(study_name="empty", direction="maximize"))


def test_a_diverged_trial_fails_and_the_study_goes_on(
    tiny_training: dict, tune: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    train_model = studies.train_model
    calls = []

    def diverge_once(*args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == 1:
            raise TrainingDivergedError("Training diverged: the loss became NaN")
        return train_model(*args, **kwargs)

    monkeypatch.setattr(studies, "train_model", diverge_once)
    assert trials_table(_run(tiny_training, tune))["state"].tolist() == ["fail", "complete"]


def test_a_stopped_worker_records_its_trial_as_failed(
    tiny_training: dict, tune: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    def stopped(*args: object, **kwargs: object) -> None:
        raise SystemExit(143)  # what the project's SIGTERM handler raises

    monkeypatch.setattr(studies, "train_model", stopped)
    with pytest.raises(SystemExit):
        _run(tiny_training, tune)
    study = optuna.load_study(study_name=tune["study_name"], storage=tune["storage"])
    assert [trial.state.name for trial in study.trials] == ["FAIL"]


def test_an_unreachable_database_is_one_line(tune: dict) -> None:
    tune = {**tune, "storage": "postgresql://nobody@127.0.0.1:9/optuna"}
    with pytest.raises(studies.StudyError) as error:
        studies.open_study(tune)
    message = str(error.value)
    assert message.startswith("Cannot open the study's storage postgresql://nobody@127.0.0.1:9/")
    assert "\n" not in message


@pytest.mark.slow
def test_each_trial_is_a_nested_mlflow_run(tiny_training: dict, tune: dict, tmp_path: Path) -> None:
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    try:
        with mlflow.start_run() as parent:
            _run(tiny_training, {**tune, "pruner": {**tune["pruner"], "name": "median"}})
        client = mlflow.MlflowClient()
        children = client.search_runs(
            [parent.info.experiment_id],
            f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
            order_by=["attributes.start_time ASC"],
        )
    finally:
        mlflow.set_tracking_uri(None)
    assert [run.info.run_name for run in children] == ["trial 0", "trial 1"]
    for child in children:
        assert child.info.status == "FINISHED"
        assert child.data.tags["optuna.state"] == "complete"
        assert set(child.data.params) == set(tune["search_space"])
        history = client.get_metric_history(child.info.run_id, "val_accuracy")
        assert [point.step for point in history] == [1, 2]
