"""Project hooks: checks before the first node, run-local versions, clean interruption."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.framework.project import settings
from kedro.io import DatasetError, MemoryDataset
from kedro.io.core import AbstractVersionedDataset, Version, generate_timestamp
from kedro.pipeline import Pipeline

from alexnet_cifar10.backend import start_quietly
from alexnet_cifar10.datasets import KerasModelDataset
from alexnet_cifar10.distribution import ClusterError, cluster
from alexnet_cifar10.lazy import LazyModule
from alexnet_cifar10.pipeline_registry import producers
from alexnet_cifar10.pipelines.training.nodes import TrainingDivergedError
from alexnet_cifar10.validation import (
    SECTIONS,
    ParameterError,
    placement_problems,
    validate_parameters,
)

keras = LazyModule("keras")

logger = logging.getLogger(__name__)

# Errors whose message says all a user needs: a traceback through Kedro adds only noise.
USER_ERRORS = (ParameterError, TrainingDivergedError, DatasetError)
# Saved by train_model together with the model: an evaluated model's own run facts and
# history, whichever model version is evaluated.
MODEL_COMPANIONS = ("training_run", "training_history")
# One empty file per save version a run has taken, under the project's data folder.
VERSION_CLAIMS = Path("data") / ".run_versions"


class MissingInputError(DatasetError):
    """A pipeline input that no earlier run has saved."""


def run_env(run_params: dict[str, Any]) -> str | None:
    """The Kedro environment of a run (``--env``, else the default one)."""
    return run_params.get("env") or settings.CONFIG_LOADER_ARGS.get("default_run_env")


def _end_run(error: Exception) -> None:
    for line in str(error).splitlines():
        logger.error("Run stopped: %s", line)
    raise SystemExit(1) from error


def _sections_used(pipeline: Pipeline) -> set[str]:
    """The top-level parameter keys that the pipeline's nodes read."""
    names = {name for node in pipeline.nodes for name in node.inputs}
    if "parameters" in names:
        return set(SECTIONS)
    return {name[len("params:") :].split(".")[0] for name in names if name.startswith("params:")}


def _missing_input_lines(
    pipeline: Pipeline, catalog: Any, load_versions: dict[str, str]
) -> list[str]:
    made_by = producers()
    lines = []
    for name in sorted(pipeline.inputs() & made_by.keys()):
        if catalog.exists(name):
            continue
        where = getattr(catalog.get(name), "_filepath", name)
        if name in load_versions:
            lines.append(
                f"Input '{name}' has no version '{load_versions[name]}' under '{where}': "
                "pick one of the folders there in --load-versions."
            )
        else:
            lines.append(
                f"Input '{name}' was never produced: no saved version under '{where}'. "
                f"Make it with `kedro run --pipelines {made_by[name]}` (or `kedro run` "
                "for everything)."
            )
    return lines


class PreflightHook:
    """Before the first node of any run: every parameter the run uses is valid, every
    input an earlier run must have saved is there and the KERAS_DISTRIBUTION_* variables,
    if set, make sense; otherwise one line per problem and exit status 1, with nothing run
    and nothing written. (What needs the devices is checked once the backend has started,
    by ``QuietBackendHook``.)"""

    @hook_impl(tryfirst=True)
    def before_pipeline_run(
        self, run_params: dict[str, Any], pipeline: Pipeline, catalog: Any
    ) -> None:
        """Check parameters, then inputs, then the processes."""
        try:
            validate_parameters(catalog.load("parameters"), _sections_used(pipeline))
            missing = _missing_input_lines(pipeline, catalog, run_params.get("load_versions") or {})
            if missing:
                raise MissingInputError("\n".join(missing))
            cluster()
        except (ParameterError, MissingInputError, ClusterError) as error:
            _end_run(error)


def _pin(dataset: AbstractVersionedDataset, version: str) -> None:
    # Kedro has no public setter; replacing the catalog entry would warn each run.
    dataset._version = Version(version, version)  # noqa: SLF001


def _save_as(dataset: AbstractVersionedDataset, version: str) -> None:
    dataset._version = Version(dataset._version.load, version)  # noqa: SLF001


def claim_save_version(claims: Path, wanted: str) -> str:
    """``wanted``, or a later timestamp if another run has already taken it.

    Kedro's save version is the session's start time to the millisecond: runs started
    together (a seed sweep started with ``&``) can draw the same one. Creating the claim
    file is atomic, so exactly one run gets each version.
    """
    claims.mkdir(parents=True, exist_ok=True)
    version = wanted
    while True:
        try:
            (claims / version).touch(exist_ok=False)
        except FileExistsError:
            time.sleep(0.001)
            version = max(generate_timestamp(), version)
        else:
            return version


