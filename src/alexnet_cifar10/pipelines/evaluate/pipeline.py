"""The evaluate pipeline: a saved model on the untouched test set."""

from kedro.pipeline import Node, Pipeline

from alexnet_cifar10.pipelines.evaluate.nodes import (
    calibration_report,
    compute_test_metrics,
    extract_training_history,
    fit_temperature,
    plot_accuracy,
    plot_confusion_matrix,
    plot_loss,
    plot_reliability,
    predict_test_set,
    tracked_scores,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Predict the test set, score it, calibrate the confidence on the validation split and
    plot the training curves, every output labelled by the model."""
    return Pipeline(
        [
            Node(
                predict_test_set,
                inputs=[
                    "model",
                    "model_input_test",
                    "params:evaluate.batch_size",
                    "params:evaluate.test_time_augmentation",
                ],
                outputs="test_predictions",
                name="predict_test_set",
            ),
            Node(
                compute_test_metrics,
                inputs=[
                    "test_predictions",
                    "params:class_names",
                    "params:evaluate.calibration",
                ],
                outputs="test_metrics",
                name="compute_test_metrics",
            ),
            Node(
                fit_temperature,
                inputs=[
                    "model",
                    "model_input_validation",
                    "params:evaluate.batch_size",
                    "params:evaluate.test_time_augmentation",
                ],
                outputs="temperature",
                name="fit_temperature",
            ),
            Node(
                calibration_report,
                inputs=[
                    "test_predictions",
                    "temperature",
                    "params:class_names",
                    "params:evaluate.calibration",
                ],
                outputs="calibration_metrics",
                name="calibration_report",
            ),
            Node(
                plot_reliability,
                inputs="calibration_metrics",
                outputs="reliability_diagram",
                name="plot_reliability",
            ),
            Node(
                tracked_scores, inputs="test_metrics", outputs="test_scores", name="tracked_scores"
            ),
            Node(
                plot_confusion_matrix,
                inputs=["test_predictions", "params:class_names"],
                outputs="confusion_matrix_plot",
                name="plot_confusion_matrix",
            ),
            Node(
                extract_training_history,
                inputs="model",
                outputs="training_history",
                name="extract_training_history",
            ),
            Node(
                plot_accuracy,
                inputs="training_history",
                outputs="accuracy_plot",
                name="plot_accuracy",
            ),
            Node(plot_loss, inputs="training_history", outputs="loss_plot", name="plot_loss"),
        ]
    )
