"""Project settings (see https://docs.kedro.org/en/stable/configure/)."""

import logging
import os
import warnings
from pathlib import Path

from kedro.utils import find_kedro_project

from alexnet_cifar10.hooks import GracefulStopHook, PreflightHook
from alexnet_cifar10.tracking import TrackingHook

# Lines a user of this project cannot act on, off the console and the log file: Kedro's
# hints at --async and at typed parameters, MLflow's database set-up lines, and warnings
# addressed to library authors: MLflow's advice on the model class in kedro-mlflow's hook
# module (imported below; MLflow re-enables the warning inside its own call, so a warnings
# filter cannot drop it), FastAPI's on kedro-viz's responses, and the ones named below.
_NOT_ACTIONABLE = {
    "kedro.runner.sequential_runner": ("Use the --async flag",),
    "kedro.runner.parallel_runner": ("Use the --async flag",),
    "kedro.validation.parameter_validator": ("No typed parameter requirements found",),
    "py.warnings": (
        "Add type hints to the `predict` method",
        "ORJSONResponse is deprecated",
        # Keras' ONNX export probing NumPy, and MLflow on the served model's row index.
        "`np.object` will be defined",
        "Inferred schema contains integer column",
    ),
    # MLflow's advice to log models as code, given for every model object it pickles.
    "mlflow.pyfunc": ("Passing a Python object as `python_model`",),
    # The project's own line says where the run is recorded.
    "kedro_mlflow.framework.hooks.mlflow_hook": ("has started", "Registering new custom resolver"),
    "mlflow.store.db.utils": ("database tables",),
}
for _logger, _phrases in _NOT_ACTIONABLE.items():
    logging.getLogger(_logger).addFilter(
        lambda record, phrases=_phrases: not any(p in record.getMessage() for p in phrases)
    )

# kedro-mlflow's own hook, registered by the plugin, records the runs; TrackingHook adds
# the project's tags and artifacts to them.
HOOKS = (PreflightHook(), GracefulStopHook(), TrackingHook())

# ParallelRunner's worker processes start afresh (Kedro's own switch): TensorFlow, which the
# main process has started by then, cannot run in a process forked from it (Linux forks
# by default), and the nodes would hang.
os.environ.setdefault("KEDRO_MP_CONTEXT", "spawn")


def _project_root() -> str:
    """The project folder, wherever in it Kedro runs (``${project_root:}`` in mlflow.yml)."""
    return (find_kedro_project(Path.cwd()) or Path.cwd()).resolve().as_posix()


CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # Environments such as `quick` and `test` override single keys of nested parameters
    # (say training.epochs) instead of replacing whole top-level dictionaries; so does a
    # conf/local/mlflow.yml that sets only server.mlflow_tracking_uri.
    "merge_strategy": {"parameters": "soft", "mlflow": "soft"},
    # kedro-mlflow's configuration file (its hook adds the pattern too, after the project's
    # PreflightHook has read it).
    "config_patterns": {"mlflow": ["mlflow*", "mlflow*/**"]},
    "custom_resolvers": {"project_root": _project_root},
}

# Kedro 1.7's OmegaConfigLoader still registers its resolvers with an OmegaConf call that
# OmegaConf 2.4 deprecates; a user cannot act on it, and it fills two screens of every run.
warnings.filterwarnings(
    "ignore", message=r"register_new_resolver\(\) is deprecated", category=UserWarning
)
