"""The recipe's spread and the gap to a plain Keras script of it: variants x seeds, one process.

    python benchmarks/recipe_variants.py --differences          # the two networks, compared
    python benchmarks/recipe_variants.py [--seeds 0 1 2 3] [--variants ...] [--epochs 15]
        [--train-images N] [--cifar-root data/01_raw] [--out FILE.json]

Variants (the published protocol unless a flag shortens it: 15 epochs, batch 64, 40,000
train / 10,000 validation images, the test set scored once after the last epoch):

- ``project``: ``build_model`` + ``train_model`` on the data_processing pipeline's split
  (stratified, seeded), as ``kedro run`` trains;
- ``project_bn_pooled``: the same, BatchNorm after the pooled convolutions only (1st, 2nd
  and 5th), through the ``batch_norm`` switch of each convolution;
- ``plain_script``: the recipe as a plain Keras script writes it: a ``Sequential`` of the
  same layers (BatchNorm after the 1st, 2nd and 5th convolutions), float32 inputs divided by
  255 in numpy, ``model.fit(..., validation_split=0.2)`` on the official training set in
  file order (its last 10,000 images validate).

Each fit's variant, seed, test accuracy, validation accuracy per epoch, fit seconds, device,
backend and versions go to the JSON file; a summary (mean +- std per variant) is printed.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
from keras import layers

from alexnet_cifar10.datasets import CIFAR10Dataset
from alexnet_cifar10.model import build_alexnet
from bench_common import ROOT, load_parameters, load_splits, train_with_nodes

VARIANTS = ("project", "project_bn_pooled", "plain_script")


def plain_script_model(num_classes: int) -> keras.Model:
    """The network as a plain Keras script of the recipe builds it."""
    model = keras.Sequential(name="plain_script")
    model.add(keras.Input(shape=(32, 32, 3)))
    for filters, kernel, pooled in [(96, 3, 1), (256, 5, 1), (384, 3, 0), (384, 3, 0), (256, 3, 1)]:
        model.add(layers.Conv2D(filters, kernel, padding="same", activation="relu"))
        if pooled:
            model.add(layers.BatchNormalization())
            model.add(layers.MaxPooling2D(pool_size=3, strides=2))
    model.add(layers.Flatten())
    for _ in range(2):
        model.add(layers.Dense(1024, activation="relu"))
        model.add(layers.Dropout(0.5))
    model.add(layers.Dense(num_classes, activation="softmax"))
    return model


def _kind_configs(model: keras.Model) -> list[tuple[str, dict[str, Any]]]:
    """Each layer's class and config, without names, dtypes and seeds."""
    ignored = {"name", "dtype", "trainable", "seed"}
    return [
        (type(layer).__name__, {k: v for k, v in layer.get_config().items() if k not in ignored})
        for layer in model.layers
        if type(layer).__name__ != "InputLayer"
    ]


def network_differences(project: keras.Model, plain: keras.Model) -> list[str]:
    """Layer by layer (after aligning on each model's sequence of layer kinds): what one has
    that the other lacks, and every config value that differs."""
    lines = []
    ours, theirs = _kind_configs(project), _kind_configs(plain)
    j = 0
    for i, (kind, config) in enumerate(ours):
        if j < len(theirs) and theirs[j][0] == kind:
            for key in sorted(set(config) | set(theirs[j][1])):
                if config.get(key) != theirs[j][1].get(key):
                    lines.append(
                        f"layer {i} {kind}: {key} = {config.get(key)!r} in the project, "
                        f"{theirs[j][1].get(key)!r} in the plain script"
                    )
            j += 1
        else:
            lines.append(f"layer {i} {kind} ({project.layers[i + 1].name}): project only")
    lines += [f"{kind}: plain script only" for kind, _ in theirs[j:]]
    lines.append(f"parameters: {project.count_params():,} project, {plain.count_params():,} plain")
    return lines


