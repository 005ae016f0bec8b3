"""Experiment tracking: every run that trains or evaluates a model becomes one MLflow run.

``TrackingHook`` records what the pipelines save, so that the nodes hold no tracking code:

- tags ``run_label``, ``kedro_env``, ``kedro_save_version``, ``kedro_pipelines``,
  ``run_kind`` (train or evaluate) and ``model_version``, the catalog version of the model
  the run trained (set once the model is saved, with ``model_path``) or evaluated; an
  evaluate-only run is filed under the run that trained its model (MLflow's parent run);
- every parameter that the run's nodes read, one per key (``training.optimizer.name``);
- ``training_history`` as metric histories with the epoch as step: ``loss``,
  ``accuracy``, ``val_loss``, ``val_accuracy``, ``learning_rate``, ``epoch_seconds``;
- ``test_metrics`` as ``test_accuracy``, ``test_loss``, ``test_macro_precision``,
  ``test_macro_recall``, ``test_macro_f1`` and ``test_f1_<class>``;
- the files of ``ARTIFACTS`` as saved. Not copied: the trained and the untrained model
  (85.8 MB for the trained recipe, with its optimizer state) are catalog versions, named
  by ``model_version`` and evaluated again with ``--load-versions model:<version>``, so a
  copy would only double their disk use; the model inputs (188 MB a run) are data, not
  results.

kedro-mlflow provides the configuration (``conf/*/mlflow.yml``, read with its
``KedroMlflowConfig``: tracking URI, credentials, experiment) and ``kedro mlflow ui``. Its
own hook is not registered (``DISABLE_HOOKS_FOR_PLUGINS`` in settings.py): it opens the
store whenever a Kedro context is created, a store error (a locked database, say) stops the
run before its first node, and only single pipelines can be excluded from it.

Tracking never costs data: each call to MLflow is guarded, and after the first failure
(store locked, read-only, full, corrupt or unreachable, bad configuration) the run goes on
untracked and says, in one line at its end, what was not recorded and why.
"""

from __future__ import annotations

import atexit
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import pandas as pd
from kedro.config import MissingConfigException
from kedro.framework.hooks import hook_impl
from kedro.io.core import AbstractVersionedDataset, get_filepath_str
from kedro.pipeline import Pipeline

from alexnet_cifar10.distribution import cluster
from alexnet_cifar10.lazy import LazyModule
from alexnet_cifar10.provenance import LABELS, TrainedModel

# Imported when a run is tracked: a project without MLflow runs untracked, and commands
# that track nothing do not wait for MLflow's import.
mlflow = LazyModule("mlflow")
entities = LazyModule("mlflow.entities")
kedro_mlflow_config = LazyModule("kedro_mlflow.config.kedro_mlflow_config")
filelock = LazyModule("filelock")

logger = logging.getLogger(__name__)

# The project's own key in mlflow.yml (kedro-mlflow's schema has no such switch).
SWITCH = "enabled"
MODEL, TEST_METRICS = "model", "test_metrics"
ARTIFACTS = (
    "model_summary",
    "training_history",
    "test_metrics",
    "accuracy_plot",
    "loss_plot",
    "confusion_matrix_plot",
)
ARTIFACT_GROUP = "the artifacts"
# Artifacts of a local SQLite store go to this folder beside the database.
ARTIFACT_FOLDER = "mlartifacts"
_SQLITE = "sqlite:///"
# MLflow's limits per log_batch call.
_PARAMS_PER_BATCH, _METRICS_PER_BATCH = 100, 1000


def store_path(uri: str | None, project_path: Path) -> Path | None:
    """The database file of a local SQLite tracking URI, a relative path being taken from
    the project root (MLflow itself would take it from the current directory); None for
    any other store."""
    if not uri or not uri.startswith(_SQLITE):
        return None
    path = uri[len(_SQLITE) :].partition("?")[0]
    if not path or path.startswith(":memory:"):
        return None
    return project_path / path


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
    experiment["create_experiment_kwargs"] = create
    tracking["experiment"] = experiment
    return {**conf, "server": server, "tracking": tracking}


def flat_params(
    params: Mapping[str, Any], sep: str = ".", recursive: bool = True, prefix: str = ""
) -> dict[str, str]:
    """Nested parameters as MLflow parameters: one per key, values as text."""
    flat = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and (recursive or not prefix):
            flat.update(flat_params(value, sep, recursive, f"{name}{sep}"))
        else:
            flat[name] = str(value)
    return flat


