"""The robustness pipeline (on demand): a trained model on corrupted test images."""

from kedro.pipeline import Node, Pipeline

from alexnet_cifar10.pipelines.robustness.nodes import (
    evaluate_corruptions,
    plot_corruption_grid,
    plot_robustness_heatmap,
    summarise_robustness,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Corrupt the test images, score the model on each corruption, summarise and plot."""
    return Pipeline(
        [
            Node(
                evaluate_corruptions,
                inputs=[
                    "model",
                    "model_input_test",
                    "params:robustness",
                    "params:evaluate.batch_size",
                    "params:evaluate.calibration",
                    "params:seed",
                ],
                outputs="robustness_results",
                name="evaluate_corruptions",
            ),
            Node(
                summarise_robustness,
                inputs="robustness_results",
                outputs="robustness_summary",
                name="summarise_robustness",
            ),
            Node(
                plot_robustness_heatmap,
                inputs="robustness_results",
                outputs="robustness_heatmap",
                name="plot_robustness_heatmap",
            ),
            Node(
                plot_corruption_grid,
                inputs=["model_input_test", "params:robustness", "params:seed", "params:run_label"],
                outputs="corruption_grid",
                name="plot_corruption_grid",
            ),
        ]
    )
