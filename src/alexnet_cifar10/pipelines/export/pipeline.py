"""The export pipeline: the trained network for other runtimes (ONNX, the served MLflow
model, a SavedModel) and the parity report. Its first two nodes end `kedro run`."""

from kedro.pipeline import Node, Pipeline

from alexnet_cifar10.pipelines.export.nodes import (
    export_onnx,
    export_saved_model,
    onnx_parity,
    package_served_model,
)


def serving_pipeline() -> Pipeline:
    """The trained model's ONNX file, packaged as the served model (the end of `kedro run`)."""
    return Pipeline(
        [
            Node(export_onnx, inputs="model", outputs="onnx_model", name="export_onnx"),
            Node(
                package_served_model,
                inputs=["onnx_model", "params:predict", "params:serve"],
                outputs="served_model",
                name="package_served_model",
            ),
        ]
    )


def parity_pipeline() -> Pipeline:
    """ONNX Runtime against Keras on the test set (export's, and promotion's first gate)."""
    return Pipeline(
        [
            Node(
                onnx_parity,
                inputs=[
                    "onnx_model",
                    "model",
                    "model_input_test",
                    "params:evaluate.batch_size",
                    "params:export.parity_tolerance",
                ],
                outputs="export_parity",
                name="onnx_parity",
            )
        ]
    )


def create_pipeline(**kwargs) -> Pipeline:
    """Export the model as ONNX, the served model and a SavedModel; compare ONNX Runtime
    with Keras."""
    return (
        serving_pipeline()
        + Pipeline(
            [
                Node(
                    export_saved_model,
                    inputs="model",
                    outputs="saved_model",
                    name="export_saved_model",
                )
            ]
        )
        + parity_pipeline()
    )
