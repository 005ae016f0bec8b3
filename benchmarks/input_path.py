"""Does the input path starve the accelerator? Node step time against the bare model's.

    KERAS_BACKEND=jax python benchmarks/input_path.py --cifar /tmp/cifar10 [--env tuned]

Three step times, same network, parameters and batch size:

* node (host arrays): ``train_model`` as the pipeline calls it, numpy arrays in; the median
  epoch after the first, over the number of steps (validation: one batch).
* node (device arrays), JAX only: the same node given arrays already on the device.
* bare: the compiled train step of that same model called on one batch that already sits
  on the device, nothing else (JAX: Keras' own jitted ``train_function``, timed over
  ``--bare-steps`` steps with one wait at the end; other backends: ``train_on_batch``,
  which waits every step and so overstates the bare time).

The goal: node step time within 5% of the bare one.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import math
import os
import statistics
import time
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras

from bench_common import Split, load_parameters, load_splits, train_with_nodes


def node_step_ms(train: Split, validation: Split, training: dict, seed: int) -> tuple:
    """Median step time of epochs 2.. through the node; also return the trained model."""
    trained = train_with_nodes(train, validation, training, seed, "benchmark: input path")
    steps = math.ceil(len(train["images"]) / training["batch_size"])
    seconds = [float(s) for s in trained.history["epoch_seconds"]][1:]
    return statistics.median(seconds) / steps * 1e3, trained.network


def bare_step_ms(model: keras.Model, train: Split, batch_size: int, steps: int) -> float:
    """Step time of ``model``'s compiled train step on one device-resident batch.

    On JAX this donates the model's state: do not use ``model`` afterwards.
    """
    x, y = train["images"][:batch_size], train["labels"][:batch_size]
    if keras.backend.backend() != "jax":
        model.train_on_batch(x, y)
        start = time.perf_counter()
        for _ in range(steps):
            model.train_on_batch(x, y)
        return (time.perf_counter() - start) / steps * 1e3
    import jax  # JAX only

    batches = itertools.repeat((jax.device_put(x), jax.device_put(y)))
    model.make_train_function()
    state = model._get_jax_state(  # what Model.fit passes to the step
        trainable_variables=True,
        non_trainable_variables=True,
        optimizer_variables=True,
        metrics_variables=True,
    )
    logs, state = model.train_function(state, batches)
    jax.block_until_ready((logs, state))
    start = time.perf_counter()
    for _ in range(steps):
        logs, state = model.train_function(state, batches)
    jax.block_until_ready((logs, state))
    return (time.perf_counter() - start) / steps * 1e3


def _on_device(split: Split) -> dict[str, Any]:
    import jax  # JAX only

    return {key: jax.device_put(value) for key, value in split.items()}


def main() -> None:
    """Time the node with host and device arrays and the bare step; print the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="tuned")
    parser.add_argument("--cifar", default=os.environ.get("CIFAR_ROOT", "../shared/data"))
    parser.add_argument("--images", type=int, default=None, help="cap the train images")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per node fit")
    parser.add_argument("--bare-steps", type=int, default=200)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    params = load_parameters(args.env)
    batch = params["training"]["batch_size"]
    schedule = params["training"]["lr_schedule"]
    training = {
        **params["training"],
        "epochs": args.epochs,
        "lr_schedule": {**schedule, "warmup_epochs": min(schedule.get("warmup_epochs", 0), 1)},
    }
    train, validation, _ = load_splits(args.cifar, params, (args.images, batch, 0))
    print(
        f"Keras {keras.__version__} on {keras.backend.backend()} "
        f"({keras.distribution.list_devices()[0]}); env {args.env}: "
        f"{len(train['images'])} train images, batch {batch}, {training['precision']}"
    )
    rows: dict[str, float] = {}
    keras.backend.clear_session()
    rows["node, host (numpy) arrays"], model = node_step_ms(
        train, validation, training, params["seed"]
    )
    rows["bare compiled step, device batch"] = bare_step_ms(model, train, batch, args.bare_steps)
    if keras.backend.backend() == "jax":
        keras.backend.clear_session()
        rows["node, device arrays"], _ = node_step_ms(
            _on_device(train), _on_device(validation), training, params["seed"]
        )
    bare = rows["bare compiled step, device batch"]
    print(f"\n{'path':34s} {'ms/step':>8s} {'vs bare':>8s} {'images/s':>10s}")
    for name, ms in rows.items():
        print(f"{name:34s} {ms:8.2f} {ms / bare:8.3f} {batch / ms * 1e3:10,.0f}")
    print("goal: node within 5% of the bare step (vs bare <= 1.05)")


if __name__ == "__main__":
    main()
