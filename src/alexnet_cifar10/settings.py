"""Project settings (see https://docs.kedro.org/en/stable/configure/)."""

import warnings

from alexnet_cifar10.hooks import (
    GracefulStopHook,
    PreflightHook,
    QuietBackendHook,
    RunVersionsHook,
    UserErrorHook,
)

HOOKS = (
    PreflightHook(),
    QuietBackendHook(),
    RunVersionsHook(),
    GracefulStopHook(),
    UserErrorHook(),
)

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # Environments such as `quick` and `test` override single keys of nested parameters
    # (say training.epochs) instead of replacing whole top-level dictionaries.
    "merge_strategy": {"parameters": "soft"},
}

# Kedro 1.7's OmegaConfigLoader still registers its resolvers with an OmegaConf call that
# OmegaConf 2.4 deprecates; a user cannot act on it, and it fills two screens of every run.
warnings.filterwarnings(
    "ignore", message=r"register_new_resolver\(\) is deprecated", category=UserWarning
)
