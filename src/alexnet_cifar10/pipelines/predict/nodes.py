"""Nodes of the predict pipeline: a folder of a person's pictures through the trained network.

How a picture becomes the network's input (``predict.resize`` in parameters_predict.yml):

1. Decoded by ``UserImageDataset`` (first frame only, turned upright per EXIF), or refused.
2. Made 8-bit RGB: transparency (alpha, or a palette/colour key) is flattened onto
   ``background``; 16-bit greyscale is scaled to 8 bits (the top byte, not clipped at
   255); greyscale, palette, CMYK and YCbCr are converted by Pillow; 32-bit integer or
   float pixels, which have no standard 8-bit scale, are refused.
3. Brought to 32x32 by ``fit``: ``crop`` (the largest centred square, then resized),
   ``pad`` (the whole picture, resized to fit and centred on ``background``) or
   ``stretch`` (resized to 32x32 whatever its aspect ratio), each resized with
   ``resample`` (``lanczos`` by default: antialiased, so a large photo is averaged
   rather than sampled). A 32x32 RGB picture is passed through unchanged.

Every file gets a status: ``ok``, ``converted: <how>`` or ``refused: <why>``.
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
from kedro.io import DatasetError
from matplotlib.figure import Figure
from PIL import Image, ImageOps

from alexnet_cifar10 import calibration
from alexnet_cifar10.datasets.user_image_dataset import ImageRefusedError, UserImage
from alexnet_cifar10.inference import predict_probabilities
from alexnet_cifar10.provenance import (
    TITLE_WIDTH,
    MixedModelsError,
    TrainedModel,
    caption,
    origin,
)
from alexnet_cifar10.validation import INPUT_SIZE

logger = logging.getLogger(__name__)

OK, CONVERTED, REFUSED = "ok", "converted", "refused"
TOP_K = 3
RESAMPLING = {
    name: getattr(Image.Resampling, name.upper())
    for name in ("lanczos", "bicubic", "hamming", "bilinear", "box", "nearest")
}
SIXTEEN_BIT = {"I;16", "I;16L", "I;16B", "I;16N"}
WITH_ALPHA = {"RGBA", "RGBa", "LA", "La", "PA"}
MODE_NAMES = {"L": "greyscale (L)", "1": "1-bit (1)", "P": "palette (P)"}
NO_8_BIT_SCALE = {"I": "32-bit integer", "F": "32-bit float"}
OPAQUE = 255
_PROGRESS_STEPS = 10
_PROGRESS_FROM = 100
_NAME_CHARS = 22


def _flatten(image: Image.Image, background: list[int]) -> tuple[Image.Image, str]:
    rgba = image.convert("RGBA")
    if rgba.getchannel("A").getextrema()[0] == OPAQUE:
        return rgba.convert("RGB"), f"{image.mode} (opaque) to RGB"
    canvas = Image.new("RGBA", rgba.size, (*background, 255))
    flat = Image.alpha_composite(canvas, rgba).convert("RGB")
    return flat, f"{image.mode} with transparency flattened onto {tuple(background)}"


def to_rgb(image: Image.Image, background: list[int]) -> tuple[Image.Image, str | None]:
    """The picture as 8-bit RGB, and how it was converted (None: it already was)."""
    mode = image.mode
    if mode in SIXTEEN_BIT:
        top_byte = (np.asarray(image).astype(np.uint16) >> 8).astype(np.uint8)
        return Image.fromarray(top_byte).convert("RGB"), f"16-bit greyscale ({mode}) to 8-bit RGB"
    if mode in NO_8_BIT_SCALE:
        raise ImageRefusedError(f"{NO_8_BIT_SCALE[mode]} pixels ({mode}) have no 8-bit scale")
    try:
        if mode in WITH_ALPHA or "transparency" in image.info:
            return _flatten(image, background)
        if mode == "RGB":
            return image, None
        return image.convert("RGB"), f"{MODE_NAMES.get(mode, mode)} to RGB"
    except ValueError as error:  # Pillow's answer to a conversion it does not have
        raise ImageRefusedError(f"pixel mode {mode} has no conversion to RGB") from error


def fit_to_input(image: Image.Image, resize: dict[str, Any]) -> Image.Image:
    """The RGB picture brought to the network's 32x32 by the ``fit`` policy."""
    size, method = (INPUT_SIZE, INPUT_SIZE), RESAMPLING[resize["resample"]]
    if resize["fit"] == "crop":
        return ImageOps.fit(image, size, method=method)
    if resize["fit"] == "pad":
        return ImageOps.pad(image, size, method=method, color=tuple(resize["background"]))
    return image.resize(size, method)


