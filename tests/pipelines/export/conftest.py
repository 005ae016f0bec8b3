"""A small trained-looking model (the test environment's network, untrained weights) for
the export and serving tests."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from alexnet_cifar10.model import build_alexnet
from alexnet_cifar10.pipelines.export.nodes import export_onnx
from alexnet_cifar10.provenance import TrainedModel

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CARD = {
    "model_version": "2026-01-02T03.04.05.678Z",
    "run_label": "unit",
    "kedro_env": "test",
    "class_names": CLASSES,
}
SMALL = [{"filters": 4, "kernel_size": 3, "strides": 1, "pool": True, "batch_norm": True}] * 3


@pytest.fixture(scope="session")
def small_model(base_params: dict) -> TrainedModel:
    """The recipe's network at 4 filters a layer, with a card."""
    params = copy.deepcopy(base_params["training"])
    params["model"] |= {"conv_layers": SMALL, "dense_units": [8]}
    network = build_alexnet(
        params["model"],
        num_classes=len(CLASSES),
        augmentation=params["augmentation"],
        dtype_policy="float32",
        seed=0,
    )
    return TrainedModel(network, CARD, pd.DataFrame())


@pytest.fixture(scope="session")
def small_onnx(small_model: TrainedModel) -> bytes:
    """``small_model`` exported to ONNX."""
    return export_onnx(small_model)


@pytest.fixture(scope="session")
def test_images() -> np.ndarray:
    """200 random uint8 images."""
    return np.random.default_rng(0).integers(0, 256, (200, 32, 32, 3), dtype=np.uint8)
