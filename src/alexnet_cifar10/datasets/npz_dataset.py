"""Versioned Kedro dataset for dictionaries of numpy arrays in one ``.npz`` file."""

from __future__ import annotations

from typing import Any

import numpy as np
from kedro.io.core import DatasetError, get_filepath_str

from alexnet_cifar10.datasets.atomic import FileVersionedDataset


class NpzDataset(FileVersionedDataset):
    """Saves and loads ``dict[str, np.ndarray]`` as ``.npz`` (never pickled objects).

    Arrays keep their dtype, so uint8 images stay a quarter of their float32 size.
    ``save_args: {compress: true}`` trades save and load time for disk space.

    Example catalog entry::

        model_input_train:
          type: alexnet_cifar10.datasets.NpzDataset
          filepath: data/05_model_input/train.npz
          versioned: true
          save_args:
            compress: false
    """

    DEFAULT_SAVE_ARGS: dict[str, Any] = {"compress": False}

    def load(self) -> dict[str, np.ndarray]:
        load_path = get_filepath_str(self._get_load_path(), self._protocol)
        with (
            self._fs.open(load_path, mode="rb") as handle,
            np.load(handle, allow_pickle=False, **self._load_args) as npz,
        ):
            return {key: npz[key] for key in npz.files}

    def save(self, data: dict[str, np.ndarray]) -> None:
        if not isinstance(data, dict) or not all(isinstance(v, np.ndarray) for v in data.values()):
            raise DatasetError(
                f"{type(self).__name__} saves a dict of numpy arrays; got {type(data).__name__}."
            )
        writer = np.savez_compressed if self._save_args["compress"] else np.savez
        with self.staged_save() as path, self._fs.open(path, mode="wb") as handle:
            writer(handle, **data)
