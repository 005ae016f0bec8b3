"""The evaluate pipeline: the latest saved model on the untouched test set."""

from kedro.pipeline import Pipeline, node, pipeline

from alexnet_cifar10.pipelines.evaluate.nodes import (
    compute_test_metrics,
    plot_accuracy,
    plot_confusion_matrix,
    plot_loss,
    predict_test_set,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Predict the test set, score it and plot the training curves."""
    return pipeline(
        [
            node(
                predict_test_set,
                inputs=[
                    "model",
                    "model_input_test",
                    "params:class_names",
                    "params:evaluate.batch_size",
                ],
                outputs="test_predictions",
                name="predict_test_set",
            ),
            node(
                compute_test_metrics,
                inputs=["test_predictions", "params:class_names", "params:run_label"],
                outputs="test_metrics",
                name="compute_test_metrics",
            ),
            node(
                plot_accuracy,
                inputs=["training_history", "params:run_label"],
                outputs="accuracy_plot",
                name="plot_accuracy",
            ),
            node(
                plot_loss,
                inputs=["training_history", "params:run_label"],
                outputs="loss_plot",
                name="plot_loss",
            ),
            node(
                plot_confusion_matrix,
                inputs=["test_predictions", "params:class_names", "params:run_label"],
                outputs="confusion_matrix_plot",
                name="plot_confusion_matrix",
            ),
        ]
    )
