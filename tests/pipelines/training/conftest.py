"""Fixtures for the training tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def tiny_training(recipe_training: dict) -> dict:
    """Default parameters with a tiny network and one epoch, for fast fits."""
    recipe_training["model"]["conv_layers"] = [
        {"filters": 4, "kernel_size": 3, "strides": 1, "pool": True, "batch_norm": True},
        {"filters": 4, "kernel_size": 3, "strides": 1, "pool": True, "batch_norm": True},
    ]
    recipe_training["model"]["dense_units"] = [8, 8]
    recipe_training.update(epochs=1, batch_size=16, jit_compile=False)
    return recipe_training
