"""What the project adds to kedro-mlflow's record of a run, on MLflow's public client.

kedro-mlflow's hook (registered by the plugin, configured in ``conf/*/mlflow.yml``) starts
the run, logs the parameters the nodes read and ends the run; the catalog's kedro-mlflow
datasets log the metric histories. ``TrackingHook`` names the run by its save version,
tags it from the card of the model it trained or evaluated (an evaluate-only run is filed
under the run that trained its model), copies in the reports whose catalog entry says
``metadata: {mlflow: artifact}``, points the run's datasets at it from any thread or
process, and records a run stopped by Ctrl-C or SIGTERM as KILLED. ``TrackingGuard``
turns a tracking failure (a store that is locked, full or gone) into one line: the run goes
on untracked.
"""

from __future__ import annotations

import atexit
import logging
import os
import tempfile
from collections.abc import Callable, Generator
from typing import Any

import mlflow
from kedro.framework.hooks import hook_impl
from kedro.framework.project import pipelines
from kedro.pipeline import Pipeline
from kedro_mlflow.io.catalog.switch_catalog_logging import switch_catalog_logging
from mlflow.exceptions import MlflowException

from alexnet_cifar10.datasets.atomic import HOST, running
from alexnet_cifar10.datasets.served_model_dataset import ServedModelDataset
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


def _records_in_mlflow(dataset: Any) -> bool:
    """Whether saving ``dataset`` writes into MLflow: kedro-mlflow's datasets, the served
    model."""
    return type(dataset).__module__.startswith("kedro_mlflow") or isinstance(
        dataset, ServedModelDataset
    )


class TrackingGuard:
    """A tracking failure costs only the tracking. Wraps the tracking hooks (pluggy's
    ``wrapper=True``): at the run's first ``MlflowException`` it logs one line, the run's
    outputs that would be written into MLflow are no longer written there, and the calls
    that kedro-mlflow's hook still makes before every node go to a scratch store that
    answers at once (a locked SQLite store makes each call wait 20 s before it fails)."""

    def __init__(self, close: Callable[[str], None]) -> None:
        self.failure: str | None = None
        self._close = close  # TrackingHook's, which kedro-mlflow's failure would skip
        self._catalog: Any = None
        self._tracked: list[str] = []
        self._store: str | None = None
        self._scratch: tempfile.TemporaryDirectory | None = None

    def lose(self, error: MlflowException, where: str) -> None:
        """Give up this run's tracking after its first failure."""
        if self.failure is not None:
            return
        self.failure = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
        logger.warning(
            "MLflow could not record %s (%s): the run goes on untracked, its outputs are "
            "saved as usual.",
            where,
            self.failure,
        )
        if self._catalog is not None:
            switch_catalog_logging(self._catalog, False)  # kedro-mlflow's datasets
            for name in self._tracked:
                if isinstance(dataset := self._catalog.get(name), ServedModelDataset):
                    dataset.run_id = None  # where the run is not tracked it logs nothing
        self._store, self._scratch = mlflow.get_tracking_uri(), tempfile.TemporaryDirectory()
        mlflow.set_tracking_uri(f"sqlite:///{self._scratch.name}/scratch.db")

    def restore(self) -> None:
        """Point MLflow at the run's own store again."""
        if self._scratch is not None:
            mlflow.set_tracking_uri(self._store)
            self._scratch.cleanup()
            self._scratch = None

    def _guarded(self, where: str, closing: str | None = None) -> Generator[None, Any, Any]:
        try:
            return (yield)
        except MlflowException as error:
            self.lose(error, where)
            return []
        finally:
            if closing:
                self._close(closing)
                self.restore()

    @hook_impl(wrapper=True)
    def before_pipeline_run(self, pipeline: Pipeline, catalog: Any) -> Generator[None, Any, Any]:
        self.failure, self._catalog = None, catalog
        self._tracked = [n for n in pipeline.all_outputs() if _records_in_mlflow(catalog.get(n))]
        return (yield from self._guarded("the start of the run"))

    @hook_impl(wrapper=True)
    def before_node_run(self, node: Any) -> Generator[None, Any, Any]:
        return (yield from self._guarded(f"the parameters of node {node.name}"))

    @hook_impl(wrapper=True)
    def before_dataset_saved(self, dataset_name: str) -> Generator[None, Any, Any]:
        """Before an output is written into MLflow, ask the store whether it still
        records: the output's failed save would fail its node."""
        if self.failure is None and dataset_name in self._tracked:
            try:
                if run := mlflow.active_run():
                    mlflow.MlflowClient().get_run(run.info.run_id)
            except MlflowException as error:
                self.lose(error, dataset_name)
        return (yield from self._guarded(dataset_name))

    @hook_impl(wrapper=True)
    def after_dataset_saved(self, dataset_name: str) -> Generator[None, Any, Any]:
        return (yield from self._guarded(f"the artifact {dataset_name}"))

    @hook_impl(wrapper=True)
    def after_pipeline_run(self) -> Generator[None, Any, Any]:
        return (yield from self._guarded("the end of the run", closing="FINISHED"))

    @hook_impl(wrapper=True)
    def on_pipeline_error(self) -> Generator[None, Any, Any]:
        return (yield from self._guarded("the failure of the run", closing="FAILED"))


class TrackingHook:
    """Names, tags and closes the MLflow run that kedro-mlflow's hook opened."""

    def __init__(self) -> None:
        self._run_id: str | None = None
        self._catalog: Any = None
        self.guard = TrackingGuard(self._close)

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
        kind = "train" if trains else "tune" if "study" in pipeline.all_outputs() else "evaluate"
        client.update_run(self._run_id, name=("" if trains else f"{kind} ") + run_params["run_id"])
        _close_runs_of_killed_processes(client, run.info.experiment_id)
        # Which process records the run: a later run closes it if that process was killed.
        tags = {"run_kind": kind, "process": f"{HOST}:{os.getpid()}"}
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
        if self._run_id is None or self.guard.failure:
            return
        dataset = self._catalog.get(dataset_name)
        if (getattr(dataset, "metadata", None) or {}).get("mlflow") == "artifact":
            path = dataset.path_of(dataset.resolve_save_version())
            mlflow.MlflowClient().log_artifact(self._run_id, path)

    @hook_impl(trylast=True)  # after kedro-mlflow's hook has ended the run
    def after_pipeline_run(self, pipeline: Pipeline, catalog: Any) -> None:
        """Tag a training run with its saved model's labels; close what is left open."""
        if self._run_id is not None and not self.guard.failure and MODEL in pipeline.all_outputs():
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
        self.guard.restore()
        try:
            self._end(status)
        except MlflowException:
            logger.warning(
                "MLflow run %s could not be closed: it stays RUNNING until the next tracked "
                "run on this machine records it KILLED.",
                self._run_id,
            )
        os.environ.pop("MLFLOW_RUN_ID", None)
        self._run_id = self._catalog = None

    def _end(self, status: str) -> None:
        """End the run on its store, saying so if its record is incomplete."""
        client = mlflow.MlflowClient()
        if self.guard.failure:
            client.set_tag(self._run_id, "tracking", f"incomplete: {self.guard.failure}")
        while mlflow.active_run():
            mlflow.end_run(status)
        if client.get_run(self._run_id).info.status == "RUNNING":
            client.set_terminated(self._run_id, status)
        if status == "KILLED":
            logger.warning("MLflow run %s recorded as KILLED: the run was stopped.", self._run_id)
