"""Project hooks: check and prepare a run before its first node (publish the run's Kedro
environment, let process 0 alone write), stop cleanly on Ctrl-C or SIGTERM.
They raise; ``cli.py`` turns the errors a user can fix into one line each."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import mlflow
from filelock import FileLock
from kedro.config import MissingConfigException
from kedro.framework.hooks import hook_impl
from kedro.framework.project import settings
from kedro.io import AbstractVersionedDataset, DatasetError, MemoryDataset
from kedro.pipeline import Pipeline

from alexnet_cifar10.backend import start_quietly
from alexnet_cifar10.datasets import ServedModelDataset
from alexnet_cifar10.distribution import cluster
from alexnet_cifar10.pipeline_registry import producers, register_pipelines
from alexnet_cifar10.validation import (
    SECTIONS,
    ParameterError,
    placement_problems,
    validate_parameters,
)

logger = logging.getLogger(__name__)

# At most this many versions are listed when a --load-versions version is not there.
_VERSIONS_SHOWN = 5


class MissingInputError(DatasetError):
    """A pipeline input that no earlier run has saved."""


def sections_used(pipeline: Pipeline) -> set[str]:
    """The top-level parameter keys that the pipeline's nodes read."""
    names = {name for node in pipeline.nodes for name in node.inputs}
    if "parameters" in names:
        return set(SECTIONS)
    return {name[len("params:") :].split(".")[0] for name in names if name.startswith("params:")}


def _chain(name: str, catalog: Any, made_by: dict[str, str]) -> str:
    """The pipelines to run, in order, to make ``name`` from what the catalog has."""
    registered, chain, todo = register_pipelines(), [], [name]
    while todo:
        dataset = todo.pop()
        if (pipeline := made_by.get(dataset)) is None or pipeline in chain:
            continue
        chain.insert(0, pipeline)
        needs = registered[pipeline].to_outputs(dataset).inputs()
        todo += [d for d in needs if d in made_by and not catalog.exists(d)]
    return ",".join(chain)


def _missing_line(name: str, dataset: Any, load_versions: dict[str, str], made_by: str) -> str:
    where = getattr(dataset, "location", name)
    if name not in load_versions:
        return (
            f"Input '{name}' was never produced: no saved version under '{where}'. "
            f"Make it with `kedro run --pipelines {made_by}` (or `kedro run` for everything)."
        )
    try:
        newest = dataset.list_versions(full_path=False)[:_VERSIONS_SHOWN]
    except (AttributeError, DatasetError):  # not versioned, or no version at all
        newest = []
    return (
        f"Input '{name}' has no version '{load_versions[name]}' under '{where}'; the newest "
        f"there: {', '.join(newest) or 'none'}."
    )


def _switched_off(dataset: Any, params: dict[str, Any]) -> bool:
    """Whether a catalog entry's ``metadata: {needed_when: <parameter>}`` names a
    parameter that is off: the nodes that read it then ignore its value."""
    switch = (getattr(dataset, "metadata", None) or {}).get("needed_when")
    value: Any = params
    for key in (switch or "").split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return switch is not None and not value


def _fetch_problem(dataset: Any) -> str | None:
    """Why a raw input that can fetch itself (``CIFAR10Dataset.fetch``) is not there."""
    try:
        if hasattr(dataset, "fetch"):
            dataset.fetch()
    except DatasetError as error:
        return str(error)
    return None


def check_run(run_params: dict[str, Any], pipeline: Pipeline, catalog: Any) -> None:
    """The parameters the run reads are valid, its inputs are there (raw data fetched where
    the catalog allows), and a run that trains fits the devices and processes found;
    otherwise raise, one line per problem."""
    sections = sections_used(pipeline)
    params = catalog.load("parameters")
    validate_parameters(params, sections)
    load_versions = run_params.get("load_versions") or {}
    made_by = producers()
    lines = [
        _missing_line(name, catalog.get(name), load_versions, made_by.get(name, ""))
        for name in sorted(load_versions.keys() - pipeline.inputs())
        if not catalog.exists(name)
    ]
    for name in sorted(pipeline.inputs()):
        if name.startswith("params:") or name == "parameters" or catalog.exists(name):
            continue
        dataset = catalog.get(name)
        if name not in load_versions and _switched_off(dataset, params):
            _quietly_replace(catalog, {name: MemoryDataset(None)})  # never read by the nodes
        elif name in made_by:
            chain = _chain(name, catalog, made_by)
            lines.append(_missing_line(name, dataset, load_versions, chain))
        elif (problem := _fetch_problem(dataset)) is not None:
            lines.append(problem)
    if lines:
        raise MissingInputError("\n".join(lines))
    processes = cluster().processes
    if "training" in sections:
        devices = len(start_quietly())
        import keras

        backend = keras.backend.backend()
        training = catalog.load("params:training")
        if problems := placement_problems(training, devices, processes, backend):
            raise ParameterError("\n".join(problems))


def publish_run_context(run_params: dict[str, Any], catalog: Any) -> None:
    """Save the run's Kedro environment as ``run_context``, for the card of a model trained
    in the run."""
    env = run_params.get("env") or settings.CONFIG_LOADER_ARGS.get("default_run_env")
    catalog.save("run_context", {"kedro_env": env})


