"""Nodes of the data_processing pipeline: split, encode and describe CIFAR-10."""

from __future__ import annotations

import logging
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from alexnet_cifar10.datasets.cifar10_dataset import CIFAR10Data
from alexnet_cifar10.validation import ParameterError

logger = logging.getLogger(__name__)

_STATS_CHUNK = 5000


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


def split_dataset(data: CIFAR10Data, params: dict[str, Any], seed: int) -> dict[str, np.ndarray]:
    """Split the official training set into seeded train/validation indices, test untouched."""
    rng = np.random.default_rng(seed)
    stratify = bool(params["stratify"])
    train, validation = _subset(
        np.arange(len(data["train_labels"])),
        data["train_labels"],
        params["validation_fraction"],
        rng,
        stratify,
    )
    test = np.arange(len(data["test_labels"]))
    if params["subset_fraction"] < 1:
        # A smoke-run subset: keep the same fraction of every split, stratified.
        fraction = params["subset_fraction"]
        train = _subset(train, data["train_labels"], fraction, rng, True)[1]
        validation = _subset(validation, data["train_labels"], fraction, rng, True)[1]
        test = _subset(test, data["test_labels"], fraction, rng, True)[1]
    logger.info(
        "Split: %d train, %d validation, %d test images", len(train), len(validation), len(test)
    )
    return {"train": train, "validation": validation, "test": test}


def _encode(
    images: np.ndarray, labels: np.ndarray, index: np.ndarray, num_classes: int
) -> dict[str, np.ndarray]:
    """Images, one-hot labels and each image's index in its official batch file set."""
    one_hot = np.eye(num_classes, dtype=np.float32)[labels[index]]
    return {"images": images[index], "labels": one_hot, "index": index}


def build_model_inputs(
    data: CIFAR10Data, split: dict[str, np.ndarray], class_names: list[str]
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Gather uint8 images, one-hot labels and official indices for each split."""
    _check_class_names(data, class_names)
    images, labels, classes = data["train_images"], data["train_labels"], len(class_names)
    return (
        _encode(images, labels, split["train"], classes),
        _encode(images, labels, split["validation"], classes),
        _encode(data["test_images"], data["test_labels"], split["test"], classes),
    )


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


def _describe_split(labels: np.ndarray, class_names: list[str]) -> dict[str, Any]:
    counts = np.bincount(labels, minlength=len(class_names))
    return {
        "images": int(len(labels)),
        "class_counts": dict(zip(class_names, (int(c) for c in counts), strict=True)),
    }


def summarise_dataset(
    data: CIFAR10Data, split: dict[str, np.ndarray], class_names: list[str], run_label: str
) -> dict[str, Any]:
    """Report class counts per split and per-channel pixel statistics."""
    train_labels, test_labels = data["train_labels"], data["test_labels"]
    mean, std = _channel_stats(data["train_images"])
    test_mean, test_std = _channel_stats(data["test_images"])
    return {
        "run_label": run_label,
        "splits": {
            "official_train": _describe_split(train_labels, class_names),
            "official_test": _describe_split(test_labels, class_names),
            "train": _describe_split(train_labels[split["train"]], class_names),
            "validation": _describe_split(train_labels[split["validation"]], class_names),
            "test": _describe_split(test_labels[split["test"]], class_names),
        },
        "channel_mean": {"official_train": mean, "official_test": test_mean},
        "channel_std": {"official_train": std, "official_test": test_std},
        "channels": ["red", "green", "blue"],
        "pixel_scale": "pixels / 255",
    }


def plot_sample_images(data: CIFAR10Data, class_names: list[str], per_class: int) -> Figure:
    """Grid of the first ``per_class`` training images of every class, one row per class."""
    figure, axes = plt.subplots(
        len(class_names),
        per_class,
        squeeze=False,
        figsize=(per_class * 0.9 + 1.2, len(class_names) * 0.9),
    )
    for row, name in enumerate(class_names):
        picks = np.flatnonzero(data["train_labels"] == row)[:per_class]
        for col in range(per_class):
            axis = axes[row, col]
            axis.set_xticks([])
            axis.set_yticks([])
            if col < len(picks):
                axis.imshow(data["train_images"][picks[col]], interpolation="nearest")
        axes[row, 0].set_ylabel(name, rotation=0, ha="right", va="center")
    figure.suptitle("CIFAR-10 training images by class")
    figure.tight_layout()
    return figure
