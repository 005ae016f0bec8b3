"""Class probabilities of a trained network (Keras, or exported to ONNX), optionally
averaged over test-time views."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np


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