def _prepare_one(
    load: Callable[[], UserImage], resize: dict[str, Any]
) -> tuple[dict[str, str], np.ndarray | None]:
    """One file's facts and status, and its 32x32 pixels unless it was refused."""
    try:
        photo = load()
        rgb, conversion = to_rgb(photo.image, resize["background"])
    except DatasetError as error:  # ImageRefusedError, or the catalog's own wrapping
        return {"status": f"{REFUSED}: {str(error).splitlines()[-1]}"}, None
    notes = [f"first of {photo.frames} frames"] if photo.frames > 1 else []
    notes += ["turned upright (EXIF orientation)"] if photo.rotated else []
    notes += [conversion] if conversion else []
    facts = {
        "status": f"{CONVERTED}: {'; '.join(notes)}" if notes else OK,
        "format": photo.format,
        "original_size": f"{photo.size[0]}x{photo.size[1]}",
        "original_mode": photo.mode,
    }
    return facts, np.asarray(fit_to_input(rgb, resize), dtype=np.uint8)


def _log_progress(done: int, total: int, refused: int) -> None:
    step = max(total // _PROGRESS_STEPS, 1)
    if total >= _PROGRESS_FROM and (done % step == 0 or done == total):
        logger.info("Prepared %d of %d pictures (%d refused so far)", done, total, refused)


def prepare_images(
    images: dict[str, Callable[[], UserImage]], resize: dict[str, Any]
) -> dict[str, np.ndarray]:
    """Decode, convert and resize every file of the folder; say how, or why not."""
    rows, pixels = [], []
    for done, name in enumerate(sorted(images), start=1):
        facts, array = _prepare_one(images[name], resize)
        rows.append({"file_name": name, "format": "", "original_size": "", "original_mode": ""})
        rows[-1].update(facts)
        pixels += [array] if array is not None else []
        _log_progress(done, len(images), done - len(pixels))
    table = {key: np.array([row[key] for row in rows]) for key in rows[0]}
    empty = np.zeros((0, INPUT_SIZE, INPUT_SIZE, 3), np.uint8)
    accepted = ~np.char.startswith(table["status"], REFUSED)
    return {**table, "accepted": accepted, "images": np.stack(pixels) if pixels else empty}


def _top_classes(probabilities: np.ndarray, class_names: list[str]) -> dict[str, np.ndarray]:
    known = ~np.isnan(probabilities).any(axis=1)
    order = np.argsort(-np.nan_to_num(probabilities, nan=-1.0), axis=1, kind="stable")
    rows, names, columns = np.arange(len(probabilities)), np.asarray(class_names), {}
    for rank in range(1, min(TOP_K, len(class_names)) + 1):
        labels = order[:, rank - 1]
        columns[f"top{rank}_class"] = np.where(known, names[labels], None)
        columns[f"top{rank}_probability"] = probabilities[rows, labels]
    return columns


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
    accepted, class_names = prepared["accepted"], model.card["class_names"]
    scale = _temperature(model, temperature, temperature_scaling)
    probabilities = np.full((len(accepted), len(class_names)), np.nan, dtype=np.float32)
    if accepted.any():
        probabilities[accepted] = predict_probabilities(
            model.network, prepared["images"], batch_size, test_time_augmentation
        )
        if temperature_scaling:
            probabilities[accepted] = calibration.with_temperature(probabilities[accepted], scale)
    # One DataFrame built from its columns: a served picture is one such table a request.
    columns = {"file": prepared["file_name"], "status": prepared["status"]}
    columns |= _top_classes(probabilities, class_names) | model.labels
    columns["temperature"] = np.full(len(accepted), scale)
    columns |= {key: prepared[key] for key in ("format", "original_size", "original_mode")}
    columns |= {f"p_{name}": probabilities[:, i] for i, name in enumerate(class_names)}
    return pd.DataFrame(columns)


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
