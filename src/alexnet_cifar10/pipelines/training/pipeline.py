"""The training pipeline: the recipe's network built, described, then fitted."""

from kedro.pipeline import Node, Pipeline

from alexnet_cifar10.pipelines.training.nodes import (
    build_model,
    summarise_model,
    train_model,
    training_curves,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Build the untrained network, write its summary, fit it on the train split and give
    its curves to the run's tracking."""
    return Pipeline(
        [
            Node(
                build_model,
                inputs=[
                    "params:training.model",
                    "params:training.augmentation",
                    "params:training.precision",
                    "params:seed",
                    "params:class_names",
                ],
                outputs="untrained_model",
                name="build_model",
            ),
            Node(
                summarise_model,
                inputs="untrained_model",
                outputs="model_summary",
                name="summarise_model",
            ),
            Node(
                train_model,
                inputs=[
                    "untrained_model",
                    "model_input_train",
                    "model_input_validation",
                    "params:training",
                    "params:seed",
                    "params:class_names",
                    "params:run_label",
                    "run_context",
                ],
                outputs="model",
                name="train_model",
            ),
            Node(
                training_curves,
                inputs="model",
                outputs="training_curves",
                name="training_curves",
            ),
        ]
    )
