"""Nodes of the tune pipeline: this worker's trials of the shared study, then the study's
trials, best parameters and Optuna's plots."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

# Kedro resolves the nodes' annotations whenever it lists a pipeline: Optuna (0.2 s to
# import) loads only when a study runs.
if TYPE_CHECKING:
    from optuna import Study
else:
    Study: TypeAlias = Any

logger = logging.getLogger(__name__)


def run_study(  # noqa: PLR0913
    train: dict[str, np.ndarray],
    validation: dict[str, np.ndarray],
    training: dict[str, Any],
    tune: dict[str, Any],
    seed: int,
    class_names: list[str],
    run_label: str,
    run_context: dict[str, Any],
) -> Study:
    """Run this worker's ``tune.n_trials`` trials of the study; return the whole study."""
    from alexnet_cifar10.pipelines.tune import study as studies

    study = studies.open_study(tune)
    logger.info(
        "Study '%s' (%s): %d trials so far; this worker runs %d, %d epochs each on %d train "
        "and %d validation images",
        study.study_name,
        tune["storage"],
        len(study.trials),
        tune["n_trials"],
        tune["epochs"],
        len(train["labels"]),
        len(validation["labels"]),
    )
    objective = studies.Objective(
        train, validation, training, tune, seed, class_names, run_label, run_context
    )
    studies.optimize(study, objective, tune["n_trials"])
    logger.info("Study '%s' now: %s", study.study_name, studies.describe(study))
    return study


def trials_table(study: Study) -> pd.DataFrame:
    """One row per trial: number, state, val_accuracy (a pruned trial's at the epoch it
    stopped), parameters, times, epochs run and its MLflow run."""
    from alexnet_cifar10.pipelines.tune.study import OBJECTIVE

    table = study.trials_dataframe(multi_index=False)
    table["state"] = table["state"].str.lower()
    names = {"value": OBJECTIVE}
    return table.rename(columns=lambda name: names.get(name, name.removeprefix("user_attrs_")))


def best_parameters(study: Study) -> dict[str, Any]:
    """The best trial's values as a run configuration: ``kedro run --config <this file>``."""
    from alexnet_cifar10.pipelines.tune.study import best_trial
    from alexnet_cifar10.validation import with_values

    best = best_trial(study)
    # Kedro reads the `run` section (the options of `kedro run`) and ignores the others.
    return {
        "run": {
            "env": best.user_attrs["kedro_env"],
            "params": {"training": with_values({}, best.params)},
        },
        "study": {
            "name": study.study_name,
            "trial": best.number,
            "val_accuracy": best.value,
            "epochs": best.user_attrs["epochs_run"],
        },
    }


def optimization_history(study: Study) -> Figure:
    """Optuna's optimization-history plot: every trial's objective and the best so far."""
    from optuna.visualization.matplotlib import plot_optimization_history

    from alexnet_cifar10.pipelines.tune.study import OBJECTIVE, quiet

    with quiet():
        axes = plot_optimization_history(study, target_name=OBJECTIVE)
    return axes.figure


def parameter_importances(study: Study) -> Figure:
    """Optuna's parameter-importance plot over the completed trials."""
    from optuna.visualization.matplotlib import plot_param_importances

    from alexnet_cifar10.pipelines.tune.study import OBJECTIVE, quiet

    with quiet():
        axes = plot_param_importances(study, target_name=OBJECTIVE)
    return axes.figure
