"""Class probabilities of a trained network, optionally averaged over test-time views."""

from __future__ import annotations

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
