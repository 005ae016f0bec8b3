"""The data_processing pipeline: raw CIFAR-10 to versioned model inputs and a report."""

from kedro.pipeline import Node, Pipeline

from alexnet_cifar10.pipelines.data_processing.nodes import (
    build_model_inputs,
    plot_sample_images,
    split_dataset,
    summarise_dataset,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Split, one-hot encode and describe CIFAR-10."""
    return Pipeline(
        [
            Node(
                split_dataset,
                inputs=["cifar10_raw", "params:data_processing", "params:seed"],
                outputs="dataset_split",
                name="split_dataset",
            ),
            Node(
                build_model_inputs,
                inputs=["cifar10_raw", "dataset_split", "params:class_names"],
                outputs=["model_input_train", "model_input_validation", "model_input_test"],
                name="build_model_inputs",
            ),
            Node(
                summarise_dataset,
                inputs=["cifar10_raw", "dataset_split", "params:class_names", "params:run_label"],
                outputs="dataset_report",
                name="summarise_dataset",
            ),
            Node(
                plot_sample_images,
                inputs=[
                    "cifar10_raw",
                    "params:class_names",
                    "params:data_processing.sample_images_per_class",
                ],
                outputs="sample_images",
                name="plot_sample_images",
            ),
        ]
    )
