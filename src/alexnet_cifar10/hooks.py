"""Project hooks: checks before the first node, run-local versions, clean interruption."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from types import FrameType
from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.framework.project import settings
from kedro.io import DatasetError
from kedro.io.core import AbstractVersionedDataset, Version
from kedro.pipeline import Pipeline

from alexnet_cifar10.backend import start_quietly
from alexnet_cifar10.datasets import KerasModelDataset
from alexnet_cifar10.pipeline_registry import producers
from alexnet_cifar10.pipelines.training.nodes import TrainingDivergedError
from alexnet_cifar10.validation import SECTIONS, ParameterError, validate_parameters

logger = logging.getLogger(__name__)

# Errors whose message says all a user needs: a traceback through Kedro adds only noise.
USER_ERRORS = (ParameterError, TrainingDivergedError, DatasetError)
# Saved by train_model together with the model: an evaluated model's own run facts and
# history, whichever model version is evaluated.
MODEL_COMPANIONS = ("training_run", "training_history")


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
    """Before the first node of any run: every parameter the run uses is valid and every
    input an earlier run must have saved is there; otherwise one line per problem and
    exit status 1, with nothing run and nothing written."""

    @hook_impl(tryfirst=True)
    def before_pipeline_run(
        self, run_params: dict[str, Any], pipeline: Pipeline, catalog: Any
    ) -> None:
        """Check parameters, then inputs."""
        try:
            validate_parameters(catalog.load("parameters"), _sections_used(pipeline))
            missing = _missing_input_lines(pipeline, catalog, run_params.get("load_versions") or {})
            if missing:
                raise MissingInputError("\n".join(missing))
        except (ParameterError, MissingInputError) as error:
            _end_run(error)


def _pin(dataset: AbstractVersionedDataset, version: str) -> None:
    # Kedro has no public setter; replacing the catalog entry would warn each run.
    dataset._version = Version(version, version)  # noqa: SLF001


class RunVersionsHook:
    """Makes a run read the versions that belong together, and records where it ran.

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
        """Pin versions, then publish the run context."""
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


class QuietBackendHook:
    """Starts the deep-learning backend, without its start-up noise, for the runs that
    read or write a Keras model; other runs never load it."""

    @hook_impl
    def before_pipeline_run(self, pipeline: Pipeline, catalog: Any) -> None:
        """Start Keras' backend if a dataset of the run holds a Keras model."""
        if any(isinstance(catalog.get(name), KerasModelDataset) for name in pipeline.datasets()):
            start_quietly()


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
