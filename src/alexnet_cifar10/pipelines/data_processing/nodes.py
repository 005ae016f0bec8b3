"""Nodes of the data_processing pipeline: split, encode and describe the labelled pictures
(CIFAR-10's release, or a person's folder: ``alexnet_cifar10.labelled``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from kedro.io import DatasetError
from matplotlib.figure import Figure
from PIL import Image

from alexnet_cifar10 import labelled
from alexnet_cifar10.datasets.cifar10_dataset import CIFAR10Data
from alexnet_cifar10.pictures import UserImage, fit_to_input
from alexnet_cifar10.validation import ParameterError

logger = logging.getLogger(__name__)

_STATS_CHUNK = 5000
# A largest / smallest class ratio in train above this is logged as imbalanced.
IMBALANCED = 1.5


def _check_class_names(data: CIFAR10Data, class_names: list[str]) -> None:
    if list(data["label_names"]) != list(class_names):
        raise ParameterError(
            f"Parameter 'class_names' {class_names} does not match the dataset's label "
            f"names {data['label_names']}; fix conf/base/parameters.yml."
        )


def _subset(
    indices: np.ndarray,
    labels: np.ndarray,
    fraction: float,
    rng: np.random.Generator,
    stratify: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``indices`` into (kept, taken) with ``fraction`` of them taken, seeded."""
    if not stratify:
        shuffled = rng.permutation(indices)
        n_taken = round(len(indices) * fraction)
        return np.sort(shuffled[n_taken:]), np.sort(shuffled[:n_taken])
    # Each list starts with an empty array: an empty ``indices`` gives two empty halves.
    kept, taken = [indices[:0]], [indices[:0]]
    for label in np.unique(labels[indices]):
        members = rng.permutation(indices[labels[indices] == label])
        n_taken = round(len(members) * fraction)
        taken.append(members[:n_taken])
        kept.append(members[n_taken:])
    return np.sort(np.concatenate(kept)), np.sort(np.concatenate(taken))


def _source(data: CIFAR10Data, split: str) -> str:
    """The arrays a split's indices point into: its own where the data has them (the
    official test batch, a folder's test/ and validation/), else the training pictures."""
    return split if len(data.get(f"{split}_labels", ())) else "train"


def split_indices(data: CIFAR10Data, params: dict[str, Any], seed: int) -> dict[str, np.ndarray]:
    """Seeded train/validation indices into the training pictures; a test split carved
    from them (``test_fraction``) only where the data has none, a given one untouched."""
    rng, stratify, labels = (
        np.random.default_rng(seed),
        bool(params["stratify"]),
        data["train_labels"],
    )
    pool = np.arange(len(labels))
    test = np.arange(len(data["test_labels"]))
    if _source(data, "test") == "train":
        pool, test = _subset(pool, labels, params["test_fraction"], rng, stratify)
    if _source(data, "validation") == "train":
        train, validation = _subset(pool, labels, params["validation_fraction"], rng, stratify)
    else:
        train, validation = pool, np.arange(len(data["validation_labels"]))
    split = {"train": train, "validation": validation, "test": test}
    if params["subset_fraction"] < 1:
        # A smoke-run subset: keep the same fraction of every split, stratified.
        for name in ("train", "validation", "test"):
            source = data[f"{_source(data, name)}_labels"]
            split[name] = _subset(split[name], source, params["subset_fraction"], rng, True)[1]
    return split


def take_fraction(
    split: dict[str, np.ndarray], fraction: float, seed: int
) -> dict[str, np.ndarray]:
    """A seeded, stratified ``fraction`` of an encoded split (the whole split at 1)."""
    if fraction == 1:
        return split
    labels = split["labels"].argmax(axis=1)
    rng = np.random.default_rng(seed)
    taken = _subset(np.arange(len(labels)), labels, fraction, rng, stratify=True)[1]
    logger.info(
        "Kept %d of %d images (%.0f%%, stratified)", len(taken), len(labels), 100 * fraction
    )
    return {key: value[taken] for key, value in split.items()}


def _encode(
    data: CIFAR10Data, source: str, index: np.ndarray, classes: int
) -> dict[str, np.ndarray]:
    """Images, one-hot labels and each image's index in its source (the official batch
    files, or the folder's split), with its file name where it came from a folder."""
    one_hot = np.eye(classes, dtype=np.float32)[data[f"{source}_labels"][index]]
    encoded = {"images": data[f"{source}_images"][index], "labels": one_hot, "index": index}
    if f"{source}_files" in data:
        encoded["file_name"] = data[f"{source}_files"][index]
    return encoded


