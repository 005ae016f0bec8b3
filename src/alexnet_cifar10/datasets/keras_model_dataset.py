"""Versioned Kedro dataset for Keras 3 models that works on every Keras backend.

kedro-datasets' ``tensorflow.TensorFlowModelDataset`` imports TensorFlow, which the JAX
and PyTorch machines lack. This one only uses ``keras.saving`` and fsspec, and imports
Keras on the first load or save, so listing the catalog never starts a backend.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from kedro.io.core import DatasetError, get_filepath_str

from alexnet_cifar10.datasets.atomic import FileVersionedDataset
from alexnet_cifar10.keras_types import KerasModel
from alexnet_cifar10.lazy import LazyModule

keras = LazyModule("keras")
# Defines (and registers with Keras) the project's custom layers, which safe-mode
# loading must be able to rebuild.
network = LazyModule("alexnet_cifar10.model")


class KerasModelDataset(FileVersionedDataset):
    """Saves a Keras model as one ``.keras`` file; loads it with ``safe_mode`` on, so a
    model file cannot run code (a ``Lambda`` layer is refused).

    Example catalog entry::

        model:
          type: alexnet_cifar10.datasets.KerasModelDataset
          filepath: data/06_models/alexnet.keras
          versioned: true
          load_args:
            compile: false

    ``load_args`` go to ``keras.saving.load_model`` (default: ``compile: true``,
    ``safe_mode: true``), ``save_args`` to ``Model.save``.
    """

    DEFAULT_LOAD_ARGS: dict[str, Any] = {"compile": True, "safe_mode": True}

    def __init__(self, *, filepath: str, **kwargs: Any) -> None:
        """Creates the dataset; ``filepath`` must end in ``.keras`` (see the base class)."""
        if not str(filepath).endswith(".keras"):
            raise DatasetError(f"KerasModelDataset needs a '.keras' filepath, got '{filepath}'.")
        super().__init__(filepath=filepath, **kwargs)

    def load(self) -> KerasModel:
        load_path = get_filepath_str(self._get_load_path(), self._protocol)
        # Keras reads local files only (remote paths would go through tf.io.gfile).
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / "model.keras"
            self._fs.get_file(load_path, str(local))
            return keras.saving.load_model(
                local, custom_objects=network.CUSTOM_OBJECTS, **self._load_args
            )

    def save(self, data: KerasModel) -> None:
        if not isinstance(data, keras.Model):
            raise DatasetError(f"KerasModelDataset saves keras.Model; got {type(data).__name__}.")
        with tempfile.TemporaryDirectory() as tmp, self._staged_save() as path:
            local = Path(tmp) / "model.keras"
            data.save(local, **self._save_args)
            self._fs.put_file(str(local), path)
