"""Project pipelines."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable

from kedro.framework.project import pipelines
from kedro.pipeline import Pipeline

import alexnet_cifar10.pipelines
from alexnet_cifar10.pipelines.export.pipeline import serving_pipeline

# `kedro run` is the recipe: data, training, evaluation, then the model packaged for
# `kedro serve` and promoted if it passes the gates (promote). The others run on demand
# with --pipelines: predict needs pictures in data/01_raw/user_images, features a trained
# model.
RECIPE = ("data_processing", "training", "evaluate")


class UnknownPipelineError(ValueError):
    """A pipeline name that the registry does not have."""


def register_pipelines() -> dict[str, Pipeline]:
    """Register the project's pipelines: every package of ``pipelines/``, and the recipe
    as ``__default__``.

    All of them, whichever a run names: Kedro's ``find_pipelines`` would import only
    those, and answer a mistyped name with an ImportError about a module that does not
    exist. The nodes modules import no deep-learning backend, so this costs little.
    """
    registered = {
        module.name: importlib.import_module(
            f"{alexnet_cifar10.pipelines.__name__}.{module.name}"
        ).create_pipeline()
        for module in pkgutil.iter_modules(alexnet_cifar10.pipelines.__path__)
    }
    recipe = sum((registered[name] for name in RECIPE), Pipeline([]))
    registered["__default__"] = recipe + serving_pipeline() + registered["promote"]
    return registered


def check_pipeline_names(names: Iterable[str]) -> None:
    """Raise ``UnknownPipelineError``, listing the pipelines, if a name is not one of them."""
    unknown = [name for name in names if name not in pipelines]
    if unknown:
        raise UnknownPipelineError(
            f"No pipeline named {', '.join(map(repr, unknown))}; the pipelines are: "
            f"{', '.join(sorted(pipelines))}."
        )


def producers() -> dict[str, str]:
    """The pipeline that makes each dataset, for messages about missing inputs."""
    made_by: dict[str, str] = {}
    for name, pipeline in register_pipelines().items():
        if name != "__default__":
            for dataset in pipeline.all_outputs():
                made_by.setdefault(dataset, name)
    return made_by
