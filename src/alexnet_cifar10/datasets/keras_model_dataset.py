"""Versioned Kedro dataset for Keras 3 models that works on every Keras backend.

kedro-datasets' ``tensorflow.TensorFlowModelDataset`` imports TensorFlow, which the JAX
and PyTorch machines lack. This one only uses ``keras.saving`` and fsspec.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import keras
from kedro.io.core import DatasetError, Version, get_filepath_str

# Registers the project's custom layers so that safe-mode loading can rebuild them.
import alexnet_cifar10.model  # noqa: F401
from alexnet_cifar10.datasets.atomic import FileVersionedDataset


class KerasModelDataset(FileVersionedDataset):
    """Saves a Keras model as one ``.keras`` file; loads it with ``safe_mode`` on.

    Example catalog entry::

        model:
          type: alexnet_cifar10.datasets.KerasModelDataset
          filepath: data/06_models/alexnet.keras
          versioned: true
    """

    def __init__(
        self,
        *,
        filepath: str,
        compile: bool = True,  # noqa: A002,
        version: Version | None = None,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Creates the dataset; ``filepath`` must end in ``.keras``."""
        if not str(filepath).endswith(".keras"):
            raise DatasetError(f"KerasModelDataset needs a '.keras' filepath, got '{filepath}'.")
        super().__init__(
            filepath=filepath,
            version=version,
            credentials=credentials,
            fs_args=fs_args,
            metadata=metadata,
        )
        self._compile = compile

    def load(self) -> keras.Model:
        load_path = get_filepath_str(self._get_load_path(), self._protocol)
        # Keras reads local files only (remote paths would go through tf.io.gfile).
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / "model.keras"
            self._fs.get_file(load_path, str(local))
            return keras.saving.load_model(local, compile=self._compile, safe_mode=True)

    def save(self, data: keras.Model) -> None:
        if not isinstance(data, keras.Model):
            raise DatasetError(f"KerasModelDataset saves keras.Model; got {type(data).__name__}.")
        with tempfile.TemporaryDirectory() as tmp, self._staged_save() as path:
            local = Path(tmp) / "model.keras"
            data.save(local)
            self._fs.put_file(str(local), path)
