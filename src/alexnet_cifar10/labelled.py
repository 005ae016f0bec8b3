"""A folder of a person's labelled pictures: its layout and its class names.

The layout of Keras' ``image_dataset_from_directory`` and torchvision's ``ImageFolder``:
``<folder>/<class name>/<pictures>``, or already split, ``<folder>/train/<class name>/...``
with ``validation/`` and ``test/`` beside it (either may be left out). Class names are the
class folders' names, sorted; hidden files and folders (a name starting with '.') are
ignored. Read by the ``image_classes`` configuration resolver (``settings.py``), which makes
the folder's classes the ``class_names`` parameter, and by the data_processing pipeline.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any, NamedTuple

import numpy as np

from alexnet_cifar10.pictures import REFUSED, UserImage, prepare_images

SPLIT_FOLDERS = ("train", "validation", "test")
MIN_CLASSES, MAX_CLASSES = 2, 1000


class Placed(NamedTuple):
    """Where a file of the folder belongs: its split ('' where the folder has none) and
    class ('' for a file outside any class folder)."""

    split: str
    label: str


def _visible(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if not p.name.startswith("."))


def is_pre_split(top_folders: set[str]) -> bool:
    """Whether a folder whose sub-folders are ``top_folders`` is already split: it holds
    ``train/`` and maybe ``validation/`` and ``test/``, nothing else."""
    return "train" in top_folders and top_folders <= set(SPLIT_FOLDERS)


def top_folders(relative_paths: list[str]) -> set[str]:
    """The folders at the top of the folder's files (relative paths)."""
    return {PurePosixPath(path).parts[0] for path in relative_paths if "/" in path}


def image_classes(folder: str) -> list[str]:
    """The class names of a labelled folder, sorted: its class folders (those of
    ``train/`` where it is split); none where it is missing or empty."""
    root = Path(folder)
    if not root.is_dir():
        return []
    if is_pre_split({p.name for p in _visible(root) if p.is_dir()}):
        root = root / "train"
    return [path.name for path in _visible(root) if path.is_dir()]


def class_names(folder: str) -> list[str]:
    """The ``image_classes`` resolver: the folder's classes, or a ``ParameterError`` that
    says what to put where when there are fewer than 2 or more than 1,000 of them."""
    from alexnet_cifar10.validation import ParameterError

    names = image_classes(folder)
    if not MIN_CLASSES <= len(names) <= MAX_CLASSES:
        found = f"{len(names)} class folder(s)" if Path(folder).is_dir() else "no such folder"
        raise ParameterError(f"No labelled pictures to learn from: {found}. {layout_help(folder)}")
    return names


def place(relative: str, pre_split: bool) -> Placed:
    """The split and class of a file, from its path relative to the folder."""
    parts = PurePosixPath(relative).parts
    if pre_split:
        split, parts = parts[0], parts[1:]
        return Placed(split if split in SPLIT_FOLDERS else "", parts[0] if len(parts) > 1 else "")
    return Placed("", parts[0] if len(parts) > 1 else "")


def layout_help(folder: str) -> str:
    """What to put where, for a message about a folder that has too few classes."""
    return (
        f"Put each class's pictures in a folder of its own under '{folder}' "
        f"({folder}/<class name>/<pictures>; or split: {folder}/train/<class name>/..., with "
        f"validation/ and test/ beside it), {MIN_CLASSES} to {MAX_CLASSES} classes."
    )


def _reason(status: str, placed: Placed, class_names: list[str]) -> str | None:
    """Why a file is left out (None: it is kept)."""
    if not placed.label:
        return "not in a class folder"
    if placed.label not in class_names:
        return f"class folder '{placed.label}' is not one of class_names"
    if status.startswith(REFUSED):
        return status.removeprefix(f"{REFUSED}: ")
    return None


def decode_folder(
    pictures: dict[str, Callable[[], UserImage]],
    resize: dict[str, Any],
    side: int,
    class_names: list[str],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every picture decoded and brought to ``side`` x ``side`` RGB, grouped by split:
    arrays shaped as ``CIFAR10Dataset`` gives them (the pictures of a folder without
    ``train/`` all in train; ``validation_*`` where it has ``validation/``), each split's
    file names beside; and the inventory: per class, the files found and refused, and each
    refused file with its reason."""
    pre_split = is_pre_split(top_folders(list(pictures)))
    prepared = prepare_images(pictures, resize, side)
    image_of = np.cumsum(prepared["accepted"]) - 1  # an accepted file's row in the images
    # Each split's kept files: (row in the table, class index).
    kept: dict[str, list[tuple[int, int]]] = {name: [] for name in SPLIT_FOLDERS}
    refused, found = [], Counter()
    for row, name in enumerate(prepared["file_name"]):
        placed = place(str(name), pre_split)
        found[placed.label] += 1
        if reason := _reason(str(prepared["status"][row]), placed, class_names):
            refused.append({"file": str(name), "class": placed.label, "reason": reason})
        else:
            kept[placed.split or "train"].append((row, class_names.index(placed.label)))
    data: dict[str, Any] = {"label_names": list(class_names)}
    for split, files in kept.items():
        if split != "validation" or files:
            rows = [row for row, _ in files]
            data[f"{split}_images"] = prepared["images"][image_of[rows]]
            data[f"{split}_labels"] = np.array([label for _, label in files], dtype=np.int64)
            data[f"{split}_files"] = prepared["file_name"][rows].astype(str)
    refused_in = Counter(item["class"] for item in refused)
    inventory = {
        "layout": "split (train/validation/test folders)" if pre_split else "one folder per class",
        "classes": {n: {"files": found[n], "refused": refused_in[n]} for n in class_names},
        "refused": refused,
        "formats": dict(Counter(str(f) for f in prepared["format"] if f)),
    }
    return data, inventory
