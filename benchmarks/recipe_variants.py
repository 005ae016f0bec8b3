"""The recipe's spread and the gap to a plain Keras script of it: variants x seeds, one process.

    python benchmarks/recipe_variants.py --differences          # the two networks, compared
    python benchmarks/recipe_variants.py [--seeds 0 1 2 3] [--variants ...] [--epochs 15]
        [--train-share F] [--cifar-root data/01_raw] [--out FILE.json]

Variants (the published protocol unless a flag shortens it: 15 epochs, batch 64, 40,000
train / 10,000 validation images, the test set scored once after the last epoch).
``--train-share F`` first keeps a seeded, stratified share F of the official training set
(in file order), which every variant then splits as it would the whole set; the test set
stays whole:

- ``project``: ``build_model`` + ``train_model`` on the data_processing pipeline's split
  (stratified, seeded), as ``kedro run`` trains;
- ``project_bn_pooled``: the same, BatchNorm after the pooled convolutions only (1st, 2nd
  and 5th), through the ``batch_norm`` switch of each convolution;
- ``plain_script``: the recipe as a plain Keras script writes it: a ``Sequential`` of the
  same layers (BatchNorm after the 1st, 2nd and 5th convolutions), float32 inputs divided by
  255 in numpy, ``model.fit(..., validation_split=0.2)`` on the official training set in
  file order (its last 10,000 images validate);
- ``plain_script_stratified``: the plain script on the project's split (the same arrays as
  ``project``), so that the split's share of the gap shows apart from the network's.

Each fit's variant, seed, test accuracy (after the last epoch), validation and test accuracy
per epoch (the test curve is recorded only, never used to choose anything), fit seconds,
seconds of each epoch, device, backend and versions go to the JSON file; a summary (mean +-
std per variant) is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import keras
import numpy as np
from keras import layers

from alexnet_cifar10.datasets import CIFAR10Dataset
from alexnet_cifar10.model import build_alexnet
from alexnet_cifar10.pipelines.data_processing.nodes import build_model_inputs
from bench_common import ROOT, load_parameters, train_with_nodes

VARIANTS = ("project", "project_bn_pooled", "plain_script", "plain_script_stratified")


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


def _test_accuracy(network: keras.Model, test: dict[str, np.ndarray], scale: bool) -> float:
    images = test["images"].astype("float32") / 255 if scale else test["images"]
    probabilities = network.predict(images, batch_size=256, verbose=0)
    return float(np.mean(probabilities.argmax(1) == test["labels"].argmax(1)))


class Curves(keras.callbacks.Callback):
    """Validation accuracy per epoch (from the fit's own logs), each epoch's seconds and,
    given a test split, test accuracy per epoch (its pass not counted in the seconds)."""

    def __init__(self, test: dict[str, np.ndarray] | None, scale: bool) -> None:
        super().__init__()
        self.test, self.scale = test, scale
        self.validation: list[float] = []
        self.test_curve: list[float] = []
        self.seconds: list[float] = []
        self._start = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.seconds.append(round(time.perf_counter() - self._start, 2))
        self.validation.append(float((logs or {})["val_accuracy"]))
        if self.test is not None:
            self.test_curve.append(_test_accuracy(self.model, self.test, self.scale))


def fit_variant(  # noqa: PLR0913
    variant: str, seed: int, params: dict, data: dict, epochs: int, test_curve: bool
) -> dict:
    """One fit of one variant; its result row."""
    training = {**params["training"], "epochs": epochs}
    keras.backend.clear_session()
    plain = variant.startswith("plain_script")
    watch = Curves(data["test"] if test_curve else None, scale=plain)
    start = time.perf_counter()
    if plain:
        keras.utils.set_random_seed(seed)
        network = plain_script_model(10)
        network.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
        fit = {"batch_size": 64, "epochs": epochs, "callbacks": [watch], "verbose": 0}
        if variant == "plain_script":
            images, labels = data["plain"]
            network.fit(images, labels, validation_split=0.2, **fit)
        else:
            train, validation = (
                (split["images"].astype("float32") / 255, split["labels"])
                for split in (data["train"], data["validation"])
            )
            network.fit(*train, validation_data=tuple(validation), **fit)
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
        "test_accuracy": _test_accuracy(network, data["test"], plain),
        "validation_accuracy": watch.validation,
        "test_accuracy_per_epoch": watch.test_curve or None,
        "epoch_seconds": watch.seconds,
        "fit_seconds": round(sum(watch.seconds), 2),
        "wall_seconds": round(seconds, 2),
    }


def train_share(raw: dict, share: float, seed: int) -> dict:
    """``raw`` with a seeded, stratified ``share`` of its training set, in file order."""
    if share >= 1:
        return raw
    rng = np.random.default_rng(seed)
    labels = raw["train_labels"]
    keep = np.sort(np.concatenate([
        (members := rng.permutation(np.flatnonzero(labels == label)))[: round(len(members) * share)]
        for label in np.unique(labels)
    ]))  # fmt: skip
    return {**raw, "train_images": raw["train_images"][keep], "train_labels": labels[keep]}


def load_data(params: dict, cifar_root: Path, share: float) -> dict:
    """The pipeline's splits, and the plain script's arrays (file order, float32)."""
    raw = train_share(CIFAR10Dataset(path=str(cifar_root)).load(), share, params["seed"])
    train, validation, test = build_model_inputs(
        raw, params["data_processing"], params["seed"], params["class_names"]
    )
    images = raw["train_images"].astype("float32") / 255
    labels = np.eye(10, dtype="float32")[raw["train_labels"]]
    return {"train": train, "validation": validation, "test": test, "plain": (images, labels)}


def summarise(rows: list[dict]) -> dict[str, dict[str, float]]:
    """Test accuracy mean +- std and the number of fits, per variant."""
    summary = {}
    for variant in dict.fromkeys(row["variant"] for row in rows):
        accuracy = [row["test_accuracy"] for row in rows if row["variant"] == variant]
        summary[variant] = {
            "mean": statistics.mean(accuracy),
            "std": statistics.stdev(accuracy) if len(accuracy) > 1 else 0.0,
            "fits": len(accuracy),
        }
    return summary


def _processor() -> str:
    """The CPU's model name (Linux), else the machine type."""
    cpuinfo = Path("/proc/cpuinfo")
    for line in cpuinfo.read_text().splitlines() if cpuinfo.exists() else []:
        if line.startswith("model name"):
            return line.partition(":")[2].strip()
    return platform.machine()


def machine_facts() -> dict:
    """Where the fits ran: device, processor, backend and versions."""
    return {
        "device": keras.distribution.list_devices()[0],
        "processor": _processor(),
        "cpus": os.cpu_count(),
        "backend": keras.backend.backend(),
        "versions": {name: version(name) for name in ("keras", "numpy", keras.backend.backend())},
        "platform": platform.platform(),
    }


def protocol_facts(args: argparse.Namespace, data: dict) -> dict:
    """The protocol the fits followed, and the command that ran them."""
    return {
        "epochs": args.epochs,
        "batch_size": 64,
        "train_share": args.train_share,
        "train_images": len(data["train"]["images"]),
        "validation_images": len(data["validation"]["images"]),
        "test_images": len(data["test"]["images"]),
        "command": " ".join(["python", "benchmarks/recipe_variants.py", *sys.argv[1:]]),
    }


def write_results(out: Path, facts: dict, rows: list[dict]) -> None:
    """The facts, the summary so far and every fit, as JSON."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**facts, "summary": summarise(rows), "fits": rows}, indent=2))


def resumed(out: Path, facts: dict) -> list[dict]:
    """The fits already in ``out``, if it was written by this same protocol on this kind of
    machine; facts keep the command that started the run."""
    if not out.exists():
        return []
    earlier = json.loads(out.read_text())
    same = {key: value for key, value in earlier["protocol"].items() if key != "command"}
    if same != {k: v for k, v in facts["protocol"].items() if k != "command"} or (
        earlier["machine"] != facts["machine"]
    ):
        raise SystemExit(f"{out} holds fits of another protocol or machine; not resuming it.")
    facts["protocol"]["command"] = earlier["protocol"]["command"]
    return earlier["fits"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--differences", action="store_true")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3])
    parser.add_argument("--epochs", type=int, default=15)
    # Also score the test set after every epoch (recorded only; it never chooses anything).
    parser.add_argument("--test-curve", action="store_true")
    # Below 1: this stratified share of the official training set (a reduced protocol).
    parser.add_argument("--train-share", type=float, default=1.0)
    # The folder holding cifar-10-batches-py.
    parser.add_argument("--cifar-root", type=Path, default=ROOT / "data/01_raw")
    # Keep the fits already in --out and run only the missing ones.
    parser.add_argument("--resume", action="store_true")
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
    data = load_data(params, args.cifar_root, args.train_share)
    facts = {"machine": machine_facts(), "protocol": protocol_facts(args, data)}
    rows = resumed(args.out, facts) if args.resume else []
    done = {(row["variant"], row["seed"]) for row in rows}
    for seed in args.seeds:
        for variant in args.variants:
            if (variant, seed) in done:
                continue
            rows.append(fit_variant(variant, seed, params, data, args.epochs, args.test_curve))
            print(json.dumps(rows[-1]), flush=True)
            # Written after every fit: a long run stopped early keeps the fits it finished.
            write_results(args.out, facts, rows)
    for variant, stats in summarise(rows).items():
        print(
            f"{variant:23s} test accuracy {stats['mean']:.4f} +- {stats['std']:.4f} "
            f"({stats['fits']} fits)"
        )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
