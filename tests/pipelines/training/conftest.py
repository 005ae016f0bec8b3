"""Fixtures for the training tests: the base parameters and tiny data."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
from kedro.config import OmegaConfigLoader

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def base_params() -> dict:
    """The project's default (recipe) parameters from conf/base."""
    loader = OmegaConfigLoader(str(REPO / "conf"), base_env="base", default_run_env="base")
    return loader["parameters"]


@pytest.fixture
def recipe_training(base_params: dict) -> dict:
    """A fresh copy of the default training parameters."""
    return copy.deepcopy(base_params["training"])


@pytest.fixture
def tiny_training(recipe_training: dict) -> dict:
    """Default parameters with a tiny network and one epoch, for fast fits."""
    recipe_training["model"]["conv_layers"] = [
        {"filters": 4, "kernel_size": 3, "strides": 1, "pool": True},
        {"filters": 4, "kernel_size": 3, "strides": 1, "pool": True},
    ]
    recipe_training["model"]["dense_units"] = [8, 8]
    recipe_training.update(epochs=1, batch_size=16, jit_compile=False)
    return recipe_training


def make_split(num_images: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Random uint8 images with one-hot labels."""
    rng = np.random.default_rng(seed)
    labels = np.eye(10, dtype=np.float32)[rng.integers(0, 10, num_images)]
    return {
        "images": rng.integers(0, 256, (num_images, 32, 32, 3), dtype=np.uint8),
        "labels": labels,
    }
