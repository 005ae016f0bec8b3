"""Fine-tuning: which weights each phase moves, the source model and its record."""

from __future__ import annotations

from pathlib import Path

import keras
import mlflow
import numpy as np
import pytest
from kedro.io import DatasetError
from synthetic_cifar import CLASS_NAMES, make_split

from alexnet_cifar10.datasets import TrainedModelDataset
from alexnet_cifar10.pipelines.training.fine_tuning import load_source
from alexnet_cifar10.pipelines.training.nodes import build_model, class_weights, train_model
from alexnet_cifar10.validation import ParameterError

NEW_CLASSES = ["left", "right"]
CONTEXT = {"kedro_env": "test"}


def _train(training: dict, classes: list[str], train: dict, **kwargs: object):
    model = build_model(training["model"], training["augmentation"], "float32", 0, classes)
    validation = {key: value[:8] for key, value in train.items()}
    return train_model(model, train, validation, training, 0, classes, "TEST", CONTEXT, **kwargs)


def _two_classes(count: int) -> dict:
    split = make_split(count, seed=3)
    return {**split, "labels": np.eye(2, dtype=np.float32)[np.arange(count) % 2]}


@pytest.fixture(scope="module")
def source(tiny_training_once: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained 10-class model saved as train_model's archive."""
    path = tmp_path_factory.mktemp("source") / "source.keras"
    trained = _train(tiny_training_once, CLASS_NAMES, make_split(32))
    TrainedModelDataset(filepath=str(path)).save(trained)
    return path


class WeightsPerEpoch(keras.callbacks.Callback):
    """Every layer's weights at the end of each epoch."""

    def __init__(self) -> None:
        super().__init__()
        self.epochs: list[dict[str, list[np.ndarray]]] = []

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.epochs.append({layer.name: layer.get_weights() for layer in self.model.layers})


def _same(first: list[np.ndarray], second: list[np.ndarray]) -> bool:
    return all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))


def test_the_head_trains_alone_then_every_layer_but_batch_norm(
    tiny_training: dict, source: Path
) -> None:
    start = TrainedModelDataset(filepath=str(source)).load().network
    before = {layer.name: layer.get_weights() for layer in start.layers}
    tiny_training["fine_tune"] = {
        "from": str(source),
        "head": {"epochs": 1, "learning_rate": 0.01},
        "all_layers": {"epochs": 1, "learning_rate": 0.01},
    }
    seen = WeightsPerEpoch()
    trained = _train(tiny_training, NEW_CLASSES, _two_classes(32), callbacks=[seen])
    head, everything = seen.epochs
    for name in ("conv1", "conv2", "bn1", "bn2"):  # carried over, frozen in the head phase
        assert _same(head[name], before[name]), name
    for name in ("conv1", "conv2"):  # then trained
        assert not _same(everything[name], head[name]), name
    for name in ("bn1", "bn2"):  # inference mode throughout: moving statistics kept too
        assert _same(everything[name], before[name]), name
    assert trained.network.output_shape == (None, 2)
    assert not _same(head["fc1"], everything["fc1"])
    assert trained.history["phase"].tolist() == ["head", "all"]
    assert trained.history["epoch"].tolist() == [1, 2]
    record = trained.card["fine_tuned_from"]
    assert record["source"] == str(source) and record["class_names"] == CLASS_NAMES
    assert record["layers_carried"] == ["conv1", "bn1", "conv2", "bn2"]


def test_a_model_from_scratch_records_no_source(tiny_training: dict) -> None:
    trained = _train(tiny_training, NEW_CLASSES, _two_classes(16))
    assert trained.card["fine_tuned_from"] is None and "phase" not in trained.history


def test_the_source_may_be_an_mlflow_run_artifact(
    tiny_training: dict, source: Path, tmp_path: Path
) -> None:
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        with mlflow.start_run() as run:
            mlflow.log_artifact(str(source))
        loaded = load_source(f"runs:/{run.info.run_id}/source.keras")
    finally:
        mlflow.set_tracking_uri(None)
    assert loaded.card["class_names"] == CLASS_NAMES


def test_a_missing_source_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"no trained model at '.*nowhere.keras'"):
        load_source(str(tmp_path / "nowhere.keras"))


def test_a_source_of_another_network_is_refused(tiny_training: dict, source: Path) -> None:
    tiny_training["model"]["conv_layers"][0]["filters"] = 6
    tiny_training["fine_tune"]["from"] = str(source)
    with pytest.raises(ParameterError, match=r"layer 'conv1' has weights \[\(3, 3, 3, 6\)"):
        _train(tiny_training, NEW_CLASSES, _two_classes(16))


def test_balanced_class_weights_make_every_class_count_alike() -> None:
    labels = np.eye(3, dtype=np.float32)[[0, 0, 0, 0, 1, 1, 2, 2]]
    weights = class_weights(labels, "balanced")
    assert weights == pytest.approx({0: 8 / 12, 1: 8 / 6, 2: 8 / 6})
    totals = [weights[c] * n for c, n in enumerate(labels.sum(axis=0))]
    assert totals == pytest.approx([8 / 3] * 3)
    assert class_weights(labels, "none") is None
