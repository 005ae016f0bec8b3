"""Run by tests/test_data_parallel.py in its own Python, whose device count is fixed at start:
``python tests/two_device_fit.py OUT_DIR`` with KERAS_BACKEND set, and on JAX
``XLA_FLAGS=--xla_force_host_platform_device_count=2``.

Fits the recipe's network (conf/base training.model) twice with the training node, from
the same untrained network, seed and global batch: on one device, then data parallel
over two. Writes to OUT_DIR the data-parallel model (through the catalog's dataset),
its predictions on a few images, and result.json: the devices each variable lived on
while it trained and afterwards, the run's distribution facts, its log lines and how far
the two fits' weights are apart.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
    import tensorflow as tf

    # Two logical devices on the one CPU, before TensorFlow starts its runtime.
    [cpu] = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras
import numpy as np
from kedro.config import OmegaConfigLoader
from kedro_cli import REPO
from synthetic_cifar import CLASS_NAMES, make_split

from alexnet_cifar10.datasets import KerasModelDataset
from alexnet_cifar10.pipelines.training.nodes import build_model, train_model
from alexnet_cifar10.provenance import TrainedModel
from alexnet_cifar10.settings import CONFIG_LOADER_ARGS

SEED = 0
CONTEXT = {"kedro_env": "two devices"}


def _devices(variable: keras.Variable) -> int:
    value = variable.value
    if keras.backend.backend() == "jax":
        return len(value.sharding.device_set)
    # A MirroredVariable has one copy per replica; a plain one sits on one device.
    return len(getattr(value, "values", [value]))


class DeviceCount(keras.callbacks.Callback):
    """How many devices hold the first kernel of the model that fit trains."""

    count = 0

    def on_train_end(self, logs: dict | None = None) -> None:
        self.count = _devices(self.model.trainable_variables[0])


class Lines(logging.Handler):
    """Keeps the project's log messages."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _relative_difference(ours: list, reference: list, start: list) -> float:
    """|ours - reference| as a share of how far training moved the reference from start."""
    apart = sum(float(((a - b) ** 2).sum()) for a, b in zip(ours, reference, strict=True))
    moved = sum(float(((b - s) ** 2).sum()) for b, s in zip(reference, start, strict=True))
    return (apart / moved) ** 0.5


def main(out: Path) -> None:
    """Fit on one device, then on two; write the model, predictions and result.json."""
    lines = Lines()
    logging.getLogger("alexnet_cifar10").addHandler(lines)
    logging.getLogger("alexnet_cifar10").setLevel(logging.INFO)
    args = {**CONFIG_LOADER_ARGS, "default_run_env": CONFIG_LOADER_ARGS["base_env"]}
    params = OmegaConfigLoader(str(REPO / "conf"), **args)
    training = params["parameters"]["training"]
    # Two steps of global batch 16 (two epochs of one batch) of plain SGD without dropout:
    # the two fits' weights then differ by the rounding of the gradients' sums alone, on
    # any CPU. Adam's first step is +-lr for every weight whatever the gradient's size, so
    # a gradient within rounding of 0 flips a whole step, and how many do depends on the
    # CPU's vector units; dropout masks are drawn per device's share of the batch, not as
    # on one device (measured here on JAX: 5.5e-04 with dropout, 1.1e-05 without).
    training.update(epochs=2, batch_size=16, progress_seconds=1e6)
    training["optimizer"].update(name="sgd", learning_rate=1e-3)
    training["model"]["dropout"] = 0.0
    # 17 validation images: the last one cannot be split over two devices.
    # One batch of 16 a step: the fits shuffle the images in their own ways (the engine
    # feeds them by its own path), and within the one batch their order changes nothing.
    train, validation = make_split(16), make_split(17, 1)

    def untrained() -> keras.Model:
        """The network as build_model makes it: seeded, so the same every time."""
        return build_model(
            training["model"], training["augmentation"], training["precision"], SEED, CLASS_NAMES
        )

    def fit(strategy: str, callbacks: list[keras.callbacks.Callback]) -> TrainedModel:
        params = {**training, "distribution": strategy}
        return train_model(
            untrained(), train, validation, params, SEED, CLASS_NAMES, strategy, CONTEXT,
            callbacks=callbacks,
        )  # fmt: skip

    start = untrained().get_weights()
    one = fit("one_device", []).network
    seen = DeviceCount()
    trained = fit("data_parallel", [seen])
    two, facts = trained.network, trained.card["run"]
    KerasModelDataset(filepath=str(out / "model.keras")).save(two)
    probe = make_split(8, 2)["images"]
    np.save(out / "predictions.npy", two.predict(probe, verbose=0))
    np.save(out / "probe.npy", probe)
    result = {
        "devices_in_fit": seen.count,
        "devices_after": sorted({_devices(variable) for variable in two.variables}),
        "distribution": facts["distribution"],
        "relative_difference": _relative_difference(two.get_weights(), one.get_weights(), start),
        "max_difference": max(
            float(np.abs(a - b).max())
            for a, b in zip(two.get_weights(), one.get_weights(), strict=True)
        ),
        "log": lines.messages,
    }
    (out / "result.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
