"""Experiment tracking on kedro-mlflow: every run that trains or evaluates a model is one
MLflow run.

The plugin does the recording: its configuration (``conf/*/mlflow.yml``), its hook (the
run, Kedro's tags and command, one parameter per key the nodes read, the run's end) and
its datasets, declared in the catalog: ``MlflowArtifactDataset`` around the versioned
reports, ``MlflowRunMetricsDataset`` for the metric histories. ``TrackingHook`` subclasses
the plugin's hook only where this project needs more; each override says what and why.
A training run also logs its served model (``serving.py``: the ONNX network with the predict
path), registered as a new version of ``alexnet_cifar10``; the Keras archive stays a
catalog version, named by the run's ``model_version`` tag.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import nullcontext, suppress
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from filelock import FileLock
from kedro.config import MissingConfigException
from kedro.framework.hooks import hook_impl
from kedro.io import SharedMemoryDataCatalog
from kedro.pipeline import Pipeline
from kedro_mlflow.config.kedro_mlflow_config import KedroMlflowConfig
from kedro_mlflow.framework.hooks.mlflow_hook import MlflowHook
from kedro_mlflow.io.catalog.switch_catalog_logging import switch_catalog_logging

from alexnet_cifar10.distribution import cluster
from alexnet_cifar10.provenance import LABELS
from alexnet_cifar10.untracked import MODEL, logger, tracked, untrack

# The project's own key in mlflow.yml: kedro-mlflow's schema has no off switch.
SWITCH = "enabled"
# Artifacts of a local SQLite store go to this folder beside the database.
ARTIFACT_FOLDER = "mlartifacts"
_SQLITE = "sqlite:///"
# MLflow's own variable: the first start_run of a process resumes the run it names.
_RUN_ID = "MLFLOW_RUN_ID"


def store_path(uri: str | None, project_path: Path) -> Path | None:
    """The database file of a local SQLite tracking URI, a relative path being taken from
    the project root (MLflow would take it from the current directory); None otherwise."""
    if not uri or not uri.startswith(_SQLITE):
        return None
    path = uri[len(_SQLITE) :].partition("?")[0]
    return None if not path or path.startswith(":memory:") else project_path / path


def resolve_store(conf: dict[str, Any], project_path: Path) -> dict[str, Any]:
    """mlflow.yml with a local SQLite store anchored at the project root, and the
    experiment's artifacts beside the database unless set."""
    server = dict(conf.get("server") or {})
    database = store_path(server.get("mlflow_tracking_uri"), project_path)
    if database is None:
        return conf
    query = server["mlflow_tracking_uri"].partition("?")[2]
    server["mlflow_tracking_uri"] = _SQLITE + str(database) + (f"?{query}" if query else "")
    tracking = dict(conf.get("tracking") or {})
    experiment = dict(tracking.get("experiment") or {})
    create = dict(experiment.get("create_experiment_kwargs") or {})
    if create.get("artifact_location") is None:
        create["artifact_location"] = str(database.parent / ARTIFACT_FOLDER)
    tracking["experiment"] = {**experiment, "create_experiment_kwargs": create}
    return {**conf, "server": server, "tracking": tracking}


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