def _quietly_replace(catalog: Any, replacements: dict[str, MemoryDataset]) -> None:
    """Put these datasets in the catalog, without Kedro's warning for each it replaces."""
    catalog_log = logging.getLogger("kedro.io.data_catalog")
    level = catalog_log.level
    catalog_log.setLevel(logging.ERROR)
    try:
        for name, dataset in replacements.items():
            catalog[name] = dataset
    finally:
        catalog_log.setLevel(level)


def keep_outputs_in_memory(pipeline: Pipeline, catalog: Any) -> None:
    """In processes other than 0 of a multi-process run, swap every output that a save
    would write for memory: process 0 alone writes, so no file is written twice or read
    while another process writes it."""
    where = cluster()
    if where.index == 0:
        return
    # Every output kept anywhere but in memory. The served model stays: tracking is off in
    # these processes, so its save logs nothing, and its load reads the registry.
    written = sorted(
        name
        for name in pipeline.all_outputs()
        if not isinstance(catalog.get(name), MemoryDataset | ServedModelDataset | None)
    )
    _quietly_replace(catalog, {name: MemoryDataset(copy_mode="assign") for name in written})
    logger.info(
        "Process %d of %d saves nothing: process 0 saves this run's %d outputs.",
        where.index,
        where.processes,
        len(written),
    )


class PreflightHook:
    """Before the first node: checks the run (``check_run``), then prepares the catalog for
    it (``publish_run_context``, ``keep_outputs_in_memory``). Nothing has run or been
    written when a check fails."""

    @hook_impl(tryfirst=True)  # before kedro-mlflow's hook opens the store
    def after_context_created(self, context: Any) -> None:
        """Create a new local SQLite tracking store one process at a time: MLflow creates a
        new database's tables with no lock between processes, so two runs started
        together on a new store would both create them."""
        try:
            uri = str(context.config_loader["mlflow"]["server"]["mlflow_tracking_uri"])
        except (MissingConfigException, KeyError, TypeError):  # kedro-mlflow's defaults
            return
        if uri.startswith("sqlite:///"):
            database = Path(uri.removeprefix("sqlite:///").partition("?")[0])
            database.parent.mkdir(parents=True, exist_ok=True)
            with FileLock(f"{database}.lock", timeout=120):
                if not database.exists():
                    mlflow.MlflowClient(uri).search_experiments(max_results=1)

    @hook_impl(tryfirst=True)  # before kedro-mlflow's hook: a refused run opens no MLflow run
    def before_pipeline_run(
        self, run_params: dict[str, Any], pipeline: Pipeline, catalog: Any
    ) -> None:
        """Check the run, then publish its context and, in processes other than 0, keep
        its outputs in memory."""
        check_run(run_params, pipeline, catalog)
        publish_run_context(run_params, catalog)
        keep_outputs_in_memory(pipeline, catalog)
        # ParallelRunner's workers start afresh (Kedro's own switch): TensorFlow, started
        # by now, cannot run in a process forked from it (Linux forks by default).
        os.environ.setdefault("KEDRO_MP_CONTEXT", "spawn")


class GracefulStopHook:
    """Turns Ctrl-C and SIGTERM during a run into one line and an exit status, and says,
    when a run stops or fails, which outputs the finished nodes published. Saves are
    staged and renamed (``datasets.atomic``), so no half-written version is left."""

    def __init__(self) -> None:
        self._previous: dict[int, Any] = {}
        self._version: str | None = None
        self._outputs: list[Any] = []

    def published(self) -> str:
        """What the run's finished nodes saved (the outputs that hold a version of the
        run's save version, whichever runner ran them), for the line that ends a stopped
        or failed run."""
        names = [
            name
            for name, dataset in self._outputs
            if self._version in dataset.list_versions(full_path=False)
        ]
        if not names:
            return "No node had published an output yet."
        return (
            f"Published by the nodes that finished, as version {self._version}: {', '.join(names)}."
        )

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        # Written straight to the file descriptor: the signal may arrive while a logging
        # handler is half-way through a write, and re-entering it would fail.
        os.write(
            sys.stderr.fileno(),
            f"Stopped by {name}: no partial version was published. {self.published()} A "
            "rerun starts over; with training.resume.enabled it continues after the last "
            "finished epoch.\n".encode(),
        )
        raise SystemExit(128 + signum)

    # tryfirst: before kedro-mlflow's hook, whose failure would skip the hooks after it.
    @hook_impl(tryfirst=True)
    def before_pipeline_run(
        self, run_params: dict[str, Any], pipeline: Pipeline, catalog: Any
    ) -> None:
        """Note the run's versioned outputs; install the handlers (the main thread only
        can own signals)."""
        self._version = run_params.get("run_id")
        self._outputs = [
            (name, dataset)
            for name in sorted(pipeline.all_outputs())
            if isinstance(dataset := catalog.get(name), AbstractVersionedDataset)
        ]
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._stop)

    @hook_impl(tryfirst=True)
    def after_pipeline_run(self) -> None:
        """Restore the previous handlers (after the run, or its failure)."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    @hook_impl(tryfirst=True)
    def on_pipeline_error(self) -> None:
        """Say what the failed run published; restore the handlers."""
        logger.warning("The run failed. %s", self.published())
        self.after_pipeline_run()
