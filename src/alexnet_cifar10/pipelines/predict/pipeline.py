"""The predict pipeline: a trained model on a folder of a person's own pictures."""

from kedro.pipeline import Node, Pipeline

from alexnet_cifar10.pipelines.predict.nodes import (
    plot_contact_sheet,
    predict_images,
    prepare_images,
    summarise_predictions,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Bring every picture to 32x32 RGB (or refuse it), classify it, show and count them."""
    return Pipeline(
        [
            Node(
                prepare_images,
                inputs=["user_images", "params:predict.resize"],
                outputs="user_model_input",
                name="prepare_images",
            ),
            Node(
                predict_images,
                inputs=[
                    "model",
                    "user_model_input",
                    "params:predict.batch_size",
                    "params:predict.test_time_augmentation",
                    "temperature",
                    "params:predict.temperature_scaling",
                ],
                outputs="user_predictions",
                name="predict_images",
            ),
            Node(
                plot_contact_sheet,
                inputs=["user_model_input", "user_predictions", "params:predict.contact_sheet"],
                outputs="contact_sheet",
                name="plot_contact_sheet",
            ),
            # Kedro runs the nodes that are ready together in name order: this one after
            # plot_contact_sheet, so its summary line ends the run.
            Node(
                summarise_predictions,
                inputs="user_predictions",
                outputs="prediction_summary",
                name="summarise_predictions",
            ),
        ]
    )
