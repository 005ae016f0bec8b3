"""Nodes of the predict pipeline: a folder of a person's pictures through the trained network.

Each file is decoded by ``UserImageDataset`` and brought to the network's input by
``pictures.prepare_images`` (how, and what is refused: that module's docstring); every
file gets a status: ``ok``, ``converted: <how>`` or ``refused: <why>``.
"""

from __future__ import annotations

import logging
import math
import textwrap
from collections.abc import Callable
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from alexnet_cifar10 import pictures
from alexnet_cifar10.inference import prediction_table
from alexnet_cifar10.pictures import CONVERTED, INPUT_SIZE, REFUSED, UserImage
from alexnet_cifar10.provenance import (
    TITLE_WIDTH,
    MixedModelsError,
    TrainedModel,
    caption,
    origin,
)
from alexnet_cifar10.validation import ParameterError

logger = logging.getLogger(__name__)

_NAME_CHARS = 22


def prepare_images(
    images: dict[str, Callable[[], UserImage]], resize: dict[str, Any]
) -> dict[str, np.ndarray]:
    """Decode, convert and resize every file of the folder; say how, or why not."""
    return pictures.prepare_images(images, resize)


def _temperature(model: TrainedModel, temperature: dict[str, Any], scaling: bool) -> float:
    """The temperature to apply: the one evaluate fitted for this very model, or 1."""
    if not scaling:
        return 1.0
    if temperature["model_version"] != model.labels["model_version"]:
        raise MixedModelsError(
            f"predict.temperature_scaling: the temperature was fitted for model "
            f"{temperature['model_version']}, not for model {model.labels['model_version']}; "
            "run `kedro run --pipelines evaluate` with the same --load-versions model:... "
            "first, or pass --load-versions temperature:<its version>."
        )
    return float(temperature["temperature"])


def predict_images(  # noqa: PLR0913
    model: TrainedModel,
    prepared: dict[str, np.ndarray],
    batch_size: int,
    test_time_augmentation: dict[str, Any],
    temperature: dict[str, Any],
    temperature_scaling: bool,
) -> pd.DataFrame:
    """Top-3 classes and every class probability of each accepted picture, with the
    model that gave them (and the temperature, 1 unless scaling is on); a refused file
    keeps its row, status and empty classes."""
    side = model.network.input_shape[1]
    if side != INPUT_SIZE:
        raise ParameterError(
            f"Model {model.card['model_version']} takes {side}x{side} pictures; predict "
            f"brings pictures to {INPUT_SIZE}x{INPUT_SIZE} (train at training.model.input_size "
            f"{INPUT_SIZE} to predict, serve and export)."
        )
    scale = _temperature(model, temperature, temperature_scaling)
    return prediction_table(model, prepared, batch_size, test_time_augmentation, scale)


def _tile(axis: Any, row: pd.Series, pixels: np.ndarray | None) -> None:
    axis.set_xticks([])
    axis.set_yticks([])
    name = row["file"]
    name = name if len(name) <= _NAME_CHARS else f"...{name[3 - _NAME_CHARS :]}"
    if pixels is None:
        # A grey picture of the same 32x32, so that the tile is as large as the others.
        axis.imshow(np.full((INPUT_SIZE, INPUT_SIZE, 3), 224, np.uint8), interpolation="nearest")
        reason = textwrap.wrap(row["status"].removeprefix(f"{REFUSED}: "), 24)[:5]
        axis.text(
            0.5,
            0.5,
            "\n".join(reason),
            ha="center",
            va="center",
            fontsize=6,
            transform=axis.transAxes,
        )
        axis.set_title(f"{name}\nrefused", fontsize=7, color="firebrick")
        return
    axis.imshow(pixels, interpolation="nearest")
    label = f"{row['top1_class']} {row['top1_probability']:.2f}"
    axis.set_title(f"{name}\n{label}", fontsize=7)


def plot_contact_sheet(
    prepared: dict[str, np.ndarray], predictions: pd.DataFrame, sheet: dict[str, Any]
) -> Figure:
    """Each picture as the network saw it (32x32), with its top class and confidence;
    refused files as grey tiles saying why."""
    shown = predictions.head(sheet["max_images"])
    columns = min(sheet["columns"], len(shown))
    rows = math.ceil(len(shown) / columns)
    figure, axes = plt.subplots(
        rows, columns, squeeze=False, figsize=(columns * 1.45, rows * 1.75 + 0.9)
    )
    image_of = np.cumsum(prepared["accepted"]) - 1
    for axis, (index, row) in zip(axes.flat, shown.iterrows(), strict=False):
        pixels = prepared["images"][image_of[index]] if prepared["accepted"][index] else None
        _tile(axis, row, pixels)
    for axis in axes.flat[len(shown) :]:
        axis.axis("off")
    # A sheet of a few pictures is narrow: its title wraps to the figure (about 13
    # characters of 9-point text an inch), the caption at most at the plots' width.
    width = min(TITLE_WIDTH, int(columns * 1.45 * 13))
    heading = f"What the network saw: {len(shown)} of {len(predictions)} pictures at 32x32, "
    heading += "top class and confidence"
    figure.suptitle(
        f"{textwrap.fill(heading, width)}\n{caption(origin(predictions), width)}", fontsize=9
    )
    figure.tight_layout()
    return figure


def summarise_predictions(predictions: pd.DataFrame) -> dict[str, Any]:
    """Count the pictures predicted (converted among them) and refused; log one line."""
    status = predictions["status"].astype(str)
    refused = status.str.startswith(REFUSED)
    converted = status.str.startswith(CONVERTED)
    labels = origin(predictions)
    logger.info(
        "Predict summary: %d predicted (%d of them converted), %d refused, of %d files; model %s",
        int((~refused).sum()),
        int(converted.sum()),
        int(refused.sum()),
        len(status),
        labels["model_version"],
    )
    return {
        **labels,
        "files": len(status),
        "predicted": int((~refused).sum()),
        "converted": int(converted.sum()),
        "refused": int(refused.sum()),
        "refused_files": dict(zip(predictions["file"][refused], status[refused], strict=True)),
    }
