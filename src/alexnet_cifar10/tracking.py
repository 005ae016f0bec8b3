"""What the project adds to kedro-mlflow's record of a run, on MLflow's public client.

kedro-mlflow's hook (registered by the plugin, configured in ``conf/*/mlflow.yml``) starts
the run, logs the parameters the nodes read and ends the run; the catalog's kedro-mlflow
datasets log the metric histories. ``TrackingHook`` names the run by its save version,
tags it from the card of the model it trained or evaluated (an evaluate-only run is filed
under the run that trained its model), copies in the reports whose catalog entry says
``metadata: {mlflow: artifact}``, points the run's datasets at it from any thread or
process, and records a run stopped by Ctrl-C or SIGTERM as KILLED.
"""

from __future__ import annotations

import atexit
import logging
import os
from typing import Any

import mlflow
from kedro.framework.hooks import hook_impl
from kedro.framework.project import pipelines
from kedro.pipeline import Pipeline

from alexnet_cifar10.datasets.atomic import HOST, running
from alexnet_cifar10.distribution import cluster
from alexnet_cifar10.provenance import LABELS

logger = logging.getLogger(__name__)

MODEL = "model"


def _labels(catalog: Any, version: str | None) -> dict[str, str]:
    """The labels of a model version, from its own card (read without the network)."""
    card = catalog.get(MODEL).read_card(version) if version else None
    return {key: str(card[key]) for key in LABELS if key in (card or {})}


def _close_runs_of_killed_processes(client: mlflow.MlflowClient, experiment_id: str) -> None:
    """Record as KILLED the runs left RUNNING by processes of this machine that no longer
    run (kill -9, a lost machine: no code of theirs could end the run)."""
    query = f"attributes.status = 'RUNNING' and tags.process LIKE '{HOST}:%'"
    for run in client.search_runs([experiment_id], query):
        pid = run.data.tags["process"].rpartition(":")[2]
        if pid.isdigit() and not running(int(pid)):
            client.set_terminated(run.info.run_id, "KILLED")
            logger.warning(
                "MLflow run %s was left RUNNING by process %s, which no longer runs: "
                "recorded KILLED.",
                run.info.run_id,
                pid,
            )


class TrackingHook:
    """Names, tags and closes the MLflow run that kedro-mlflow's hook opened."""

    def __init__(self) -> None:
        self._run_id: str | None = None
        self._catalog: Any = None

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        """Processes other than 0 of a multi-process run record nothing (kedro-mlflow's
        published configuration, ``context.mlflow``)."""
        if (tracking := getattr(context, "mlflow", None)) is not None and cluster().index:
            tracking.tracking.disable_tracking.pipelines = sorted(pipelines)

    @hook_impl(trylast=True)  # after kedro-mlflow's hook has started the run
    def before_pipeline_run(self, run_params: dict, pipeline: Pipeline, catalog: Any) -> None:
        """Name and tag the run; point the run's datasets, in any thread, at it."""
        if (run := mlflow.active_run()) is None:  # tracking is off for these pipelines
            return
        self._run_id, self._catalog = run.info.run_id, catalog
        client = mlflow.MlflowClient()
        trains = MODEL in pipeline.all_outputs()
        client.update_run(self._run_id, name=("" if trains else "evaluate ") + run_params["run_id"])
        _close_runs_of_killed_processes(client, run.info.experiment_id)
        # Which process records the run: a later run closes it if that process was killed.
        tags = {"run_kind": "train" if trains else "evaluate", "process": f"{HOST}:{os.getpid()}"}
        if not trains and MODEL in pipeline.inputs():
            tags |= _labels(catalog, catalog.get(MODEL).resolve_load_version())
            version = tags.get("model_version")
            query = f"tags.model_version = '{version}' and tags.run_kind = 'train'"
            if parent := client.search_runs([run.info.experiment_id], query, max_results=1):
                tags["mlflow.parentRunId"] = parent[0].info.run_id
        for key, value in tags.items():
            client.set_tag(self._run_id, key, value)
        # MLflow's own variable: ParallelRunner's worker processes resume this run.
        os.environ["MLFLOW_RUN_ID"] = self._run_id
        # MLflow's active run is per thread: with --async the saves run in other threads.
        for name in pipeline.all_outputs():
            if hasattr(dataset := catalog.get(name), "run_id"):
                dataset.run_id = self._run_id
        atexit.register(self._close, "KILLED")
        experiment = client.get_experiment(run.info.experiment_id).name
        logger.info(
            "Tracking this run in MLflow: run '%s' of experiment '%s' in %s",
            run_params["run_id"],
            experiment,
            mlflow.get_tracking_uri(),
        )

    @hook_impl
    def after_dataset_saved(self, dataset_name: str) -> None:
        """Copy a report the catalog marks ``metadata: {mlflow: artifact}`` into the run."""
        if self._run_id is None:
            return
        dataset = self._catalog.get(dataset_name)
        if (getattr(dataset, "metadata", None) or {}).get("mlflow") == "artifact":
            path = dataset.path_of(dataset.resolve_save_version())
            mlflow.MlflowClient().log_artifact(self._run_id, path)

    @hook_impl(trylast=True)  # after kedro-mlflow's hook has ended the run
    def after_pipeline_run(self, pipeline: Pipeline, catalog: Any) -> None:
        """Tag a training run with its saved model's labels; close what is left open."""
        if self._run_id is not None and MODEL in pipeline.all_outputs():
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
        os.environ.pop("MLFLOW_RUN_ID", None)
        self._run_id = self._catalog = None
