"""Project hooks."""

from __future__ import annotations

from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.pipeline import Pipeline

from alexnet_cifar10.pipelines.training.nodes import validate_training_params


class ValidateParametersHook:
    """Rejects bad training parameters before any node of the run starts."""

    @hook_impl
    def before_pipeline_run(
        self, run_params: dict[str, Any], pipeline: Pipeline, catalog: Any
    ) -> None:
        """Validate ``params:training`` when the run includes training."""
        if any(node.name == "train_model" for node in pipeline.nodes):
            validate_training_params(catalog.load("params:training"))
