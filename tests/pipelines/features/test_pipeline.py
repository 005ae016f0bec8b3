"""The features pipeline run by SequentialRunner on a small catalog."""

from __future__ import annotations

import pandas as pd
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from synthetic_cifar import CLASS_NAMES, make_split

from alexnet_cifar10.pipelines.features import create_pipeline
from alexnet_cifar10.provenance import TrainedModel

LABELS = {"run_label": "slice", "kedro_env": "test", "model_version": "v1"}


def test_embeddings_then_probe_and_projection(model) -> None:
    inputs = {
        "model": TrainedModel(model, {**LABELS, "class_names": CLASS_NAMES}, pd.DataFrame()),
        "model_input_train": make_split(40),
        "model_input_validation": make_split(20, 1),
        "model_input_test": make_split(20, 2),
        "params:class_names": CLASS_NAMES,
        "params:features.batch_size": 16,
        "params:features.probe": {"C": [1.0], "max_iter": 100},
        "params:features.projection": {"max_points": 50},
        "params:seed": 0,
    }
    catalog = DataCatalog(
        datasets={name: MemoryDataset(value, copy_mode="assign") for name, value in inputs.items()}
    )
    for name in ("embeddings", "linear_probe_metrics", "embedding_projection"):
        catalog[name] = MemoryDataset(copy_mode="assign")
    SequentialRunner().run(create_pipeline(), catalog)
    metrics = catalog.load("linear_probe_metrics")
    assert metrics["images"] == {"train": 40, "validation": 20, "test": 20}
    assert (metrics["embedding_layer"], metrics["embedding_size"]) == ("fc2", 6)
    assert 0 <= metrics["test_accuracy"] <= 1 and metrics["model_version"] == "v1"
    assert "20 test images" in catalog.load("embedding_projection").get_axes()[0].get_title()