def _one_line(error: BaseException) -> str:
    """An error's first line (SQLAlchemy adds the statement and a link below it)."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


class TrackingHook(MlflowHook):
    """kedro-mlflow's hook, with what the project adds to it:

    - the store opens only when a run that trains or evaluates starts (the plugin opens
      it for every command, ``kedro viz`` included), after a lock when it is created;
    - a locked, read-only or corrupt store costs the run nothing but its tracking, and
      the run ends with one line that says so (with the plugin the run stops);
    - a relative ``sqlite:///`` path is taken from the project root, not the current
      directory, and ``enabled: false`` in mlflow.yml switches tracking off;
    - the run is named by its save version and tagged with the labels (``LABELS``) of
      the model it trained or evaluated, read from that model's card; an evaluate-only
      run is filed under the run that trained its model;
    - only process 0 of a multi-process run records; threads (``--async``,
      ThreadRunner) and ParallelRunner's processes record into the same run.
    """

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        """Read and check mlflow.yml, publish it as ``context.mlflow`` (read by ``kedro
        mlflow ui``); the plugin's version would open the store here."""
        self._context, self._already_active_mlflow, self.run_id = context, False, None
        self._failure, self._catalog = None, None
        try:
            conf = dict(context.config_loader["mlflow"])
        except MissingConfigException:
            conf = {}
        enabled = conf.pop(SWITCH, True)
        self._off = None if enabled is True else f"'{SWITCH}: {enabled}' in mlflow.yml"
        try:
            self.mlflow_config = KedroMlflowConfig.model_validate(
                resolve_store(conf, Path(context.project_path))
            )
        except ValueError as error:  # pydantic's ValidationError
            first = error.errors()[0] if hasattr(error, "errors") else None
            problem = f"{'.'.join(map(str, first['loc']))}: {first['msg']}" if first else error
            self._off = f"mlflow.yml is not valid ({problem})"
            return
        context.mlflow = self.mlflow_config
        self._run_name = self.mlflow_config.tracking.run.name

    @hook_impl
    def after_catalog_created(  # noqa: PLR0913
        self,
        catalog: Any,
        conf_catalog: dict,
        conf_creds: dict,
        parameters: dict,
        save_version: str,
        load_versions: dict,
    ) -> None:
        """Where tracking is off, or under ParallelRunner, the datasets that kedro-mlflow's
        wrap; then the plugin's own naming of metric datasets."""
        # ParallelRunner's processes receive the catalog pickled, and kedro-mlflow's
        # artifact datasets are classes made at run time, which do not pickle.
        if self._off or isinstance(catalog, SharedMemoryDataCatalog):
            untrack(catalog, conf_catalog, save_version, load_versions, not self._off)
        super().after_catalog_created(
            catalog, conf_catalog, conf_creds, parameters, save_version, load_versions
        )

    @hook_impl(trylast=True)  # after the other hooks' checks
    def before_pipeline_run(self, run_params: dict, pipeline: Pipeline, catalog: Any) -> None:
        """Start an MLflow run if this run trains or evaluates a model in process 0."""
        self.run_id, self._failure, self._catalog = None, None, catalog
        self._is_mlflow_enabled = False
        if not tracked(pipeline):
            return switch_catalog_logging(catalog, False)
        where = cluster()
        names = run_params.get("pipeline_names") or ["__default__"]
        off = self._off or (
            f"process 0 of {where.processes} records this run" if where.index else None
        )
        if off is None and set(names) <= set(
            self.mlflow_config.tracking.disable_tracking.pipelines
        ):
            off = f"tracking.disable_tracking.pipelines in mlflow.yml lists {', '.join(names)}"
        if off is not None:
            logger.info("MLflow tracking is off: %s.", off)
            return switch_catalog_logging(catalog, False)
        self._guard("this run", lambda: self._start(run_params, pipeline, catalog))
        return None

    def _start(self, run_params: dict, pipeline: Pipeline, catalog: Any) -> None:
        server = self.mlflow_config.server
        database = store_path(server.mlflow_tracking_uri, Path(self._context.project_path))
        # MLflow creates a new database's tables with no lock between processes: two runs
        # starting together would both create them.
        with FileLock(f"{database}.lock", timeout=120) if database else nullcontext():
            self.mlflow_config.setup(self._context)
        trains = MODEL in pipeline.all_outputs()
        self.mlflow_config.tracking.run.name = self._run_name or (
            ("" if trains else "evaluate ") + run_params["run_id"]
        )
        super().before_pipeline_run(run_params, pipeline, catalog)
        # kedro-mlflow's datasets log to the run they name, from any thread or process:
        # MLflow's active run is per thread, and it reads MLFLOW_RUN_ID once.
        for _, dataset in catalog.items():
            if getattr(dataset, "_logging_activated", None) is not None:
                dataset.run_id = self.run_id
        # ParallelRunner's processes start without the project's settings (Kedro 1.7), so
        # kedro-mlflow's own hook runs there; this keeps what it logs in this run.
        os.environ[_RUN_ID] = self.run_id
        tags = {"run_kind": "train" if trains else "evaluate"}
        if not trains:
            tags |= self._model_tags(catalog.get(MODEL).resolve_load_version())
            parent = mlflow.search_runs(
                filter_string=f"tags.model_version = '{tags['model_version']}' "
                "and tags.run_kind = 'train'",
                max_results=1,
                output_format="list",
            )
            if parent:
                tags["mlflow.parentRunId"] = parent[0].info.run_id
        mlflow.set_tags(tags)
        # Every node's parameters now, with the plugin's flattening and checks: per node
        # (as the plugin does) they would miss ParallelRunner's processes.
        for node in pipeline.nodes:
            params = [name for name in node.inputs if name.startswith("params:")]
            inputs = {name: catalog.load(name) for name in params}
            super().before_node_run(node, catalog, inputs, False)
        logger.info(
            "Tracking this run in MLflow: run '%s' of experiment '%s' in %s",
            self.mlflow_config.tracking.run.name,
            self.mlflow_config.tracking.experiment.name,
            server.mlflow_tracking_uri,
        )

    def _model_tags(self, version: str) -> dict[str, str]:
        """The labels of a model version, from its own card (read without the network);
        none if the run saved no model (``--only-missing-outputs``, say)."""
        card = self._catalog.get(MODEL).read_card(version) or {}
        return {key: str(card[key]) for key in LABELS if key in card}

    def _guard(self, what: str, action: Callable[[], Any]) -> None:
        """Run ``action`` against the store; on its first failure, stop tracking."""
        if self._failure is not None or self.run_id is None and what != "this run":
            return
        try:
            action()
        # Whatever the store, its driver or the network raises: tracking comes second to
        # the run and its versioned outputs.
        except Exception as error:
            self._failure = (
                f"{what} ({self.mlflow_config.server.mlflow_tracking_uri}: {_one_line(error)})"
            )
            switch_catalog_logging(self._catalog, False)
            # A run the store took before it failed is not left open.
            with suppress(Exception):
                if mlflow.active_run():
                    mlflow.end_run("FAILED")

    @hook_impl
    def before_node_run(self) -> None:
        """Nothing per node: the parameters are logged as the run starts, and the
        datasets name the run they log to."""

    @hook_impl
    def after_pipeline_run(self, run_params: dict, pipeline: Pipeline, catalog: Any) -> None:
        """Tag a training run with its saved model's labels, then end the MLflow run."""
        if MODEL in pipeline.all_outputs():
            self._guard(
                "the model's labels",
                lambda: mlflow.set_tags(
                    self._model_tags(catalog.get(MODEL).resolve_save_version())
                ),
            )
        self._end(
            lambda: super(TrackingHook, self).after_pipeline_run(run_params, pipeline, catalog)
        )

    @hook_impl
    def on_pipeline_error(
        self, error: Exception, run_params: dict, pipeline: Pipeline, catalog: Any
    ) -> None:
        """End the MLflow run as failed."""
        self._end(lambda: mlflow.end_run("FAILED"))

    def _end(self, action: Callable[[], Any]) -> None:
        self._guard("the run's end", action)
        os.environ.pop(_RUN_ID, None)
        if self._failure is not None:
            logger.warning(
                "Not tracked in MLflow: %s. The run's versioned outputs are saved as usual.",
                self._failure,
            )
        self.run_id = None
