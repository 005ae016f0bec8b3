"""Fixtures for the tune tests: a tiny network, a small search space, a study in a file."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def tiny_training(recipe_training: dict) -> dict:
    """Default parameters with a tiny network, for fast trials."""
    recipe_training["model"]["conv_layers"] = [
        {"filters": 4, "kernel_size": 3, "strides": 1, "pool": True, "batch_norm": True},
    ]
    recipe_training["model"]["dense_units"] = [8]
    recipe_training.update(batch_size=16, jit_compile=False)
    return recipe_training


@pytest.fixture
def tune(base_params: dict, tmp_path: Path) -> dict:
    """Two 2-epoch trials of a seeded study in an SQLite file of ``tmp_path``."""
    return {
        **base_params["tune"],
        "storage": f"sqlite:///{tmp_path}/study.db",
        "n_trials": 2,
        "epochs": 2,
        "sampler": {"name": "random", "seed": 0, "startup_trials": 0},
        "pruner": {"name": "none", "startup_trials": 0, "warmup_epochs": 0},
        "search_space": {
            "optimizer.learning_rate": {"low": 1.0e-4, "high": 1.0e-2, "log": True},
            "batch_size": {"choices": [8, 16]},
            "model.dropout": {"low": 0.1, "high": 0.5},
        },
    }
