"""Class probabilities of a trained network (Keras, or exported to ONNX), optionally
averaged over test-time views, and the table of a run's or a request's predictions.

Part of what the served MLflow model carries (see ``pictures``): NumPy and pandas only."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd

from alexnet_cifar10 import calibration
from alexnet_cifar10.provenance import TrainedModel

TOP_K = 3


def _shifted(images: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """The images moved by (rows, cols) pixels, the uncovered border filled with zeros."""
    moved = np.zeros_like(images)
    height, width = images.shape[1:3]
    source = images[:, max(-rows, 0) : height - max(rows, 0), max(-cols, 0) : width - max(cols, 0)]
    moved[:, max(rows, 0) : height + min(rows, 0), max(cols, 0) : width + min(cols, 0)] = source
    return moved


def views(images: np.ndarray, tta: Mapping[str, Any]) -> Iterator[np.ndarray]:
    """The images, their copies shifted by ``tta['shift']`` pixels up, down, left and
    right, and, with ``tta['horizontal_flip']``, the mirror image of each of those."""
    step = tta["shift"]
    moves = [(0, 0)] + ([(step, 0), (-step, 0), (0, step), (0, -step)] if step else [])
    for rows, cols in moves:
        view = _shifted(images, rows, cols) if rows or cols else images
        yield view
        if tta["horizontal_flip"]:
            yield view[:, :, ::-1]


def predict_probabilities(
    network: Any, images: np.ndarray, batch_size: int, tta: Mapping[str, Any]
) -> np.ndarray:
    """The network's class probabilities, averaged over the test-time views."""
    each = [network.predict(view, batch_size=batch_size, verbose=0) for view in views(images, tta)]
    return np.mean(each, axis=0, dtype=np.float32)


class OnnxNetwork:
    """A network exported as ONNX, on ONNX Runtime's CPU provider, with the slice of Keras'
    ``Model.predict`` that the project's nodes call, and the card its export wrote into
    the file (the model's labels and class names)."""

    def __init__(self, onnx_model: bytes) -> None:
        import onnxruntime  # only where an exported network runs

        options = onnxruntime.SessionOptions()
        # Without ONNX Runtime's memory arena a session does not keep the memory of its
        # largest batch (it is allocated again per batch), so `make quick` stays under
        # 2 GB; the few pictures of a served request take as long either way.
        options.enable_cpu_mem_arena = False
        self._session = onnxruntime.InferenceSession(
            onnx_model, options, providers=["CPUExecutionProvider"]
        )
        self._input = self._session.get_inputs()[0].name
        meta = dict(self._session.get_modelmeta().custom_metadata_map)
        self.card = {**meta, "class_names": json.loads(meta.get("class_names", "[]"))}

    def predict(self, images: np.ndarray, batch_size: int, verbose: int = 0) -> np.ndarray:
        """The class probabilities of uint8 ``images``, ``batch_size`` at a time."""
        batches = [
            self._session.run(None, {self._input: np.ascontiguousarray(batch)})[0]
            for batch in np.array_split(images, max(math.ceil(len(images) / batch_size), 1))
        ]
        return np.concatenate(batches)


def _top_classes(probabilities: np.ndarray, class_names: list[str]) -> dict[str, np.ndarray]:
    known = ~np.isnan(probabilities).any(axis=1)
    order = np.argsort(-np.nan_to_num(probabilities, nan=-1.0), axis=1, kind="stable")
    rows, names, columns = np.arange(len(probabilities)), np.asarray(class_names), {}
    for rank in range(1, min(TOP_K, len(class_names)) + 1):
        labels = order[:, rank - 1]
        columns[f"top{rank}_class"] = np.where(known, names[labels], None)
        columns[f"top{rank}_probability"] = probabilities[rows, labels]
    return columns


def prediction_table(
    model: TrainedModel,
    prepared: dict[str, np.ndarray],
    batch_size: int,
    tta: Mapping[str, Any],
    temperature: float,
) -> pd.DataFrame:
    """One row per file of ``prepared`` (``pictures.prepare_images``): its status, its
    top-3 classes and every class probability at ``temperature`` (empty where refused),
    and the model that gave them."""
    accepted, class_names = prepared["accepted"], model.card["class_names"]
    probabilities = np.full((len(accepted), len(class_names)), np.nan, dtype=np.float32)
    if accepted.any():
        found = predict_probabilities(model.network, prepared["images"], batch_size, tta)
        if temperature != 1.0:
            found = calibration.with_temperature(found, temperature)
        probabilities[accepted] = found
    # One DataFrame built from its columns: a served picture is one such table a request.
    columns = {"file": prepared["file_name"], "status": prepared["status"]}
    columns |= _top_classes(probabilities, class_names) | model.labels
    columns["temperature"] = np.full(len(accepted), temperature)
    columns |= {key: prepared[key] for key in ("format", "original_size", "original_mode")}
    columns |= {f"p_{name}": probabilities[:, i] for i, name in enumerate(class_names)}
    return pd.DataFrame(columns)
