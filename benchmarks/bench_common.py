"""Helpers shared by the benchmark scripts: the project's parameters, data and timers."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
from kedro.config import OmegaConfigLoader

from alexnet_cifar10.datasets import CIFAR10Dataset
from alexnet_cifar10.pipelines.data_processing.nodes import build_model_inputs
from alexnet_cifar10.pipelines.training.nodes import build_model, train_model
from alexnet_cifar10.provenance import TrainedModel
from alexnet_cifar10.settings import CONFIG_LOADER_ARGS

ROOT = Path(__file__).resolve().parents[1]
Split = dict[str, np.ndarray]


def load_parameters(env: str) -> dict[str, Any]:
    """The parameters of config env ``env`` ('base': the published recipe), merged as Kedro does."""
    loader = OmegaConfigLoader(
        conf_source=str(ROOT / "conf"),
        env=None if env == CONFIG_LOADER_ARGS["base_env"] else env,
        **CONFIG_LOADER_ARGS,
    )
    return loader["parameters"]


def short_training(params: dict[str, Any], epochs: int, batch_size: int | None) -> dict[str, Any]:
    """The config's training parameters for a short fit: ``epochs`` epochs, ``batch_size``
    if given, and a warm-up shorter than the run, as the node requires."""
    training = {**params["training"], "epochs": epochs}
    if batch_size:
        training["batch_size"] = batch_size
    schedule = training["lr_schedule"]
    warmup = min(schedule.get("warmup_epochs", 0), epochs - 1)
    training["lr_schedule"] = {**schedule, "warmup_epochs": warmup}
    return training


def _cap(split: Split, limit: int | None, seed: int) -> Split:
    if limit is None or limit >= len(split["images"]):
        return split
    keep = np.sort(np.random.default_rng(seed).permutation(len(split["images"]))[:limit])
    return {key: value[keep] for key, value in split.items()}


def load_splits(
    cifar_root: str | Path,
    params: dict[str, Any],
    limits: tuple[int | None, int | None, int | None] = (None, None, None),
) -> tuple[Split, Split, Split]:
    """Train/validation/test as the data_processing pipeline makes them, each capped if asked."""
    data = CIFAR10Dataset(path=str(cifar_root)).load()
    splits = build_model_inputs(
        data, params["data_processing"], params["seed"], params["class_names"]
    )
    train, validation, test = (
        _cap(s, limit, params["seed"]) for s, limit in zip(splits, limits, strict=True)
    )
    return train, validation, test


def train_with_nodes(
    train: Split,
    validation: Split,
    training: dict[str, Any],
    seed: int,
    label: str,
    callbacks: list[keras.callbacks.Callback] | None = None,
) -> TrainedModel:
    """Build and fit the network with the training pipeline's own nodes, as a run does."""
    class_names = [str(label) for label in range(train["labels"].shape[1])]
    model = build_model(
        training["model"], training["augmentation"], training["precision"], seed, class_names
    )
    context = {"kedro_env": "benchmark"}
    return train_model(
        model, train, validation, training, seed, class_names, label, context, callbacks=callbacks
    )


class EpochTimer(keras.callbacks.Callback):
    """Wall seconds of each epoch (validation included); no per-batch hook, so Keras keeps
    dispatching batches asynchronously."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []
        self._start = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        # Keras turns the epoch's logs into Python floats before this call, so the last
        # step has finished on the device by now.
        self.seconds.append(time.perf_counter() - self._start)


def compare_arms(
    arms: dict[str, Callable[[], list[float]]], rounds: int, images: int
) -> dict[str, tuple[float, float]]:
    """Fit the arms in turn for ``rounds`` rounds (each call returns its epochs' seconds),
    printing every fit's epochs; print and return each arm's images/s over its median and
    its fastest epoch, epoch 1 (compilation, warm-up) left out."""
    width = max(len(name) for name in arms)
    epochs: dict[str, list[float]] = {name: [] for name in arms}
    for round_index in range(rounds):
        for name, fit in arms.items():
            keras.backend.clear_session()
            seconds = fit()
            epochs[name].extend(seconds[1:])
            shown = ", ".join(f"{s:.2f}" for s in seconds)
            print(f"round {round_index + 1} {name:{width}s} epoch seconds [{shown}]", flush=True)
    # Median: the typical epoch. Fastest: the least disturbed one, on a shared machine.
    print(f"\n{'arm':{width}s} {'img/s (median epoch)':>21s} {'img/s (fastest epoch)':>22s}")
    rates = {
        name: (images / statistics.median(values), images / min(values))
        for name, values in epochs.items()
    }
    for name, (median, fastest) in rates.items():
        print(f"{name:{width}s} {median:21,.1f} {fastest:22,.1f}")
    return rates