class TestOnce(keras.callbacks.Callback):
    """Validation accuracy per epoch, from the fit's own logs."""

    def __init__(self) -> None:
        super().__init__()
        self.validation: list[float] = []

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.validation.append(float((logs or {})["val_accuracy"]))


def _test_accuracy(network: keras.Model, test: dict[str, np.ndarray], scale: bool) -> float:
    images = test["images"].astype("float32") / 255 if scale else test["images"]
    probabilities = network.predict(images, batch_size=256, verbose=0)
    return float(np.mean(probabilities.argmax(1) == test["labels"].argmax(1)))


def fit_variant(variant: str, seed: int, params: dict, data: dict, epochs: int) -> dict:
    """One fit of one variant; its result row."""
    training = {**params["training"], "epochs": epochs}
    keras.backend.clear_session()
    watch = TestOnce()
    start = time.perf_counter()
    if variant == "plain_script":
        keras.utils.set_random_seed(seed)
        network = plain_script_model(10)
        network.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
        images, labels = data["plain"]
        network.fit(images, labels, batch_size=64, epochs=epochs, validation_split=0.2,
                    callbacks=[watch], verbose=0)  # fmt: skip
    else:
        if variant == "project_bn_pooled":
            convs = [{**c, "batch_norm": c["pool"]} for c in training["model"]["conv_layers"]]
            training["model"] = {**training["model"], "conv_layers": convs}
        trained = train_with_nodes(data["train"], data["validation"], training, seed, variant,
                                   callbacks=[watch])  # fmt: skip
        network = trained.network
    seconds = time.perf_counter() - start
    return {
        "variant": variant,
        "seed": seed,
        "epochs": epochs,
        "parameters": int(network.count_params()),
        "test_accuracy": _test_accuracy(network, data["test"], variant == "plain_script"),
        "validation_accuracy": watch.validation,
        "fit_seconds": round(seconds, 2),
    }


def load_data(params: dict, cifar_root: Path, train_images: int | None) -> dict:
    """The pipeline's splits, and the plain script's arrays (official order, float32)."""
    train, validation, test = load_splits(cifar_root, params, (train_images, None, None))
    raw = CIFAR10Dataset(path=str(cifar_root)).load()
    count = None if train_images is None else round(train_images / 0.8)
    images = raw["train_images"][:count].astype("float32") / 255
    labels = np.eye(10, dtype="float32")[raw["train_labels"][:count]]
    return {"train": train, "validation": validation, "test": test, "plain": (images, labels)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--differences", action="store_true")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--train-images", type=int, default=None)
    # The folder holding cifar-10-batches-py.
    parser.add_argument("--cifar-root", type=Path, default=ROOT / "data/01_raw")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks/results/recipe_variants.json"
    )
    args = parser.parse_args()
    params = load_parameters("base")
    if args.differences:
        training = params["training"]
        project = build_alexnet(training["model"], 10, training["augmentation"], "float32", 0)
        for line in network_differences(project, plain_script_model(10)):
            print(line)
        return
    data = load_data(params, args.cifar_root, args.train_images)
    rows = []
    for seed in args.seeds:
        for variant in args.variants:
            rows.append(fit_variant(variant, seed, params, data, args.epochs))
            print(json.dumps(rows[-1]), flush=True)
    summary = {
        variant: {
            "mean": statistics.mean(
                acc := [r["test_accuracy"] for r in rows if r["variant"] == variant]
            ),
            "std": statistics.stdev(acc) if len(acc) > 1 else 0.0,
            "fits": len(acc),
        }
        for variant in args.variants
    }
    for variant, stats in summary.items():
        print(
            f"{variant:18s} test accuracy {stats['mean']:.4f} +- {stats['std']:.4f} "
            f"({stats['fits']} fits)"
        )
    machine = {
        "device": keras.distribution.list_devices()[0],
        "backend": keras.backend.backend(),
        "keras": keras.__version__,
        "platform": platform.platform(),
        "train_images": len(data["train"]["images"]),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"machine": machine, "summary": summary, "fits": rows}, indent=2)
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