def used_params(pipeline: Pipeline, parameters: Mapping[str, Any]) -> dict:
    """The parameters the pipeline's nodes read, as nested as in the configuration."""
    names = {name for node in pipeline.nodes for name in node.inputs}
    if "parameters" in names:
        return dict(parameters)
    used: dict[str, Any] = {}
    for name in sorted(n[len("params:") :] for n in names if n.startswith("params:")):
        *parents, leaf = name.split(".")
        source, target = parameters, used
        for part in parents:
            source = source[part]
            target = target.setdefault(part, {})
        target[leaf] = source[leaf]
    return used


def history_metrics(history: pd.DataFrame) -> list[tuple[str, float, int]]:
    """(metric, value, epoch) for every recorded value of every epoch."""
    points = []
    for row in history.to_dict("records"):
        epoch = int(row.pop("epoch"))
        points += [(key, float(value), epoch) for key, value in row.items() if pd.notna(value)]
    return points


def _metric_key(name: str) -> str:
    # MLflow keys allow letters, digits, and _ - . / and spaces.
    return re.sub(r"[^\w\-./ ]", "_", name)


def evaluation_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The test metrics of ``compute_test_metrics`` as MLflow metrics."""
    values = {
        f"test_{key}": float(metrics[key])
        for key in ("accuracy", "loss", "macro_precision", "macro_recall", "macro_f1")
    }
    for name, scores in metrics["per_class"].items():
        values[_metric_key(f"test_f1_{name}")] = float(scores["f1"])
    return values


def runs_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Tracked runs side by side, from ``mlflow.search_runs``: kind, model version, test
    accuracy and the parameters whose values differ between the runs that read them."""
    columns = {
        "tags.mlflow.runName": "run",
        "tags.run_kind": "kind",
        "tags.model_version": "model version",
        "metrics.test_accuracy": "test accuracy",
    }
    table = runs.reindex(columns=list(columns)).rename(columns=columns)
    params = runs.filter(regex=r"^params\.")
    differ = [name for name in params if params[name].dropna().nunique() > 1]
    table[[name.removeprefix("params.") for name in differ]] = params[differ]
    return table.set_index("run")


