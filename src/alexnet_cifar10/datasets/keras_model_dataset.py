"""Versioned Kedro datasets for Keras 3 models that work on every Keras backend.

kedro-datasets' ``tensorflow.TensorFlowModelDataset`` imports TensorFlow, which the JAX
and PyTorch machines lack. These only use ``keras.saving`` and fsspec, and import Keras
on the first load or save, so listing the catalog never starts a backend.
"""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from kedro.io.core import DatasetError, get_filepath_str

from alexnet_cifar10.datasets.atomic import FileVersionedDataset
from alexnet_cifar10.provenance import TrainedModel

if TYPE_CHECKING:  # the backend starts only when a node runs
    import keras


class KerasModelDataset(FileVersionedDataset):
    """Saves a Keras model as one ``.keras`` file; loads it with ``safe_mode`` on, so a
    model file cannot run code (a ``Lambda`` layer is refused).

    Example catalog entry::

        untrained_model:
          type: alexnet_cifar10.datasets.KerasModelDataset
          filepath: data/06_models/alexnet_untrained.keras
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
            raise DatasetError(
                f"{type(self).__name__} needs a '.keras' filepath, got '{filepath}'."
            )
        super().__init__(filepath=filepath, **kwargs)

    def load(self) -> Any:
        load_path = get_filepath_str(self._get_load_path(), self._protocol)
        # Keras reads local files only (remote paths would go through tf.io.gfile).
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / "model.keras"
            self._fs.get_file(load_path, str(local))
            return self._read(local)

    def save(self, data: Any) -> None:
        with tempfile.TemporaryDirectory() as tmp, self.staged_save() as path:
            local = Path(tmp) / "model.keras"
            self._write(data, local)
            self._fs.put_file(str(local), path)

    # What one archive entry may inflate to (the recipe's weights are 86 MB): checked in
    # the archive's directory before anything is read, so a zip bomb costs no memory.
    MAX_ENTRY_BYTES = 4 << 30

    def _check_sizes(self, archive: zipfile.ZipFile, limits: dict[str, int]) -> None:
        """Refuse an entry that would inflate past its limit (``MAX_ENTRY_BYTES`` unless
        ``limits`` names it), from its declared size: Python's zipfile reads no further."""
        for info in archive.infolist():
            limit = limits.get(info.filename, self.MAX_ENTRY_BYTES)
            if info.file_size > limit:
                raise DatasetError(
                    f"'{self._filepath}' refused: its entry '{info.filename}' inflates to "
                    f"{info.file_size:,} bytes, over the limit of {limit:,}."
                )

    def _read(self, local: Path) -> keras.Model:
        import keras

        with zipfile.ZipFile(local) as archive:
            self._check_sizes(archive, {})

        from alexnet_cifar10 import model as network

        return keras.saving.load_model(
            local, custom_objects=network.CUSTOM_OBJECTS, **self._load_args
        )

    def _write(self, data: keras.Model, local: Path) -> None:
        import keras

        if not isinstance(data, keras.Model):
            raise DatasetError(
                f"{type(self).__name__} saves keras.Model; got {type(data).__name__}."
            )
        data.save(local, **self._save_args)


class TrainedModelDataset(KerasModelDataset):
    """Saves a ``TrainedModel`` as one ``.keras`` archive: the network as Keras saves it
    (``keras.saving.load_model`` still reads the file), plus ``model_card.json`` and
    ``training_history.csv``. The card's ``model_version`` is the version this dataset
    saves under, so the archive names itself wherever it is copied.

    Example catalog entry::

        model:
          type: alexnet_cifar10.datasets.TrainedModelDataset
          filepath: data/06_models/alexnet.keras
          versioned: true
    """

    CARD, HISTORY = "model_card.json", "training_history.csv"
    LIMITS = {CARD: 1 << 20, HISTORY: 64 << 20}

    def _card(self, archive: zipfile.ZipFile, version: str | None) -> dict[str, Any]:
        """The archive's card, once its entries' sizes are checked and the version it names
        is the folder's (a card copied from another model would mislabel every result)."""
        self._check_sizes(archive, self.LIMITS)
        if not {self.CARD, self.HISTORY} <= set(archive.namelist()):
            raise DatasetError(
                f"'{self._filepath}' is a Keras model without the model card and history "
                "that train_model saves with it; train it again with `kedro run "
                "--pipelines training`."
            )
        card = json.loads(archive.read(self.CARD))
        if version is not None and card.get("model_version") != version:
            raise DatasetError(
                f"'{self._filepath}' refused: the model card in version folder {version} "
                f"names version {card.get('model_version')!r} (a card from another model?)."
            )
        return card

    def _read(self, local: Path) -> TrainedModel:
        with zipfile.ZipFile(local) as archive:
            card = self._card(archive, self.resolve_load_version())
            history = pd.read_csv(io.BytesIO(archive.read(self.HISTORY)))
        return TrainedModel(super()._read(local), card, history)

    def read_card(self, version: str) -> dict[str, Any] | None:
        """The card of one saved version, read without loading the network; None if
        there is no such version."""
        path = self.path_of(version)
        if not self._fs.exists(path):
            return None
        with self._fs.open(path, "rb") as file, zipfile.ZipFile(file) as archive:
            return self._card(archive, version)

    def _write(self, data: TrainedModel, local: Path) -> None:
        if not isinstance(data, TrainedModel):
            raise DatasetError(
                f"{type(self).__name__} saves TrainedModel; got {type(data).__name__}."
            )
        super()._write(data.network, local)
        card = {**data.card, "model_version": self.resolve_save_version() or "unversioned"}
        with zipfile.ZipFile(local, "a") as archive:
            archive.writestr(self.CARD, json.dumps(card, indent=2, default=str))
            archive.writestr(self.HISTORY, data.history.to_csv(index=False))
