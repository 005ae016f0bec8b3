"""The predict pipeline as an MLflow model, for MLflow's scoring server (``kedro serve``).

A request is a table with one column, ``image``: each row the base64 text of one picture
file's bytes. Every row goes through the predict pipeline's own code (``pictures``:
decoding under the limits of ``serve.decoding``, the 32x32 policy of ``predict.resize``;
``inference``: top classes and the model's labels), and the answer has the columns of
``user_predictions.csv``, one row per picture, in the request's order (``file`` is the
row's index). A row that is not a picture gets its ``refused: <why>`` status, as a file
in predict does.

The network runs on ONNX Runtime: the same probabilities as Keras to 1e-4 (the export
pipeline's parity report), and several times faster than Keras' ``predict`` for one
picture (``benchmarks/serve_load.py``). This module and what it imports need neither Kedro
nor a deep-learning backend: the logged model carries them and installs from the public
package index (``datasets.ServedModelDataset``).
"""

from __future__ import annotations

import base64
import binascii
import io
import threading
from collections.abc import Callable
from typing import Any

import pandas as pd
from PIL import Image

from alexnet_cifar10.inference import OnnxNetwork, prediction_table
from alexnet_cifar10.pictures import IMAGE_SHAPE, ImageRefusedError, decode_image, prepare_images
from alexnet_cifar10.provenance import LABELS, TrainedModel

try:
    from mlflow.pyfunc import PythonModel
except ModuleNotFoundError:  # no MLflow here: the model is made, and never logged
    PythonModel = object

COLUMN = "image"
# Zero-padded row names keep the request's order through prepare_images (by name).
_ROW = "{:09d}"


def _picture(text: Any, decoding: dict[str, Any]) -> Callable[[], Any]:
    """A loader of one row's picture, as the predict pipeline's folder gives them."""

    def load() -> Any:
        if not isinstance(text, str):
            raise ImageRefusedError(f"not base64 text (a JSON {type(text).__name__})")
        if len(text) > decoding["max_file_bytes"] * 4 // 3 + 4:
            raise ImageRefusedError(
                f"{len(text):,} characters of base64: over the limit of "
                f"{decoding['max_file_bytes']:,} bytes (serve.decoding.max_file_bytes)"
            )
        try:
            content = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as error:
            raise ImageRefusedError(f"not base64 text ({error})") from error
        return decode_image(content, decoding)

    return load


class ServedModel(PythonModel):
    """The trained network as ONNX, with the predict and serve parameters it was packaged
    with; see the module's docstring for what it answers. Its labels are the ones the
    ONNX file names."""

    def __init__(self, onnx_model: bytes, predict: dict[str, Any], serve: dict[str, Any]) -> None:
        self.onnx_model, self.predict_params, self.serve = onnx_model, predict, serve
        self._model: TrainedModel | None = None
        self._one_at_a_time = threading.Lock()

    @property
    def labels(self) -> dict[str, Any]:
        """The served model's ``LABELS``, from its ONNX file (where the model is only
        packaged, its ONNX Runtime session is dropped at once: MLflow loads a copy of its
        own to check it)."""
        network = self._model.network if self._model else OnnxNetwork(self.onnx_model)
        return {key: network.card[key] for key in LABELS}

    @property
    def model(self) -> TrainedModel:
        """The network on ONNX Runtime, with its card (started on first use)."""
        if self._model is None:
            network = OnnxNetwork(self.onnx_model)
            self._model = TrainedModel(network, network.card, pd.DataFrame())
        return self._model

    def __getstate__(self) -> dict[str, Any]:
        # Neither an ONNX Runtime session nor a lock pickles.
        return {**self.__dict__, "_model": None, "_one_at_a_time": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _one_at_a_time=threading.Lock())

    def load_context(self, context: Any) -> None:
        """Start the network's ONNX Runtime session before the first request."""
        self._model = None
        _ = self.model

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        """One row of ``user_predictions.csv`` per picture of the request."""
        from mlflow.exceptions import MlflowException  # served only

        # MLflow's scoring server answers this exception with 400 and its message.
        limit = self.serve["max_rows"]
        if len(model_input) > limit:
            raise MlflowException.invalid_parameter_value(
                f"{len(model_input):,} pictures in one request: at most {limit:,} "
                "(serve.max_rows); send them in several requests."
            )
        if not len(model_input):
            raise MlflowException.invalid_parameter_value(
                f"The request holds no picture: send at least one, base64 in the '{COLUMN}' column."
            )
        pictures = {
            _ROW.format(row): _picture(text, self.serve["decoding"])
            for row, text in enumerate(model_input[COLUMN])
        }
        # MLflow's server predicts in a pool of threads: one request at a time bounds the
        # memory that decoding takes, and Pillow's limits are the process's.
        with self._one_at_a_time:
            prepared = prepare_images(pictures, self.predict_params["resize"])
            frame = prediction_table(
                self.model,
                prepared,
                self.predict_params["batch_size"],
                self.predict_params["test_time_augmentation"],
                1.0,
            )
        frame["file"] = frame["file"].astype(int)
        if prepared["accepted"].all():
            return frame
        # A refused row's classes and probabilities are JSON's null, not NaN (not JSON).
        return frame.astype(object).where(frame.notna(), None)


def example_request() -> pd.DataFrame:
    """A request of one picture (a grey 32x32 PNG): the model's input example."""
    buffer = io.BytesIO()
    Image.new("RGB", IMAGE_SHAPE[:2], (128, 128, 128)).save(buffer, format="PNG")
    return pd.DataFrame({COLUMN: [base64.b64encode(buffer.getvalue()).decode("ascii")]})
