"""The features pipeline: the trained network's embeddings, and how much they transfer."""

from kedro.pipeline import Node, Pipeline

from alexnet_cifar10.pipelines.features.nodes import (
    extract_embeddings,
    fit_linear_probe,
    plot_embedding_projection,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Embed every split, fit and score a linear probe, project the test embeddings."""
    return Pipeline(
        [
            Node(
                extract_embeddings,
                inputs=[
                    "model",
                    "model_input_train",
                    "model_input_validation",
                    "model_input_test",
                    "params:features.batch_size",
                ],
                outputs="embeddings",
                name="extract_embeddings",
            ),
            Node(
                fit_linear_probe,
                inputs=["embeddings", "params:features.probe", "params:seed"],
                outputs="linear_probe_metrics",
                name="fit_linear_probe",
            ),
            Node(
                plot_embedding_projection,
                inputs=[
                    "embeddings",
                    "params:class_names",
                    "params:features.projection",
                    "params:seed",
                ],
                outputs="embedding_projection",
                name="plot_embedding_projection",
            ),
        ]
    )