def _one_line(error: BaseException) -> str:
    """The first line of an error (SQLAlchemy adds the statement and a link below it)."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _batches(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _saved_file(dataset: AbstractVersionedDataset) -> str:
    """Where this run saved a versioned dataset."""
    # Kedro has no public accessor for a version's path.
    path = dataset._get_versioned_path(dataset.resolve_save_version())  # noqa: SLF001
    return get_filepath_str(path, dataset._protocol)  # noqa: SLF001


def _model_tags(model: TrainedModel) -> dict[str, str]:
    """The tags that name a model: its labels, read from its own card."""
    return {key: model.card[key] for key in LABELS}


def _test_points(metrics: Mapping[str, Any]) -> list[tuple[str, float, int]]:
    return [(key, value, 0) for key, value in evaluation_metrics(metrics).items()]


@contextmanager
def _quiet_mlflow() -> Iterator[None]:
    """MLflow logs a store error with its traceback before raising it, and announces the
    creation of a new database in its own format; the run reports in its own lines."""
    mlflow_logger = logging.getLogger("mlflow")
    level = mlflow_logger.level
    mlflow_logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        mlflow_logger.setLevel(level)


class _Recorder:
    """One MLflow run. After the first failed call nothing more is sent: what is left is
    listed for the run's closing line."""

    def __init__(self, config: Any, catalog: Any) -> None:
        self.config = config
        self.catalog = catalog
        self.client: Any = None
        self.run_id: str | None = None
        self.name = ""
        self.failure: str | None = None
        # What was not recorded, in order: "the test metrics", or a group and its items
        # (ARTIFACT_GROUP -> dataset names).
        self.missed: dict[str, list[str]] = {}
        self.counts = {"parameter": 0, "metric value": 0, "artifact": 0}
        self._lock = threading.Lock()  # saves may come from several threads (--async)
        self.evaluates_only = False

    def attempt(self, what: str, action: Callable[[], None], item: str | None = None) -> None:
        """Run ``action`` against the store, unless an earlier call failed."""
        with self._lock:
            if self.failure is None:
                try:
                    with _quiet_mlflow():
                        action()
                    return
                # Whatever the store, its driver or the network raises: tracking comes
                # second to the run and its versioned outputs.
                except Exception as error:
                    self.failure = _one_line(error)
            self.missed.setdefault(what, []).extend([item] if item else [])

    def start(self, context: Any, run: dict[str, Any], params: dict[str, str]) -> None:
        """Open the store, create the MLflow run with its tags, log its parameters."""
        server = self.config.server
        database = store_path(server.mlflow_tracking_uri, Path(context.project_path))
        # MLflow creates a new database's tables without a lock between processes, and two
        # runs that start together would both create the experiment: one at a time here.
        with filelock.FileLock(f"{database}.lock", timeout=120) if database else nullcontext():
            # kedro-mlflow: tracking URI, credentials, experiment (created if missing).
            self.config.setup(context)
        self.client = mlflow.MlflowClient(server.mlflow_tracking_uri, server.mlflow_registry_uri)
        experiment = self.client.get_experiment_by_name(self.config.tracking.experiment.name)
        tags = dict(run["tags"])
        if "evaluated_model" in run:
            trained = self.client.search_runs(
                [experiment.experiment_id],
                f"tags.model_version = '{run['evaluated_model']}' and tags.run_kind = 'train'",
                max_results=1,
            )
            if trained:  # file the evaluation under the run that trained the model
                tags["mlflow.parentRunId"] = trained[0].info.run_id
        self.name = self.config.tracking.run.name or run["name"]
        self.run_id = self.config.tracking.run.id or (
            self.client.create_run(experiment.experiment_id, run_name=self.name).info.run_id
        )
        self.set_tags(tags)
        for batch in _batches([entities.Param(k, v) for k, v in params.items()], _PARAMS_PER_BATCH):
            self.client.log_batch(self.run_id, params=batch)
        self.counts["parameter"] = len(params)
        atexit.register(self.interrupted)
        logger.info(
            "Tracking this run in MLflow: run '%s' of experiment '%s' in %s",
            self.name,
            experiment.name,
            server.mlflow_tracking_uri,
        )

    def set_tags(self, tags: Mapping[str, str]) -> None:
        run_tags = [entities.RunTag(key, str(value)) for key, value in tags.items()]
        self.client.log_batch(self.run_id, tags=run_tags)

    def log_metrics(self, points: Iterable[tuple[str, float, int]]) -> None:
        now = int(time.time() * 1000)
        metrics = [entities.Metric(key, value, now, step) for key, value, step in points]
        for batch in _batches(metrics, _METRICS_PER_BATCH):
            self.client.log_batch(self.run_id, metrics=batch)
        self.counts["metric value"] += len(metrics)

    def log_file(self, path: str) -> None:
        self.client.log_artifact(self.run_id, path)
        self.counts["artifact"] += 1

    def loaded(self, name: str, data: Any) -> None:
        """Name an evaluate-only run by the model it evaluates, from that model's card."""
        if name == MODEL:
            self.attempt("the model version", lambda: self.set_tags(_model_tags(data)))

    def saved(self, name: str, data: Any) -> None:
        """Record what a node just saved."""
        if name == MODEL:
            dataset = self.catalog.get(name)
            # The card in memory predates the save; the archive's card has the version.
            saved = {"model_version": dataset.resolve_save_version()}
            tags = {**_model_tags(data), **saved, "model_path": _saved_file(dataset)}
            self.attempt("the model version", lambda: self.set_tags(tags))
            self.attempt(
                "the metric histories", lambda: self.log_metrics(history_metrics(data.history))
            )
        if name == TEST_METRICS:
            self.attempt("the test metrics", lambda: self.log_metrics(_test_points(data)))
            evaluated = {"evaluated_model_version": data["model_version"]}
            self.attempt("the evaluated model", lambda: self.set_tags(evaluated))
        if name in ARTIFACTS:
            self.attempt(
                ARTIFACT_GROUP, lambda: self.log_file(_saved_file(self.catalog.get(name))), name
            )

    def finish(self, status: str) -> None:
        """End the MLflow run; say what was recorded, or what was not and why."""
        atexit.unregister(self.interrupted)
        if self.run_id is not None:
            self.attempt("the run's end", lambda: self.client.set_terminated(self.run_id, status))
        if self.failure is None:
            counts = ", ".join(
                f"{count} {what}{'' if count == 1 else 's'}" for what, count in self.counts.items()
            )
            logger.info("MLflow run '%s' recorded: %s.", self.name, counts)
            return
        # The artifacts last: they come one by one, between the other records.
        groups = sorted(self.missed.items(), key=lambda group: group[0] == ARTIFACT_GROUP)
        missed = "; ".join(" ".join([what, ", ".join(items)]).strip() for what, items in groups)
        logger.warning(
            "Not tracked in MLflow: %s (%s: %s). The run's versioned outputs are saved as usual.",
            missed,
            self.config.server.mlflow_tracking_uri,
            self.failure,
        )

    def interrupted(self) -> None:
        """At exit, a run stopped by a signal is marked killed rather than left running."""
        if self.failure is None:
            self.attempt("the run's end", lambda: self.client.set_terminated(self.run_id, "KILLED"))


def _config_problem(error: Exception) -> str:
    """The first problem pydantic found in mlflow.yml, in one line."""
    errors = getattr(error, "errors", None)
    if callable(errors) and errors():
        first = errors()[0]
        return f"{'.'.join(map(str, first['loc']))}: {first['msg']}"
    return _one_line(error)


