"""Project settings (see https://docs.kedro.org/en/stable/configure/)."""

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # Environments such as `quick` and `test` override single keys of nested parameters
    # (say training.epochs) instead of replacing whole top-level dictionaries.
    "merge_strategy": {"parameters": "soft"},
}

from alexnet_cifar10.hooks import (  # noqa: E402
    GracefulStopHook,
    RunLocalVersionsHook,
    UserErrorHook,
    ValidateParametersHook,
)

HOOKS = (ValidateParametersHook(), RunLocalVersionsHook(), GracefulStopHook(), UserErrorHook())
