"""Fixtures for the features tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import matplotlib.pyplot as plt
import pytest
from synthetic_cifar import CLASS_NAMES

TINY = {
    "conv_layers": [
        {"filters": 4, "kernel_size": 3, "strides": 1, "pool": True, "batch_norm": True}
    ],
    "pool_size": 3,
    "pool_strides": 2,
    "input_size": 32,
    "batch_norm_momentum": 0.99,
    "dense_units": [8, 6],
    "dropout": 0.5,
}


@pytest.fixture(scope="session")
def model() -> Any:
    """A tiny untrained network of the recipe's shape: fc1 (8), fc2 (6), softmax."""
    import keras  # the backend starts for the tests that need a network

    from alexnet_cifar10.model import build_alexnet

    keras.utils.set_random_seed(0)
    return build_alexnet(TINY, num_classes=len(CLASS_NAMES))


@pytest.fixture(autouse=True)
def _close_figures() -> Iterator[None]:
    """Close the figures a test drew: pyplot keeps every figure open until told."""
    yield
    plt.close("all")
