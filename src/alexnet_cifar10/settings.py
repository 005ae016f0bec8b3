"""Project settings (see https://docs.kedro.org/en/stable/configure/)."""

import logging
import os
import warnings

from alexnet_cifar10.hooks import (
    GracefulStopHook,
    PreflightHook,
    RunContextHook,
    SingleWriterHook,
)
from alexnet_cifar10.session import ProjectSession
from alexnet_cifar10.tracking import TrackingHook

HOOKS = (
    PreflightHook(),
    RunContextHook(),
    GracefulStopHook(),
    TrackingHook(),
    SingleWriterHook(),
)

# Every run takes a save version of its own, even when two start in the same millisecond.
SESSION_CLASS = ProjectSession

# ParallelRunner's worker processes start afresh (Kedro's own switch): TensorFlow, which the
# main process has started by then, cannot run in a process forked from it (Linux forks
# by default), and the nodes would hang.
os.environ.setdefault("KEDRO_MP_CONTEXT", "spawn")

# TrackingHook records runs in MLflow, with kedro-mlflow's configuration; kedro-mlflow's
# own hook would open the store for every command and stop a run on any store error.
# Kedro compares the distribution name as its metadata spells it (kedro_mlflow for
# kedro-mlflow 2.0.3), so both spellings are listed.
DISABLE_HOOKS_FOR_PLUGINS = ("kedro_mlflow", "kedro-mlflow")

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # Environments such as `quick` and `test` override single keys of nested parameters
    # (say training.epochs) instead of replacing whole top-level dictionaries; so does a
    # conf/local/mlflow.yml that sets only server.mlflow_tracking_uri.
    "merge_strategy": {"parameters": "soft", "mlflow": "soft"},
    # kedro-mlflow's configuration file (its own hook would add this pattern).
    "config_patterns": {"mlflow": ["mlflow*", "mlflow*/**"]},
}

# Kedro 1.7's OmegaConfigLoader still registers its resolvers with an OmegaConf call that
# OmegaConf 2.4 deprecates; a user cannot act on it, and it fills two screens of every run.
warnings.filterwarnings(
    "ignore", message=r"register_new_resolver\(\) is deprecated", category=UserWarning
)


def _not_mlflow_type_hint_advice(record: logging.LogRecord) -> bool:
    return "Add type hints to the `predict` method" not in record.getMessage()


# Kedro imports kedro-mlflow's hook module even though it is disabled above, and the model
# class in it makes MLflow warn about type hints that no user of this project can add.
# MLflow re-enables the warning inside its own call, so a warnings filter cannot drop it;
# Kedro's logging receives it on the `py.warnings` logger.
logging.getLogger("py.warnings").addFilter(_not_mlflow_type_hint_advice)
