"""Small labelled picture folders, in the layout of Keras' image_dataset_from_directory."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

# (format, file suffix, side): mixed sizes and formats, as a person's photos come.
KINDS = (("PNG", "png", 32), ("JPEG", "jpg", 48), ("WEBP", "webp", 40), ("BMP", "bmp", 24))


def picture(label: int, seed: int, side: int) -> Image.Image:
    """A picture whose class shows in its colour: class ``label`` is brightest in channel
    ``label % 3`` (with noise), so a tiny network tells a few classes apart."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 96, (side, side, 3))
    pixels[..., label % 3] += 128 + 40 * (label // 3 % 2)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def encoded(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def write_class(folder: Path, label: int, count: int, seed: int = 0) -> list[str]:
    """``count`` pictures of class ``label`` in ``folder``, cycling through ``KINDS``."""
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for index in range(count):
        fmt, suffix, side = KINDS[index % len(KINDS)]
        name = f"{index:03d}.{suffix}"
        (folder / name).write_bytes(encoded(picture(label, seed * 10_000 + index, side), fmt))
        names.append(name)
    return names


def write_folder(
    root: Path, classes: list[str], per_class: int, splits: tuple[str, ...] = ()
) -> Path:
    """A folder of ``classes`` (``root/<class>/``), or split (``root/<split>/<class>/``)."""
    for seed, split in enumerate(splits or ("",)):
        for label, name in enumerate(classes):
            write_class(root / split / name, label, per_class, seed=seed * 100 + label)
    return root


def add_broken_files(folder: Path) -> dict[str, str]:
    """Files that are not pictures, in class folder ``folder``, and what each is."""
    broken = {
        "empty.png": b"",
        "notes.jpg": b"these are my holiday notes, not a photo\n",
        "cut.jpg": encoded(picture(0, 1, 64), "JPEG")[:300],
    }
    for name, content in broken.items():
        (folder / name).write_bytes(content)
    return {name: "refused" for name in broken}
