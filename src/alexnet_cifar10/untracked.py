"""Runs without MLflow: the catalog's kedro-mlflow datasets become the plain ones they wrap.

Used where MLflow is not installed (``UntrackedHook``), where tracking is off, and under
ParallelRunner, whose processes cannot receive kedro-mlflow's artifact datasets (classes
made at run time, which do not pickle).
"""

from __future__ import annotations

import logging
from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.io import AbstractDataset, MemoryDataset
from kedro.pipeline import Pipeline

logger = logging.getLogger("alexnet_cifar10.tracking")

MODEL, TEST_METRICS = "model", "test_metrics"


def tracked(pipeline: Pipeline) -> bool:
    """Whether a run of this pipeline trains or evaluates a model, and so is tracked."""
    return bool({MODEL, TEST_METRICS} & pipeline.all_outputs())


def untrack(
    catalog: Any,
    conf_catalog: dict[str, Any],
    save_version: str,
    load_versions: dict[str, str],
    artifacts_only: bool = False,
) -> None:
    """Replace each kedro-mlflow dataset by what it wraps: an artifact by its own dataset
    (its versioned file is saved as usual), metrics by memory (unless ``artifacts_only``)."""
    # Each replacement is meant: Kedro's "Replacing dataset" warning would say otherwise.
    catalog_logger = logging.getLogger("kedro.io.data_catalog")
    catalog_logger.addFilter(_not_replacing)
    try:
        for name, conf in conf_catalog.items():
            kind = str(conf.get("type", "")) if isinstance(conf, dict) else ""
            # kedro-mlflow's own test for its datasets (switch_catalog_logging).
            if not kind.rpartition(".")[2].startswith("Mlflow"):
                continue
            if "dataset" in conf:
                inner = {**conf["dataset"], "versioned": conf.get("versioned", False)}
                catalog[name] = AbstractDataset.from_config(
                    name, inner, load_versions.get(name), save_version
                )
            elif not artifacts_only:
                catalog[name] = MemoryDataset()
    finally:
        catalog_logger.removeFilter(_not_replacing)


def _not_replacing(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith("Replacing dataset")


class UntrackedHook:
    """Where MLflow is not installed: the pipelines run and save as usual, and a run that
    would be tracked says, in one line, that it is not."""

    @hook_impl
    def after_catalog_created(
        self, catalog: Any, conf_catalog: dict, save_version: str, load_versions: dict
    ) -> None:
        """The catalog without kedro-mlflow's datasets."""
        untrack(catalog, conf_catalog, save_version, load_versions)

    @hook_impl
    def before_pipeline_run(self, pipeline: Pipeline) -> None:
        """Say that this run is not tracked."""
        if tracked(pipeline):
            logger.info(
                "MLflow tracking is off: MLflow is not installed (pip install kedro-mlflow)."
            )
