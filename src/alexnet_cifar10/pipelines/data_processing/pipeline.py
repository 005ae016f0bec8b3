"""The data_processing pipeline: the raw labelled pictures (CIFAR-10, or a person's folder
in the labelled environment) to versioned model inputs and a report."""

from kedro.pipeline import Node, Pipeline

from alexnet_cifar10.pipelines.data_processing.nodes import (
    build_model_inputs,
    plot_sample_images,
    summarise_dataset,
)

SPLITS = ["model_input_train", "model_input_validation", "model_input_test"]


def create_pipeline(**kwargs) -> Pipeline:
    """Split and one-hot encode the raw pictures, then describe the splits."""
    return Pipeline(
        [
            Node(
                build_model_inputs,
                inputs=[
                    "raw_images",
                    "params:data_processing",
                    "params:seed",
                    "params:class_names",
                    "params:training.model.input_size",
                ],
                outputs=[*SPLITS, "raw_inventory"],
                name="build_model_inputs",
            ),
            Node(
                summarise_dataset,
                inputs=[*SPLITS, "raw_inventory", "params:class_names", "params:run_label"],
                outputs="dataset_report",
                name="summarise_dataset",
            ),
            Node(
                plot_sample_images,
                inputs=[
                    "model_input_train",
                    "params:class_names",
                    "params:data_processing.sample_images_per_class",
                    "params:run_label",
                ],
                outputs="sample_images",
                name="plot_sample_images",
            ),
        ]
    )
