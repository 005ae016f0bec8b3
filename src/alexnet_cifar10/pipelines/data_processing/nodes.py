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


def split_indices(data: CIFAR10Data, params: dict[str, Any], seed: int) -> dict[str, np.ndarray]:
    """Seeded train/validation indices into the official training set; test untouched."""
    rng = np.random.default_rng(seed)
    train, validation = _subset(
        np.arange(len(data["train_labels"])),
        data["train_labels"],
        params["validation_fraction"],
        rng,
        bool(params["stratify"]),
    )
    test = np.arange(len(data["test_labels"]))
    if params["subset_fraction"] < 1:
        # A smoke-run subset: keep the same fraction of every split, stratified.
        fraction = params["subset_fraction"]
        train = _subset(train, data["train_labels"], fraction, rng, True)[1]
        validation = _subset(validation, data["train_labels"], fraction, rng, True)[1]
        test = _subset(test, data["test_labels"], fraction, rng, True)[1]
    return {"train": train, "validation": validation, "test": test}


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
    images: np.ndarray, labels: np.ndarray, index: np.ndarray, num_classes: int
) -> dict[str, np.ndarray]:
    """Images, one-hot labels and each image's index in its official batch file set."""
    one_hot = np.eye(num_classes, dtype=np.float32)[labels[index]]
    return {"images": images[index], "labels": one_hot, "index": index}


def encode_splits(
    data: CIFAR10Data, split: dict[str, np.ndarray], class_names: list[str]
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The images, one-hot labels and official indices of each split's images."""
    images, labels, classes = data["train_images"], data["train_labels"], len(class_names)
    return (
        _encode(images, labels, split["train"], classes),
        _encode(images, labels, split["validation"], classes),
        _encode(data["test_images"], data["test_labels"], split["test"], classes),
    )


def build_model_inputs(
    data: CIFAR10Data, params: dict[str, Any], seed: int, class_names: list[str]
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Split the release (seeded train/validation, test untouched) into uint8 images,
    one-hot labels and official indices: the only node that reads the raw release."""
    _check_class_names(data, class_names)
    split = split_indices(data, params, seed)
    logger.info(
        "Split: %d train, %d validation, %d test images",
        *(len(split[name]) for name in ("train", "validation", "test")),
    )
    return encode_splits(data, split, class_names)


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
        "channel_mean": mean,
        "channel_std": std,
    }


def summarise_dataset(
    train: dict[str, np.ndarray],
    validation: dict[str, np.ndarray],
    test: dict[str, np.ndarray],
    class_names: list[str],
    run_label: str,
) -> dict[str, Any]:
    """Report the images, class counts and per-channel pixel statistics of each split."""
    splits = {"train": train, "validation": validation, "test": test}
    return {
        "run_label": run_label,
        "splits": {name: _describe_split(split, class_names) for name, split in splits.items()},
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
    figure.suptitle(f"CIFAR-10 training images by class\n{run_label}", fontsize=10)
    figure.tight_layout()
    return figure
