"""Project settings (see https://docs.kedro.org/en/stable/configure/)."""

from pathlib import Path

from kedro.utils import find_kedro_project

from alexnet_cifar10 import labelled
from alexnet_cifar10.hooks import GracefulStopHook, PreflightHook
from alexnet_cifar10.tracking import TrackingHook

# kedro-mlflow's own hook, registered by the plugin, records the runs; TrackingHook adds
# the project's tags and artifacts to them.
# TrackingHook's guard makes a tracking failure cost only the tracking.
TRACKING = TrackingHook()
HOOKS = (PreflightHook(), GracefulStopHook(), TRACKING, TRACKING.guard)


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
    # `${image_classes:<folder>}`: a labelled folder's class names (conf/labelled).
    "custom_resolvers": {"project_root": _project_root, "image_classes": labelled.class_names},
}
