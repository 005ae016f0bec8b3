"""Versioned Kedro datasets for the trained network exported to other runtimes."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from kedro.io.core import DatasetError, get_filepath_str

from alexnet_cifar10.datasets.atomic import FileVersionedDataset
from alexnet_cifar10.provenance import TrainedModel

_ONNX_MAGIC = b"\x08"  # an ONNX ModelProto opens with its ir_version field


class OnnxModelDataset(FileVersionedDataset):
    """Saves and loads the serialized bytes of an ONNX model (``export_onnx``'s output).

    Example catalog entry::

        onnx_model:
          type: alexnet_cifar10.datasets.OnnxModelDataset
          filepath: data/06_models/alexnet.onnx
          versioned: true
    """

    def load(self) -> bytes:
        load_path = get_filepath_str(self._get_load_path(), self._protocol)
        with self._fs.open(load_path, mode="rb") as handle:
            return handle.read()

    def save(self, data: bytes) -> None:
        if not isinstance(data, bytes) or not data.startswith(_ONNX_MAGIC):
            raise DatasetError(
                f"{type(self).__name__} saves a serialized ONNX model (bytes); "
                f"got {type(data).__name__}."
            )
        with self.staged_save() as path, self._fs.open(path, mode="wb") as handle:
            handle.write(data)


class SavedModelDataset(FileVersionedDataset):
    """Saves a ``TrainedModel``'s network as a TensorFlow SavedModel folder (Keras'
    ``export(format="tf_saved_model")``, endpoint ``serve``: uint8 images in,
    probabilities out) with the model card in ``assets.extra/model_card.json``; loads
    it back as a ``TrainedModel`` whose network is Keras' ``TFSMLayer`` in a model, so
    ``predict`` works as on the original.

    Example catalog entry::

        saved_model:
          type: alexnet_cifar10.datasets.SavedModelDataset
          filepath: data/06_models/alexnet_savedmodel
          versioned: true
    """

    CARD = "assets.extra/model_card.json"

    def load(self) -> TrainedModel:
        import keras
        import pandas as pd

        load_path = get_filepath_str(self._get_load_path(), self._protocol)
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / "saved_model"
            self._fs.get(load_path, str(local), recursive=True)
            card = json.loads((local / self.CARD).read_text())
            layer = keras.layers.TFSMLayer(str(local), call_endpoint="serve")
            inputs = keras.Input((*card["input_shape"],), dtype="uint8", name="image")
            network = keras.Model(inputs, layer(inputs))
        return TrainedModel(network, card, pd.DataFrame())

    def save(self, data: TrainedModel) -> None:
        if not isinstance(data, TrainedModel):
            raise DatasetError(
                f"{type(self).__name__} saves TrainedModel; got {type(data).__name__}."
            )
        with tempfile.TemporaryDirectory() as tmp, self.staged_save() as path:
            local = Path(tmp) / "saved_model"
            data.network.export(str(local), format="tf_saved_model", verbose=False)
            card = {**data.card, "input_shape": list(data.network.input_shape[1:])}
            (local / self.CARD).parent.mkdir(exist_ok=True)
            (local / self.CARD).write_text(json.dumps(card, indent=2, default=str))
            self._fs.put(str(local), path, recursive=True)
