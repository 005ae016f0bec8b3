"""What the project adds to kedro-mlflow's tracking, on MLflow's and Kedro's public APIs.

kedro-mlflow's own hook (registered by the plugin, configured in ``conf/*/mlflow.yml``)
starts the MLflow run, logs the parameters the nodes read and Kedro's tags, and ends the
run; its ``MlflowMetricsHistoryDataset``s in the catalog log the metric histories, and
``datasets.ServedModelDataset`` logs the served model. ``TrackingHook`` adds:

- the run's name (its save version) and tags read from the card of the model it trained
  or evaluated (``LABELS``, ``run_kind``); an evaluate-only run filed under the run that
  trained its model;
- the reports whose catalog entry says ``metadata: {mlflow: artifact}``, copied into the
  run as they are saved (kedro-mlflow's ``MlflowArtifactDataset`` cannot wrap a versioned
  dataset in Kedro 1.7, and the reports stay catalog versions);
- the run's datasets log into it from any thread (``--async``) or process (ParallelRunner);
- a run stopped by Ctrl-C or SIGTERM is recorded KILLED, not FINISHED;
- only process 0 of a multi-process run records.
"""

from __future__ import annotations

import atexit
import logging
import os
from typing import Any

import mlflow
import pandas as pd
from kedro.framework.hooks import hook_impl
from kedro.framework.project import pipelines
from kedro.pipeline import Pipeline

from alexnet_cifar10.distribution import cluster
from alexnet_cifar10.provenance import LABELS

logger = logging.getLogger(__name__)

MODEL = "model"
# MLflow's own variable: a process's first start_run resumes the run it names (Kedro's
# ParallelRunner workers), and the project's datasets log into it.
RUN_ID = "MLFLOW_RUN_ID"


def runs_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Tracked runs side by side, from ``mlflow.search_runs``: kind, model version, test
    accuracy and the parameters whose values differ between the runs that read them."""
    columns = {
        "tags.mlflow.runName": "run",
        "tags.run_kind": "kind",
        "tags.model_version": "model version",
        "metrics.test.accuracy": "test accuracy",
    }
    table = runs.reindex(columns=list(columns)).rename(columns=columns)
    params = runs.filter(regex=r"^params\.")
    differ = [name for name in params if params[name].dropna().nunique() > 1]
    table[[name.removeprefix("params.") for name in differ]] = params[differ]
    return table.set_index("run")


def _labels(catalog: Any, version: str | None) -> dict[str, str]:
    """The labels of a model version, from its own card (read without the network)."""
    card = catalog.get(MODEL).read_card(version) if version else None
    return {key: str(card[key]) for key in LABELS if key in (card or {})}


class TrackingHook:
    """Names, tags and closes the MLflow run that kedro-mlflow's hook opened, and copies
    the catalog's artifact reports into it (see the module's docstring)."""

    def __init__(self) -> None:
        self._run_id: str | None = None
        self._catalog: Any = None

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        """In processes other than 0 of a multi-process run, kedro-mlflow records no
        pipeline (its published configuration, ``context.mlflow``)."""
        tracking = getattr(context, "mlflow", None)
        if tracking is not None and cluster().index:
            tracking.tracking.disable_tracking.pipelines = sorted(pipelines)

    @hook_impl(trylast=True)  # after kedro-mlflow's hook has started the run
    def before_pipeline_run(self, run_params: dict, pipeline: Pipeline, catalog: Any) -> None:
        """Name and tag the run; point the run's datasets, in any thread, at it."""
        run = mlflow.active_run()
        if run is None:  # tracking is off for these pipelines
            return
        self._run_id, self._catalog = run.info.run_id, catalog
        client = mlflow.MlflowClient()
        trains = MODEL in pipeline.all_outputs()
        client.update_run(self._run_id, name=("" if trains else "evaluate ") + run_params["run_id"])
        tags = {"run_kind": "train" if trains else "evaluate"}
        if not trains and MODEL in pipeline.inputs():
            tags |= _labels(catalog, catalog.get(MODEL).resolve_load_version())
            parent = client.search_runs(
                [run.info.experiment_id],
                f"tags.model_version = '{tags.get('model_version')}' and tags.run_kind = 'train'",
                max_results=1,
            )
            if parent:
                tags["mlflow.parentRunId"] = parent[0].info.run_id
        for key, value in tags.items():
            client.set_tag(self._run_id, key, value)
        os.environ[RUN_ID] = self._run_id
        # MLflow's active run is per thread: with --async the saves run in other threads.
        for name in pipeline.all_outputs():
            if hasattr(dataset := catalog.get(name), "run_id"):
                dataset.run_id = self._run_id
        atexit.register(self._close, "KILLED")
        logger.info(
            "Tracking this run in MLflow: run '%s' of experiment '%s' in %s",
            run_params["run_id"],
            client.get_experiment(run.info.experiment_id).name,
            mlflow.get_tracking_uri(),
        )

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any) -> None:
        """Copy a report the catalog marks ``metadata: {mlflow: artifact}`` into the run."""
        if self._run_id is None:
            return
        dataset = self._catalog.get(dataset_name)
        if (getattr(dataset, "metadata", None) or {}).get("mlflow") != "artifact":
            return
        path = dataset.path_of(dataset.resolve_save_version())
        mlflow.MlflowClient().log_artifact(self._run_id, path)

    @hook_impl(trylast=True)  # after kedro-mlflow's hook has ended the run
    def after_pipeline_run(self, pipeline: Pipeline, catalog: Any) -> None:
        """Tag a training run with its saved model's labels; close what is left open."""
        if self._run_id is None:
            return
        if MODEL in pipeline.all_outputs():
            client = mlflow.MlflowClient()
            for key, value in _labels(catalog, catalog.get(MODEL).resolve_save_version()).items():
                client.set_tag(self._run_id, key, value)
        self._close("FINISHED")

    @hook_impl(trylast=True)
    def on_pipeline_error(self) -> None:
        """Close the failed run (kedro-mlflow marks it FAILED)."""
        self._close("FAILED")

    def _close(self, status: str) -> None:
        """End the run with ``status`` if it is still open; kedro-mlflow's hook leaves a
        copy of it on this thread's stack for every node it logged parameters for."""
        if self._run_id is None:
            return
        atexit.unregister(self._close)
        while mlflow.active_run():
            mlflow.end_run(status)
        client = mlflow.MlflowClient()
        if client.get_run(self._run_id).info.status == "RUNNING":
            client.set_terminated(self._run_id, status)
        if status == "KILLED":
            logger.warning("MLflow run %s recorded as KILLED: the run was stopped.", self._run_id)
        os.environ.pop(RUN_ID, None)
        self._run_id = self._catalog = None
