"""The training and evaluate pipelines, and the served model, run by SequentialRunner on a
small catalog."""

from __future__ import annotations

from pathlib import Path

from kedro.io import DataCatalog, MemoryDataset, Version
from kedro.runner import SequentialRunner
from synthetic_cifar import CLASS_NAMES, make_split

from alexnet_cifar10.datasets import CSVDataset, JSONDataset, TrainedModelDataset
from alexnet_cifar10.pipelines import evaluate, training
from alexnet_cifar10.pipelines.export.pipeline import serving_pipeline

VERSION = "2026-01-02T03.04.05.678Z"


def test_training_then_evaluate(tiny_training: dict, base_params: dict, tmp_path: Path) -> None:
    inputs = {
        "model_input_train": make_split(48),
        "model_input_validation": make_split(16, 1),
        "model_input_test": make_split(20, 2),
        "run_context": {"kedro_env": "slice"},
        "params:training": tiny_training,
        "params:training.model": tiny_training["model"],
        "params:training.augmentation": tiny_training["augmentation"],
        "params:training.precision": tiny_training["precision"],
        "params:seed": 0,
        "params:run_label": "slice run",
        "params:class_names": CLASS_NAMES,
        "params:evaluate.batch_size": 8,
        "params:evaluate.test_time_augmentation": {"horizontal_flip": True, "shift": 0},
        "params:evaluate.calibration": {"bins": 15},
        "params:predict": base_params["predict"],
        "params:serve": base_params["serve"],
    }
    catalog = DataCatalog(datasets={k: MemoryDataset(v) for k, v in inputs.items()})
    catalog["model"] = TrainedModelDataset(
        filepath=str(tmp_path / "alexnet.keras"), version=Version(None, VERSION)
    )
    catalog["training_history"] = CSVDataset(filepath=str(tmp_path / "history.csv"))
    catalog["test_metrics"] = JSONDataset(filepath=str(tmp_path / "test_metrics.json"))
    outputs = (
        "untrained_model",
        "model_summary",
        "test_predictions",
        "accuracy_plot",
        "loss_plot",
        "confusion_matrix_plot",
        "served_model",
    )
    for name in outputs:
        catalog[name] = MemoryDataset(copy_mode="assign")
    # What `kedro run` runs after data_processing.
    pipeline = training.create_pipeline() + evaluate.create_pipeline() + serving_pipeline()
    order = [node.name for node in pipeline.nodes]
    assert order.index("build_model") < order.index("train_model")
    SequentialRunner().run(pipeline, catalog)
    metrics = catalog.load("test_metrics")
    assert metrics["test_images"] == 20
    assert 0 <= metrics["accuracy"] <= 1
    labels = ("slice run", "slice", VERSION)
    assert (metrics["run_label"], metrics["kedro_env"], metrics["model_version"]) == labels
    history = catalog.load("training_history")
    assert history[
        ["run_label", "kedro_env", "model_version"]
    ].drop_duplicates().values.tolist() == [list(labels)]
    assert VERSION in catalog.load("accuracy_plot").get_axes()[0].get_title()
    assert len(catalog.load("confusion_matrix_plot").get_axes()[0].texts) == 100
    assert catalog.load("model_summary")["layer"].iloc[-1] == "total"
    # The served model names the model it was packaged from, through its ONNX file.
    assert catalog.load("served_model").labels == dict(
        zip(("run_label", "kedro_env", "model_version"), labels, strict=True)
    )
