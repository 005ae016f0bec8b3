"""Throughput of the project's training node against plain ``model.fit`` of the same network.

    python benchmarks/node_vs_fit.py [--env base] [--images 1024] [--epochs 3] [--rounds 2]
    KERAS_BACKEND=jax python benchmarks/node_vs_fit.py --cifar /tmp/cifar10 --images 40000

In one process and on the same data (the project's train split, capped at ``--images``
images, and a small validation set so that the epochs are mostly training): plain
``model.fit`` of ``build_alexnet`` compiled with the same optimizer class, loss, precision
and jit setting, and ``train_model`` (the Kedro node). Epoch 1 (compilation, warm-up) is
left out; images/s = train images / epoch seconds of the rest (validation included in both),
from the median epoch and from the fastest one (the least disturbed, on a shared machine).
The two arms alternate for ``--rounds`` rounds; the ratio is node / plain.
"""

from __future__ import annotations

import argparse
import logging
import os
from functools import partial

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras

from alexnet_cifar10.model import build_alexnet
from alexnet_cifar10.pipelines.training.nodes import LOSSES, OPTIMIZERS
from bench_common import (
    EpochTimer,
    Split,
    compare_arms,
    load_parameters,
    load_splits,
    short_training,
    train_with_nodes,
)


def plain_fit(train: Split, validation: Split, params: dict, seed: int) -> list[float]:
    """Build, compile and fit with nothing but Keras; return the epochs' wall seconds."""
    keras.utils.set_random_seed(seed)
    model = build_alexnet(
        params["model"],
        num_classes=train["labels"].shape[1],
        augmentation=params["augmentation"],
        dtype_policy=params["precision"],
        seed=seed,
    )
    opt = params["optimizer"]
    kwargs = {"learning_rate": opt["learning_rate"]}
    if opt.get("weight_decay") is not None:
        kwargs["weight_decay"] = opt["weight_decay"]
    model.compile(
        optimizer=getattr(keras.optimizers, OPTIMIZERS[opt["name"]])(**kwargs),
        loss=getattr(keras.losses, LOSSES[params["loss"]])(
            label_smoothing=params["label_smoothing"]
        ),
        metrics=["accuracy"],
        jit_compile=params["jit_compile"],
    )
    timer = EpochTimer()
    model.fit(
        train["images"],
        train["labels"],
        validation_data=(validation["images"], validation["labels"]),
        epochs=params["epochs"],
        batch_size=params["batch_size"],
        shuffle=True,
        callbacks=[timer],
        verbose=0,
    )
    return timer.seconds


def node_fit(train: Split, validation: Split, params: dict, seed: int) -> list[float]:
    """Train with the project's node; return the epochs' wall seconds from its history."""
    trained = train_with_nodes(train, validation, params, seed, "benchmark: node vs fit")
    return [float(s) for s in trained.history["epoch_seconds"]]


def main() -> None:
    """Alternate the two arms, print images/s for each and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="base", help="config environment (base: the recipe)")
    parser.add_argument("--cifar", default=os.environ.get("CIFAR_ROOT", "../shared/data"))
    parser.add_argument("--images", type=int, default=1024, help="train images per epoch")
    parser.add_argument("--validation-images", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=3, help="epochs per fit (1st excluded)")
    parser.add_argument("--rounds", type=int, default=2, help="plain/node pairs, alternating")
    parser.add_argument("--batch-size", type=int, default=None, help="override the config's")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    params = load_parameters(args.env)
    training = short_training(params, args.epochs, args.batch_size)
    train, validation, _ = load_splits(args.cifar, params, (args.images, args.validation_images, 0))
    n = len(train["images"])
    print(
        f"Keras {keras.__version__} on {keras.backend.backend()} "
        f"({keras.distribution.list_devices()[0]}); env {args.env}: {n} train / "
        f"{len(validation['images'])} validation images, batch {training['batch_size']}, "
        f"{training['precision']}, {args.epochs} epochs per fit (1st excluded)"
    )
    arms = {"plain model.fit": plain_fit, "train_model node": node_fit}
    rates = compare_arms(
        {
            name: partial(fit, train, validation, training, params["seed"])
            for name, fit in arms.items()
        },
        args.rounds,
        n,
    )
    node, plain = rates["train_model node"], rates["plain model.fit"]
    print(
        f"ratio node / plain: {node[0] / plain[0]:.3f} (median epochs), "
        f"{node[1] / plain[1]:.3f} (fastest epochs); goal >= 0.95"
    )


if __name__ == "__main__":
    main()