class TrackingHook:
    """Records each run that trains or evaluates a model as one MLflow run (see the module
    docstring); where tracking is off, such a run says so in one line."""

    def __init__(self) -> None:
        self._context: Any = None
        self._config: Any = None
        self._off: str | None = None
        self._recorder: _Recorder | None = None

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        """Read mlflow.yml and publish it as ``context.mlflow``, where kedro-mlflow's
        ``kedro mlflow ui`` reads it; the store is opened only when a tracked run starts."""
        self._context, self._config, self._off = context, None, None
        try:
            schema = kedro_mlflow_config.KedroMlflowConfig
        except ImportError:
            self._off = "MLflow is not installed (pip install kedro-mlflow)"
            return
        try:
            conf = dict(context.config_loader["mlflow"])
        except MissingConfigException:
            conf = {}
        enabled = conf.pop(SWITCH, True)
        try:
            conf = resolve_store(conf, Path(context.project_path))
            self._config = schema.model_validate(conf)
        except ValueError as error:  # pydantic's ValidationError is a ValueError
            self._off = f"mlflow.yml is not valid ({_config_problem(error)})"
            return
        context.mlflow = self._config
        if enabled is not True:
            self._off = f"'{SWITCH}: {enabled}' in mlflow.yml"

    @hook_impl(trylast=True)  # after the other hooks' checks and version pins
    def before_pipeline_run(
        self, run_params: dict[str, Any], pipeline: Pipeline, catalog: Any
    ) -> None:
        """Start an MLflow run if this run trains or evaluates a model."""
        self._recorder = None
        outputs = pipeline.all_outputs()
        if MODEL not in outputs and TEST_METRICS not in outputs:
            return
        if self._off is not None:
            logger.info("MLflow tracking is off: %s.", self._off)
            return
        where = cluster()
        if where.index != 0:
            logger.info(
                "MLflow tracking is off in process %d of %d: process 0 records this run.",
                where.index,
                where.processes,
            )
            return
        pipelines = run_params.get("pipeline_names") or ["__default__"]
        if set(pipelines) <= set(self._config.tracking.disable_tracking.pipelines):
            logger.info(
                "MLflow tracking is off for the pipelines %s "
                "(tracking.disable_tracking.pipelines in mlflow.yml).",
                ", ".join(pipelines),
            )
            return
        recorder = self._recorder = _Recorder(self._config, catalog)
        recorder.evaluates_only = MODEL not in outputs
        recorder.attempt(
            "the run, its tags and parameters",
            lambda: recorder.start(
                self._context,
                self._run_facts(run_params, pipeline, catalog),
                self._params(pipeline, catalog),
            ),
        )

    def _params(self, pipeline: Pipeline, catalog: Any) -> dict[str, str]:
        used = used_params(pipeline, catalog.get("parameters").load())
        options = self._config.tracking.params.dict_params
        if options.flatten:
            return flat_params(used, options.sep, options.recursive)
        return {key: str(value) for key, value in used.items()}

    @staticmethod
    def _run_facts(run_params: dict[str, Any], pipeline: Pipeline, catalog: Any) -> dict:
        """The MLflow run's name and tags, and the model an evaluate-only run evaluates."""
        save_version = run_params["run_id"]
        trains = MODEL in pipeline.all_outputs()
        tags = {
            "kedro_save_version": save_version,
            "kedro_pipelines": ",".join(run_params.get("pipeline_names") or ["__default__"]),
            "run_kind": "train" if trains else "evaluate",
        }
        if trains:
            return {"name": save_version, "tags": tags}
        evaluated = catalog.get(MODEL).resolve_load_version()
        return {
            "name": f"evaluate {save_version}",
            "tags": {**tags, "model_version": evaluated},
            "evaluated_model": evaluated,
        }

    @hook_impl
    def after_dataset_loaded(self, dataset_name: str, data: Any) -> None:
        """Record the labels of a model that the run evaluates without training it."""
        if self._recorder is not None and self._recorder.evaluates_only:
            self._recorder.loaded(dataset_name, data)

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any) -> None:
        """Record a saved history, test metrics, model version or artifact."""
        if self._recorder is not None:
            self._recorder.saved(dataset_name, data)

    @hook_impl
    def after_pipeline_run(self) -> None:
        """End the MLflow run as finished."""
        self._finish("FINISHED")

    @hook_impl
    def on_pipeline_error(self) -> None:
        """End the MLflow run as failed."""
        self._finish("FAILED")

    def _finish(self, status: str) -> None:
        if self._recorder is not None:
            self._recorder.finish(status)
            self._recorder = None
