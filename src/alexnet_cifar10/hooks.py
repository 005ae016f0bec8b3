"""Project hooks: early parameter checks, run-local versions, clean interruption."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from types import FrameType
from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.io import DatasetError
from kedro.io.core import AbstractVersionedDataset, Version
from kedro.pipeline import Pipeline

from alexnet_cifar10.pipelines.training.nodes import (
    TrainingDivergedError,
    validate_training_params,
)
from alexnet_cifar10.validation import ParameterError

logger = logging.getLogger(__name__)

# Errors whose message says all a user needs: a traceback through Kedro adds only noise.
USER_ERRORS = (ParameterError, TrainingDivergedError, DatasetError)


def _end_run(error: Exception) -> None:
    logger.error("Run stopped: %s", error)
    raise SystemExit(1) from error


class ValidateParametersHook:
    """Rejects bad training parameters before any node of the run starts."""

    @hook_impl
    def before_pipeline_run(
        self, run_params: dict[str, Any], pipeline: Pipeline, catalog: Any
    ) -> None:
        """Validate ``params:training`` when the run includes training."""
        if any(node.name == "train_model" for node in pipeline.nodes):
            try:
                validate_training_params(catalog.load("params:training"))
            except ParameterError as error:
                _end_run(error)


class UserErrorHook:
    """Ends a run that failed on bad data, bad parameters or divergence with its message
    and exit status 1, without a traceback through Kedro's runner."""

    @hook_impl
    def on_pipeline_error(self, error: Exception) -> None:
        """Turn the errors a user can fix into a clean exit."""
        if isinstance(error, USER_ERRORS):
            _end_run(error)


class RunLocalVersionsHook:
    """Makes a run read back its own outputs, not a concurrent run's newer versions.

    Kedro loads the newest version of a dataset; when two runs overlap, run A's evaluate
    would pick up run B's model. Every versioned dataset that this run both writes and
    reads is pinned to this run's save version (unless ``--load-versions`` names it).
    """

    @hook_impl
    def before_pipeline_run(
        self, run_params: dict[str, Any], pipeline: Pipeline, catalog: Any
    ) -> None:
        """Pin the load version of every dataset produced and consumed in this run."""
        pinned = set(run_params.get("load_versions") or {})
        for name in pipeline.all_outputs() & pipeline.all_inputs():
            dataset = catalog.get(name)
            if name in pinned or not isinstance(dataset, AbstractVersionedDataset):
                continue
            version = dataset.resolve_save_version()
            if version is not None:
                # Kedro has no public setter; replacing the catalog entry would warn each run.
                dataset._version = Version(version, version)  # noqa: SLF001


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
