"""Project pipelines."""

from __future__ import annotations

import importlib
import pkgutil

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

import alexnet_cifar10.pipelines

# `kedro run` is the recipe: data, training, evaluation. The others run on demand with
# --pipelines: predict needs pictures in data/01_raw/user_images, features a trained model.
RECIPE = ("data_processing", "training", "evaluate")


def register_pipelines() -> dict[str, Pipeline]:
    """Register the project's pipelines.

    Returns:
        A mapping from pipeline names to ``Pipeline`` objects.
    """
    pipelines = find_pipelines(raise_errors=True)
    # Kedro loads only the pipelines a run names (all of them for __default__).
    recipe = [pipelines[name] for name in RECIPE if name in pipelines]
    pipelines["__default__"] = sum(recipe, Pipeline([]))
    return pipelines


def producers() -> dict[str, str]:
    """The pipeline that makes each dataset, for messages about missing inputs.

    Read from every pipeline package, whatever subset of pipelines the current run
    loaded (Kedro loads only the requested ones).
    """
    made_by: dict[str, str] = {}
    for module in pkgutil.iter_modules(alexnet_cifar10.pipelines.__path__):
        package = importlib.import_module(f"alexnet_cifar10.pipelines.{module.name}")
        for dataset in package.create_pipeline().all_outputs():
            made_by.setdefault(dataset, module.name)
    return made_by