def encode_splits(
    data: CIFAR10Data, split: dict[str, np.ndarray], class_names: list[str]
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The images, one-hot labels and source indices of each split's images."""
    return tuple(  # type: ignore[return-value]
        _encode(data, _source(data, name), split[name], len(class_names))
        for name in ("train", "validation", "test")
    )


def _check_every_class(
    data: CIFAR10Data, split: dict[str, np.ndarray], class_names: list[str]
) -> None:
    """Every class needs pictures in every split: say which have too few, and how many."""
    short = {}
    for name, index in split.items():
        counts = np.bincount(
            data[f"{_source(data, name)}_labels"][index], minlength=len(class_names)
        )
        short |= {
            class_names[c]: name for c in np.flatnonzero(counts == 0) if class_names[c] not in short
        }
    if short:
        listed = ", ".join(f"'{label}' (none in {where})" for label, where in short.items())
        raise DatasetError(
            f"Too few usable pictures to split: {listed}. Add pictures to these classes (the "
            "data report lists refused files), or lower data_processing.test_fraction / "
            "validation_fraction."
        )


def _resized(images: np.ndarray, resize: dict[str, Any], side: int) -> np.ndarray:
    if images.shape[1:3] == (side, side):
        return images
    return np.stack([np.asarray(fit_to_input(Image.fromarray(i), resize, side)) for i in images])


def read_raw(
    raw: CIFAR10Data | dict[str, Callable[[], UserImage]],
    resize: dict[str, Any],
    side: int,
    class_names: list[str],
) -> tuple[CIFAR10Data, dict[str, Any]]:
    """The raw pictures as arrays at ``side`` x ``side`` and their inventory: the CIFAR-10
    release as it is (resized if asked), a folder's pictures decoded (``labelled``)."""
    if "label_names" not in raw:  # a folder: {relative path: load function}
        return labelled.decode_folder(raw, resize, side, class_names)
    _check_class_names(raw, class_names)
    data = {
        **raw,
        **{f"{s}_images": _resized(raw[f"{s}_images"], resize, side) for s in ("train", "test")},
    }
    counts = np.bincount(
        np.concatenate([raw["train_labels"], raw["test_labels"]]), minlength=len(class_names)
    )
    classes = {
        name: {"files": int(n), "refused": 0} for name, n in zip(class_names, counts, strict=True)
    }
    return data, {
        "layout": "CIFAR-10 python release",
        "classes": classes,
        "refused": [],
        "formats": {},
    }


def build_model_inputs(
    raw: CIFAR10Data | dict[str, Callable[[], UserImage]],
    params: dict[str, Any],
    seed: int,
    class_names: list[str],
    input_size: int,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray], dict[str, Any]]:
    """Split the raw pictures (seeded, stratified; a given test or validation split kept)
    into uint8 images, one-hot labels and source indices, with the raw data's inventory:
    the only node that reads the raw data."""
    data, inventory = read_raw(raw, params["resize"], input_size, class_names)
    split = split_indices(data, params, seed)
    _check_every_class(data, split, class_names)
    logger.info(
        "Split: %d train, %d validation, %d test pictures (%d refused)",
        *(len(split[name]) for name in ("train", "validation", "test")),
        len(inventory["refused"]),
    )
    return (*encode_splits(data, split, class_names), inventory)


def _channel_stats(images: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of pixels/255, in float64 chunks to bound memory."""
    total = np.zeros(3)
    squares = np.zeros(3)
    for start in range(0, len(images), _STATS_CHUNK):
        chunk = images[start : start + _STATS_CHUNK].reshape(-1, 3).astype(np.float64) / 255
        total += chunk.sum(axis=0)
        squares += np.square(chunk).sum(axis=0)
    count = images.shape[0] * images.shape[1] * images.shape[2]
    mean = total / count
    std = np.sqrt(squares / count - mean**2)
    return [round(float(v), 6) for v in mean], [round(float(v), 6) for v in std]


def _describe_split(split: dict[str, np.ndarray], class_names: list[str]) -> dict[str, Any]:
    counts = np.bincount(split["labels"].argmax(axis=1), minlength=len(class_names))
    mean, std = _channel_stats(split["images"])
    return {
        "images": int(len(split["images"])),
        "class_counts": dict(zip(class_names, (int(c) for c in counts), strict=True)),
        # The largest class over the smallest: 1 is balanced (training.class_weight).
        "imbalance": round(float(counts.max() / max(counts.min(), 1)), 3),
        "channel_mean": mean,
        "channel_std": std,
    }


def summarise_dataset(  # noqa: PLR0913
    train: dict[str, np.ndarray],
    validation: dict[str, np.ndarray],
    test: dict[str, np.ndarray],
    inventory: dict[str, Any],
    class_names: list[str],
    run_label: str,
) -> dict[str, Any]:
    """Report the raw data's inventory (files found and refused, why), then the images,
    class counts, imbalance and per-channel pixel statistics of each split."""
    splits = {"train": train, "validation": validation, "test": test}
    described = {name: _describe_split(split, class_names) for name, split in splits.items()}
    if described["train"]["imbalance"] > IMBALANCED:
        logger.warning(
            "The training classes are imbalanced (largest / smallest %.1f): see the "
            "dataset report; training.class_weight: balanced weighs them evenly",
            described["train"]["imbalance"],
        )
    return {
        "run_label": run_label,
        "raw": inventory,
        "splits": described,
        "channels": ["red", "green", "blue"],
        "pixel_scale": "pixels / 255",
    }


def plot_sample_images(
    train: dict[str, np.ndarray], class_names: list[str], per_class: int, run_label: str
) -> Figure:
    """Grid of the first ``per_class`` training images of every class, one row per class."""
    figure, axes = plt.subplots(
        len(class_names),
        per_class,
        squeeze=False,
        figsize=(per_class * 0.9 + 1.2, len(class_names) * 0.9 + 0.4),
    )
    labels = train["labels"].argmax(axis=1)
    for row, name in enumerate(class_names):
        picks = np.flatnonzero(labels == row)[:per_class]
        for col in range(per_class):
            axis = axes[row, col]
            axis.set_xticks([])
            axis.set_yticks([])
            if col < len(picks):
                axis.imshow(train["images"][picks[col]], interpolation="nearest")
        axes[row, 0].set_ylabel(name, rotation=0, ha="right", va="center")
    figure.suptitle(f"Training images by class\n{run_label}", fontsize=10)
    figure.tight_layout()
    return figure
