"""Fixtures for the training tests."""

from __future__ import annotations

import copy

import pytest


def _tiny(training: dict) -> dict:
    """``training`` with a tiny network and one epoch, for fast fits."""
    training["model"]["conv_layers"] = [
        {"filters": 4, "kernel_size": 3, "strides": 1, "pool": True, "batch_norm": True},
        {"filters": 4, "kernel_size": 3, "strides": 1, "pool": True, "batch_norm": True},
    ]
    training["model"]["dense_units"] = [8, 8]
    training.update(epochs=1, batch_size=16, jit_compile=False)
    return training


@pytest.fixture
def tiny_training(recipe_training: dict) -> dict:
    """Default parameters with a tiny network and one epoch, for fast fits."""
    return _tiny(recipe_training)


@pytest.fixture(scope="module")
def tiny_training_once(base_params: dict) -> dict:
    """The same, for a module's fixtures (not to be changed)."""
    return _tiny(copy.deepcopy(base_params["training"]))