class RunVersionsHook:
    """Makes a run read the versions that belong together, and records where it ran.

    - Two runs started in the same millisecond draw the same save version from Kedro;
      each run claims its version (``data/.run_versions``) and the later one saves under
      the next free timestamp instead of failing at its first save.
    - Kedro loads the newest version of a dataset; when two runs overlap, run A's
      evaluate would pick up run B's model. Every versioned dataset that this run both
      writes and reads is pinned to this run's save version.
    - A model evaluated without being trained in the run (the newest, or the one named
      by ``--load-versions model:<version>``) is read with its own ``training_run`` and
      ``training_history``, so that its results carry its own label.
    - ``run_context`` (Kedro environment, save version) is published for the nodes.

    ``--load-versions`` always wins.
    """

    @hook_impl
    def before_pipeline_run(
        self, run_params: dict[str, Any], pipeline: Pipeline, catalog: Any
    ) -> None:
        """Take a save version of its own, pin versions, then publish the run context."""
        if cluster().index == 0:
            self._claim(run_params, pipeline, catalog)
        pinned = set(run_params.get("load_versions") or {})
        for name in pipeline.all_outputs() & pipeline.all_inputs() - pinned:
            dataset = catalog.get(name)
            if isinstance(dataset, AbstractVersionedDataset):
                _pin(dataset, dataset.resolve_save_version())
        if "model" in pipeline.inputs():
            model_version = catalog.get("model").resolve_load_version()
            for name in set(MODEL_COMPANIONS) & pipeline.inputs() - pinned:
                companion = catalog.get(name)
                if isinstance(companion, AbstractVersionedDataset):
                    _pin(companion, model_version)
        if "run_context" in pipeline.inputs():
            context = {"kedro_env": run_env(run_params), "save_version": run_params["run_id"]}
            catalog.save("run_context", context)

    @staticmethod
    def _claim(run_params: dict[str, Any], pipeline: Pipeline, catalog: Any) -> None:
        drawn = run_params["run_id"]
        claims = Path(run_params["project_path"]) / VERSION_CLAIMS
        version = claim_save_version(claims, drawn)
        if version == drawn:
            return
        for name in pipeline.datasets():
            dataset = catalog.get(name)
            if isinstance(dataset, AbstractVersionedDataset):
                _save_as(dataset, version)
        # The hooks that run after this one (tracking, the run context) name the run by it.
        run_params["run_id"] = version
        logger.warning(
            "Another run started at the same moment took version %s; this run saves as %s.",
            drawn,
            version,
        )


class QuietBackendHook:
    """Starts the deep-learning backend, without its start-up noise, for the runs that
    read or write a Keras model; other runs never load it. The processes of a run of
    several (``KERAS_DISTRIBUTION_*``) join each other first. A run that trains is then
    checked against the devices found (a data-parallel batch must split over them): one
    line per problem and exit status 1, before the first node."""

    @hook_impl
    def before_pipeline_run(self, pipeline: Pipeline, catalog: Any) -> None:
        """Start Keras' backend if a dataset of the run holds a Keras model."""
        if not any(
            isinstance(catalog.get(name), KerasModelDataset) for name in pipeline.datasets()
        ):
            return
        try:
            devices = start_quietly()
            if "training" in _sections_used(pipeline):
                training = catalog.load("params:training")
                backend = keras.backend.backend()
                problems = placement_problems(training, len(devices), cluster().processes, backend)
                if problems:
                    raise ParameterError("\n".join(problems))
        except (ParameterError, ClusterError) as error:
            _end_run(error)


class SingleWriterHook:
    """In a run of several processes, process 0 alone writes the run's outputs: the others
    keep theirs in memory, for their own later nodes, and say so in one line. Nothing is
    written twice, and no process reads a file that another is still writing."""

    # Last: QuietBackendHook must still see the run's Keras model datasets.
    @hook_impl(trylast=True)
    def before_pipeline_run(self, pipeline: Pipeline, catalog: Any) -> None:
        """In processes other than 0, swap every output that a save would write for memory."""
        where = cluster()
        if where.index == 0:
            return
        written = sorted(
            name
            for name in pipeline.all_outputs()
            if not isinstance(catalog.get(name), MemoryDataset)
        )
        # Kedro logs one 'Replacing dataset' warning per swap; the line below says it once.
        catalog_log = logging.getLogger("kedro.io.data_catalog")
        level = catalog_log.level
        catalog_log.setLevel(logging.ERROR)
        try:
            for name in written:
                catalog[name] = MemoryDataset(copy_mode="assign")
        finally:
            catalog_log.setLevel(level)
        logger.info(
            "Process %d of %d saves nothing: process 0 saves this run's %d outputs.",
            where.index,
            where.processes,
            len(written),
        )


class UserErrorHook:
    """Ends a run that failed on bad data, bad parameters or divergence with its message
    and exit status 1, without a traceback through Kedro's runner."""

    @hook_impl
    def on_pipeline_error(self, error: Exception) -> None:
        """Turn the errors a user can fix into a clean exit."""
        if isinstance(error, USER_ERRORS):
            _end_run(error)


class GracefulStopHook:
    """Turns Ctrl-C and SIGTERM during a run into a one-line message and exit status.

    Saves are staged and renamed (see ``datasets.atomic``), so stopping anywhere leaves
    no half-written version; with ``training.resume.enabled`` a rerun continues training
    after the last completed epoch.
    """

    def __init__(self) -> None:
        self._previous: dict[int, Any] = {}

    @staticmethod
    def _stop(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        # Written straight to the file descriptor: the signal may arrive while a logging
        # handler is half-way through a write, and re-entering it would fail.
        os.write(
            sys.stderr.fileno(),
            f"Stopped by {name}: no partial version was published; run again to continue "
            "(training resumes when training.resume.enabled).\n".encode(),
        )
        raise SystemExit(128 + signum)

    @hook_impl
    def before_pipeline_run(self) -> None:
        """Install the handlers (the main thread only can own signals)."""
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._stop)

    @hook_impl
    def after_pipeline_run(self) -> None:
        """Restore the previous handlers."""
        self._restore()

    @hook_impl
    def on_pipeline_error(self) -> None:
        """Restore the previous handlers."""
        self._restore()

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
