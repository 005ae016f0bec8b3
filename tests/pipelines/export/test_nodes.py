"""Unit tests of the export nodes and datasets: provenance in each export, the parity
report, and the exports reading back with the probabilities of Keras."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import onnx
import pytest
from kedro.io import DatasetError, Version

from alexnet_cifar10.datasets import OnnxModelDataset, SavedModelDataset
from alexnet_cifar10.inference import OnnxNetwork
from alexnet_cifar10.pipelines.export.nodes import onnx_parity
from alexnet_cifar10.provenance import MixedModelsError, TrainedModel

from .conftest import CARD


def test_the_onnx_file_names_its_model_and_classes(small_onnx: bytes) -> None:
    props = {prop.key: prop.value for prop in onnx.load_from_string(small_onnx).metadata_props}
    assert {key: props[key] for key in ("model_version", "run_label", "kedro_env")} == {
        key: CARD[key] for key in ("model_version", "run_label", "kedro_env")
    }
    assert json.loads(props["class_names"]) == CARD["class_names"]
    assert OnnxNetwork(small_onnx).card == CARD


def test_onnx_runtime_gives_the_probabilities_of_keras(
    small_onnx: bytes, small_model: TrainedModel, test_images: np.ndarray
) -> None:
    keras_probs = small_model.network.predict(test_images, batch_size=64, verbose=0)
    onnx_probs = OnnxNetwork(small_onnx).predict(test_images, batch_size=64)
    assert onnx_probs.shape == (200, 10)
    np.testing.assert_allclose(onnx_probs, keras_probs, atol=1e-5)


def test_the_parity_report_counts_top1_and_the_largest_difference(
    small_onnx: bytes, small_model: TrainedModel, test_images: np.ndarray
) -> None:
    report = onnx_parity(small_onnx, small_model, {"images": test_images}, 64, 1e-4)
    assert report["images"] == report["identical_top1"] == 200
    assert report["top1_mismatches"] == []
    assert 0 <= report["max_abs_probability_difference"] <= 1e-5
    assert report["within_tolerance"] is True
    assert report["model_version"] == CARD["model_version"]
    strict = onnx_parity(small_onnx, small_model, {"images": test_images}, 64, 1e-12)
    assert strict["within_tolerance"] is (strict["max_abs_probability_difference"] <= 1e-12)


def test_the_parity_report_refuses_an_onnx_file_of_another_model(
    small_onnx: bytes, small_model: TrainedModel, test_images: np.ndarray
) -> None:
    other = dataclasses.replace(small_model, card={**CARD, "model_version": "another"})
    with pytest.raises(MixedModelsError, match="exported from model 2026-01-02"):
        onnx_parity(small_onnx, other, {"images": test_images}, 64, 1e-4)


def test_the_onnx_dataset_round_trips_and_refuses_what_is_not_onnx(
    small_onnx: bytes, tmp_path
) -> None:
    dataset = OnnxModelDataset(filepath=str(tmp_path / "alexnet.onnx"), version=Version(None, None))
    dataset.save(small_onnx)
    assert dataset.load() == small_onnx
    with pytest.raises(DatasetError, match="saves a serialized ONNX model"):
        dataset.save("not a model")


def test_the_saved_model_reads_back_with_its_card_and_probabilities(
    small_model: TrainedModel, test_images: np.ndarray, tmp_path
) -> None:
    dataset = SavedModelDataset(filepath=str(tmp_path / "saved"), version=Version(None, None))
    dataset.save(small_model)
    loaded = dataset.load()
    assert {key: loaded.card[key] for key in CARD} == CARD
    np.testing.assert_allclose(
        loaded.network.predict(test_images[:20], verbose=0),
        small_model.network.predict(test_images[:20], verbose=0),
        atol=1e-5,
    )
    with pytest.raises(DatasetError, match="saves TrainedModel"):
        dataset.save(small_model.network)
