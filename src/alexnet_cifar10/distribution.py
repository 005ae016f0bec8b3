"""Where a training run computes: one device, or data parallel over every device it sees.

Data parallel runs on the engines Keras 3 has, not on home-made gradient averaging:
``keras.distribution.DataParallel`` on JAX, also across processes joined by
``keras.distribution.initialize``, and ``tf.distribute.MirroredStrategy`` on TensorFlow
(one machine: Keras 3 has no working multi-worker TensorFlow strategy). This module is
the one place that enters them; the training node compiles and fits inside ``placed``.

Both engines replicate only the variables of a model *created* under them, so the
untrained network is rebuilt there from its configuration, with its variables (weights,
BatchNorm statistics, the random layers' seed states) copied in. After training the
model is copied back into a plain one-device model: what the catalog saves, and what
evaluation predicts with, in every process.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # the backend starts only when a node runs
    import keras


logger = logging.getLogger(__name__)

ONE_DEVICE, DATA_PARALLEL = "one_device", "data_parallel"
ENGINES = {
    "jax": "keras.distribution.DataParallel",
    "tensorflow": "tf.distribute.MirroredStrategy",
}
# What keras.distribution.initialize reads: the first process's host:port, how many
# processes train together, and which one this is (process 0 saves the run's outputs).
ADDRESSES = "KERAS_DISTRIBUTION_JOB_ADDRESSES"
PROCESSES = "KERAS_DISTRIBUTION_NUM_PROCESSES"
PROCESS_ID = "KERAS_DISTRIBUTION_PROCESS_ID"


class ClusterError(RuntimeError):
    """The KERAS_DISTRIBUTION_* variables do not describe a run this project can join."""


@dataclass(frozen=True)
class Cluster:
    """This process's place among the processes that train one model together."""

    processes: int = 1
    index: int = 0


def _whole_number(name: str) -> int:
    value = os.environ[name]
    try:
        return int(value)
    except ValueError:
        raise ClusterError(f"{name} must be a whole number; got {value!r}.") from None


def cluster() -> Cluster:
    """The run's processes, from the KERAS_DISTRIBUTION_* variables (one when unset)."""
    if PROCESSES not in os.environ:
        return Cluster()
    processes = _whole_number(PROCESSES)
    index = _whole_number(PROCESS_ID) if PROCESS_ID in os.environ else -1
    if processes < 1 or not 0 <= index < processes or ADDRESSES not in os.environ:
        raise ClusterError(
            f"{PROCESSES}={processes} needs {ADDRESSES} (the first process's host:port) "
            f"and {PROCESS_ID} between 0 and {processes - 1}; got "
            f"{os.environ.get(ADDRESSES)!r} and {os.environ.get(PROCESS_ID)!r}."
        )
    return Cluster(processes, index)


@functools.cache
def join_cluster() -> Cluster:
    """Join the run's other processes, once, before the backend touches a device."""
    import keras

    where = cluster()
    if where.processes > 1:
        if keras.backend.backend() != "jax":
            raise ClusterError(
                f"{PROCESSES}={where.processes}: several processes train together on the "
                f"jax backend only (Keras 3 has no working multi-worker TensorFlow "
                f"strategy); got KERAS_BACKEND={keras.backend.backend()}."
            )
        keras.distribution.initialize()
    return where


def _copy(model: keras.Model, *, synchronized: bool, processes: int = 1) -> keras.Model:
    """The same network built afresh (under the current engine, if any), variables copied."""
    import keras

    def layer_from(layer: Any) -> Any:
        config = layer.get_config()
        if isinstance(layer, keras.layers.BatchNormalization):
            config["synchronized"] = synchronized
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=layer_from)
    values = [keras.ops.convert_to_numpy(variable) for variable in model.variables]
    if processes > 1:
        # Processes can hold the network by different routes (process 0 reloads what it
        # saved, the others keep it in memory), and a reload draws new seed states for the
        # random layers: every process starts from process 0's variables. (JAX only.)
        from jax.experimental import multihost_utils

        values = multihost_utils.broadcast_one_to_all(values)
    for target, value in zip(copy.variables, values, strict=True):
        target.assign(value)
    if model.compiled:
        copy.compile_from_config(model.get_compile_config())
        copy.optimizer.build(copy.trainable_variables)
        for target, source in zip(copy.optimizer.variables, model.optimizer.variables, strict=True):
            target.assign(keras.ops.convert_to_numpy(source))
    return copy


