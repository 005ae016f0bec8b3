"""Versioned Kedro dataset for Keras 3 models that works on every Keras backend.

kedro-datasets' ``tensorflow.TensorFlowModelDataset`` imports TensorFlow, which the JAX
and PyTorch machines lack. This one only uses ``keras.saving`` and fsspec.
"""

from __future__ import annotations

import tempfile
from copy import deepcopy
from pathlib import Path, PurePosixPath
from typing import Any

import fsspec
import keras
from kedro.io.core import (
    AbstractVersionedDataset,
    DatasetError,
    Version,
    get_filepath_str,
    get_protocol_and_path,
)

# Registers the project's custom layers so that safe-mode loading can rebuild them.
import alexnet_cifar10.model  # noqa: F401
from alexnet_cifar10.datasets.atomic import AtomicVersionMixin


class KerasModelDataset(AtomicVersionMixin, AbstractVersionedDataset[keras.Model, keras.Model]):
    """Saves a Keras model as one ``.keras`` file; loads it with ``safe_mode`` on.

    Example catalog entry::

        model:
          type: alexnet_cifar10.datasets.KerasModelDataset
          filepath: data/06_models/alexnet.keras
          versioned: true
    """

    def __init__(  # noqa: PLR0913
        self,
        *,
        filepath: str,
        compile: bool = True,  # noqa: A002
        version: Version | None = None,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Creates the dataset; ``filepath`` must end in ``.keras``."""
        if not str(filepath).endswith(".keras"):
            raise DatasetError(f"KerasModelDataset needs a '.keras' filepath, got '{filepath}'.")
        protocol, path = get_protocol_and_path(filepath, version)
        fs_args = deepcopy(fs_args) or {}
        if protocol == "file":
            fs_args.setdefault("auto_mkdir", True)
        self._protocol = protocol
        self._fs = fsspec.filesystem(protocol, **(credentials or {}), **fs_args)
        self._compile = compile
        self.metadata = metadata
        super().__init__(
            filepath=PurePosixPath(path),
            version=version,
            exists_function=self._fs.exists,
            glob_function=self._fs.glob,
        )

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath, "protocol": self._protocol, "version": self._version}

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

    def _exists(self) -> bool:
        try:
            load_path = get_filepath_str(self._get_load_path(), self._protocol)
        except DatasetError:
            return False
        return self._fs.exists(load_path)
