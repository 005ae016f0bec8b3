"""The evaluate pipeline: a saved model on the untouched test set."""

from kedro.pipeline import Node, Pipeline

from alexnet_cifar10.pipelines.evaluate.nodes import (
    compute_test_metrics,
    plot_accuracy,
    plot_confusion_matrix,
    plot_loss,
    predict_test_set,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Predict the test set, score it and plot the training curves, labelled by the model."""
    return Pipeline(
        [
            Node(
                predict_test_set,
                inputs=[
                    "model",
                    "model_input_test",
                    "params:class_names",
                    "params:evaluate.batch_size",
                    "training_run",
                ],
                outputs="test_predictions",
                name="predict_test_set",
            ),
            Node(
                compute_test_metrics,
                inputs=["test_predictions", "params:class_names", "training_run"],
                outputs="test_metrics",
                name="compute_test_metrics",
            ),
            Node(
                plot_accuracy,
                inputs=["training_history", "training_run"],
                outputs="accuracy_plot",
                name="plot_accuracy",
            ),
            Node(
                plot_loss,
                inputs=["training_history", "training_run"],
                outputs="loss_plot",
                name="plot_loss",
            ),
            Node(
                plot_confusion_matrix,
                inputs=["test_predictions", "params:class_names", "training_run"],
                outputs="confusion_matrix_plot",
                name="plot_confusion_matrix",
            ),
        ]
    )