@contextmanager
def _engine(devices: tuple[str, ...]) -> Iterator[None]:
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf  # the TensorFlow backend only

        with tf.distribute.MirroredStrategy([f"/{device}" for device in devices]).scope():
            yield
        return
    # Each process feeds its own share of the data (Placement.local): Keras' own
    # auto-sharding across processes needs a tf.data pipeline.
    with keras.distribution.DataParallel(devices=list(devices), auto_shard_dataset=False).scope():
        yield


@dataclass(frozen=True)
class Placement:
    """The devices and processes of one fit, and how they share each batch."""

    strategy: str
    devices: tuple[str, ...]
    cluster: Cluster

    @property
    def parallel(self) -> bool:
        return self.strategy == DATA_PARALLEL

    def per_device_batch(self, batch: int) -> int:
        return batch // len(self.devices)

    def facts(self, batch: int) -> dict[str, Any]:
        """The placement as recorded in the run's facts."""
        import keras

        return {
            "strategy": self.strategy,
            "engine": ENGINES[keras.backend.backend()] if self.parallel else None,
            "devices": list(self.devices),
            "processes": self.cluster.processes,
            "global_batch": batch,
            "per_device_batch": self.per_device_batch(batch),
        }

    def describe(self, batch: int) -> str:
        """'data_parallel with keras.distribution.DataParallel, 1 process, 32 images per device'."""
        facts = self.facts(batch)
        how = f"{self.strategy} with {facts['engine']}" if self.parallel else self.strategy
        processes = self.cluster.processes
        return (
            f"{how}, {processes} process{'' if processes == 1 else 'es'}, "
            f"{facts['per_device_batch']} images per device"
        )

    def trimmed(self, split: dict[str, np.ndarray], name: str) -> dict[str, np.ndarray]:
        """The split less its last few images, if the device count does not divide it: then
        every batch, the last partial one too, splits evenly over the devices."""
        size = len(split["images"])
        keep = size - size % len(self.devices)
        if keep == size:
            return split
        logger.warning(
            "Left out the last %d of %d %s images: the %d devices split every batch evenly, "
            "the last partial one too.",
            size - keep,
            size,
            name,
            len(self.devices),
        )
        return {key: value[:keep] for key, value in split.items()}

    def local(self, split: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """This process's equal share of a (trimmed) split, every n-th image: each process
        feeds its own part of every global batch."""
        index, processes = self.cluster.index, self.cluster.processes
        return {key: value[index::processes] for key, value in split.items()}

    def local_batch(self, batch: int) -> int:
        """The part of every global batch that this process feeds."""
        return batch // self.cluster.processes

    @contextmanager
    def placed(self, model: keras.Model) -> Iterator[keras.Model]:
        """Enter the engine; yield the network with its variables on every device (the
        network itself for one device). On TensorFlow its BatchNorm layers are synchronized
        (Keras' ``synchronized=True``): statistics over the global batch, as on JAX."""
        import keras

        if not self.parallel:
            yield model
            return
        synchronized = keras.backend.backend() == "tensorflow"
        with _engine(self.devices):
            yield _copy(model, synchronized=synchronized, processes=self.cluster.processes)

    def gathered(self, model: keras.Model) -> keras.Model:
        """The trained network as a plain one-device model (itself for one device)."""
        return _copy(model, synchronized=False) if self.parallel else model


def placement(strategy: str) -> Placement:
    """Where a fit with this ``training.distribution`` runs, in this process."""
    import keras

    where = join_cluster()
    devices = tuple(keras.distribution.list_devices())
    return Placement(strategy, devices[:1] if strategy == ONE_DEVICE else devices, where)
