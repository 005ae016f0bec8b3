"""What a trial adds to the training node's fit: pruning, and its own MLflow run."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import keras
import mlflow
import optuna
from mlflow.entities import Metric, Param

from alexnet_cifar10.datasets.atomic import HOST


class TrialPruning(keras.callbacks.Callback):
    """Reports ``monitor`` to the trial after every epoch and stops the fit when the
    study's pruner says the trial is behind; ``pruned_at`` is then that epoch."""

    def __init__(self, trial: optuna.Trial, monitor: str) -> None:
        super().__init__()
        self.trial, self.monitor = trial, monitor
        self.pruned_at: int | None = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.trial.report(float((logs or {})[self.monitor]), step=epoch + 1)
        if self.trial.should_prune():
            self.pruned_at = epoch + 1
            self.model.stop_training = True


class EpochMetrics(keras.callbacks.Callback):
    """Logs every epoch's metrics into one MLflow run, by its id (any thread)."""

    def __init__(self, client: mlflow.MlflowClient, run_id: str) -> None:
        super().__init__()
        self.client, self.run_id = client, run_id

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, epoch + 1) for k, v in (logs or {}).items()]
        self.client.log_batch(self.run_id, metrics=metrics)


@contextmanager
def nested_run(trial: optuna.Trial, values: Mapping[str, Any]) -> Iterator[list[EpochMetrics]]:
    """Inside a tracked run (kedro-mlflow's), record the trial as a child run: its
    parameters, its epochs' metrics (the callbacks yielded) and its state. Outside one,
    yield no callbacks."""
    parent = mlflow.active_run()
    if parent is None:
        yield []
        return
    client = mlflow.MlflowClient()
    tags = {
        "mlflow.parentRunId": parent.info.run_id,
        # A later run of this machine records the run KILLED if this process is killed.
        "process": f"{HOST}:{os.getpid()}",
        "optuna.study": trial.study.study_name,
        "optuna.trial": str(trial.number),
    }
    run = client.create_run(parent.info.experiment_id, tags=tags, run_name=f"trial {trial.number}")
    run_id = run.info.run_id
    client.log_batch(run_id, params=[Param(key, str(value)) for key, value in values.items()])
    trial.set_user_attr("mlflow_run_id", run_id)
    state, status = "failed", "FAILED"
    try:
        yield [EpochMetrics(client, run_id)]
        state, status = "complete", "FINISHED"
    except optuna.TrialPruned:
        state, status = "pruned", "FINISHED"
        raise
    except Exception:
        raise
    except BaseException:  # Ctrl-C, SIGTERM: the worker stops
        status = "KILLED"
        raise
    finally:
        client.set_tag(run_id, "optuna.state", state)
        client.set_terminated(run_id, status)
