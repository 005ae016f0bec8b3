"""Images/s of data-parallel training over virtual devices of this CPU against one device.

    python benchmarks/data_parallel.py [--devices 2] [--images 512] [--epochs 3] [--rounds 2]
    KERAS_BACKEND=jax python benchmarks/data_parallel.py

One process: the backend starts with ``--devices`` virtual CPU devices (XLA's host device
count on JAX, logical CPU devices on TensorFlow). The training node then fits the recipe
(``conf/base``, or ``--env``) on the same data twice per round, with
``training.distribution`` one_device (the first device) and data_parallel (all of them,
the same global batch). Epoch 1 (compilation, warm-up) is left out; images/s = train
images / epoch seconds (validation included in both), from the median epoch and from the
fastest one. The arms alternate for ``--rounds`` rounds; the ratio is data_parallel /
one_device. Virtual devices share the same cores, so the ratio measures what the engine
costs here, not what more accelerators would gain.
"""

from __future__ import annotations

import argparse
import logging
import os
from functools import partial


def _virtual_devices(count: int) -> None:
    """Make the backend start with ``count`` CPU devices (before it starts)."""
    if os.environ.get("KERAS_BACKEND", "tensorflow") == "jax":
        flags = os.environ.get("XLA_FLAGS", "")
        # The collective timeout that a kedro run sets (alexnet_cifar10.backend).
        os.environ["XLA_FLAGS"] = (
            f"{flags} --xla_force_host_platform_device_count={count} "
            "--xla_cpu_collective_call_terminate_timeout_seconds=600"
        )
        return
    import tensorflow as tf

    [cpu] = tf.config.list_physical_devices("CPU")
    logical = [tf.config.LogicalDeviceConfiguration()] * count
    tf.config.set_logical_device_configuration(cpu, logical)


def main() -> None:
    """Alternate the two arms, print images/s for each and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=2, help="virtual CPU devices")
    parser.add_argument("--env", default="base", help="config environment (base: the recipe)")
    parser.add_argument("--cifar", default=os.environ.get("CIFAR_ROOT", "../shared/data"))
    parser.add_argument("--images", type=int, default=512, help="train images per epoch")
    parser.add_argument("--validation-images", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=3, help="epochs per fit (1st excluded)")
    parser.add_argument("--rounds", type=int, default=2, help="pairs of fits, alternating")
    parser.add_argument("--batch-size", type=int, default=None, help="override the config's")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    _virtual_devices(args.devices)
    logging.basicConfig(level=logging.WARNING)

    # Imported once the devices are set: bench_common imports Keras too.
    import keras

    from bench_common import (
        compare_arms,
        load_parameters,
        load_splits,
        short_training,
        train_with_nodes,
    )

    params = load_parameters(args.env)
    training = short_training(params, args.epochs, args.batch_size)
    limits = (args.images, args.validation_images, 0)
    train, validation, _ = load_splits(args.cifar, params, limits)
    n, batch = len(train["images"]), training["batch_size"]
    devices = keras.distribution.list_devices()
    print(
        f"Keras {keras.__version__} on {keras.backend.backend()} ({', '.join(devices)}); "
        f"env {args.env}: {n} train / {len(validation['images'])} validation images, global "
        f"batch {batch} ({batch // len(devices)} per device in data_parallel), "
        f"{training['precision']}, {args.epochs} epochs per fit (1st excluded)"
    )

    def fit(strategy: str) -> list[float]:
        """Train with the node; return the epochs' wall seconds from its history."""
        label = f"benchmark: {strategy}"
        params_fit = {**training, "distribution": strategy}
        trained = train_with_nodes(train, validation, params_fit, params["seed"], label)
        return [float(s) for s in trained.history["epoch_seconds"]]

    strategies = ("one_device", "data_parallel")
    rates = compare_arms({name: partial(fit, name) for name in strategies}, args.rounds, n)
    parallel, one = rates["data_parallel"], rates["one_device"]
    print(
        f"ratio data_parallel ({len(devices)} devices) / one_device: "
        f"{parallel[0] / one[0]:.3f} (median epochs), {parallel[1] / one[1]:.3f} (fastest epochs)"
    )


if __name__ == "__main__":
    main()
