"""The tune pipeline: an Optuna study over the training parameters (`kedro run --pipelines
tune`), which several workers can share."""

from kedro.pipeline import Node, Pipeline

from alexnet_cifar10.pipelines.data_processing.nodes import take_fraction
from alexnet_cifar10.pipelines.tune.nodes import (
    best_parameters,
    optimization_history,
    parameter_importances,
    run_study,
    trials_table,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Take the trials' subset, run this worker's trials, then report on the whole study."""
    subsets = [
        Node(
            take_fraction,
            inputs=[f"model_input_{split}", "params:tune.subset_fraction", "params:seed"],
            outputs=f"tuning_{split}",
            name=f"tuning_{split}",
        )
        for split in ("train", "validation")
    ]
    return Pipeline(
        [
            *subsets,
            Node(
                run_study,
                inputs=[
                    "tuning_train",
                    "tuning_validation",
                    "params:training",
                    "params:tune",
                    "params:seed",
                    "params:class_names",
                    "params:run_label",
                    "run_context",
                ],
                outputs="study",
                name="run_study",
            ),
            Node(trials_table, inputs="study", outputs="tuning_trials", name="trials_table"),
            Node(
                best_parameters, inputs="study", outputs="best_parameters", name="best_parameters"
            ),
            Node(
                optimization_history,
                inputs="study",
                outputs="optimization_history_plot",
                name="optimization_history",
            ),
            Node(
                parameter_importances,
                inputs="study",
                outputs="parameter_importance_plot",
                name="parameter_importances",
            ),
        ]
    )
