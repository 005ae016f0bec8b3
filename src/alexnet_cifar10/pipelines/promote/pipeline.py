"""The promote pipeline: the quality gates, then the registry's alias (the end of `kedro run`)."""

from kedro.pipeline import Node, Pipeline

from alexnet_cifar10.pipelines.export.pipeline import parity_pipeline
from alexnet_cifar10.pipelines.promote.nodes import check_gates


def create_pipeline(**kwargs) -> Pipeline:
    """Compare ONNX Runtime with Keras, check the gates, and move the alias if they pass."""
    return parity_pipeline() + Pipeline(
        [
            Node(
                check_gates,
                inputs=[
                    "test_metrics",
                    "calibration_metrics",
                    "export_parity",
                    "served_model",
                    "params:promote",
                ],
                outputs=["promotion_report", "champion"],
                name="check_gates",
            )
        ]
    )
