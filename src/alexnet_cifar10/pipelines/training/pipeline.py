"""The training pipeline: the AlexNet recipe fitted on the train split."""

from kedro.pipeline import Pipeline, node, pipeline

from alexnet_cifar10.pipelines.training.nodes import train_model


def create_pipeline(**kwargs) -> Pipeline:
    """Fit the network and save it with its history and run facts."""
    return pipeline(
        [
            node(
                train_model,
                inputs=[
                    "model_input_train",
                    "model_input_validation",
                    "params:training",
                    "params:seed",
                    "params:run_label",
                ],
                outputs=["model", "training_history", "training_run"],
                name="train_model",
            ),
        ]
    )
