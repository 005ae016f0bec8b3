"""Tiny CIFAR-10 releases in the official 'python version' format, for tests."""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path

import numpy as np

CLASS_NAMES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]
BATCH_FILES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def batch_bytes(num_images: int, seed: int, name: str = "batch") -> bytes:
    """One pickled batch like the official ones: bytes keys, (N, 3072) uint8 rows."""
    rng = np.random.default_rng(seed)
    labels = [i % len(CLASS_NAMES) for i in range(num_images)]
    # Each class gets its own mean colour so that a tiny model can learn something.
    base = (np.array(labels)[:, None] * 23 % 256).astype(np.int16)
    noise = rng.integers(-40, 40, size=(num_images, 3072))
    data = np.clip(base + noise, 0, 255).astype(np.uint8)
    payload = {
        b"batch_label": name.encode(),
        b"labels": labels,
        b"data": data,
        b"filenames": [f"img_{i}.png".encode() for i in range(num_images)],
    }
    return pickle.dumps(payload, protocol=2)


def meta_bytes() -> bytes:
    """The ``batches.meta`` file."""
    return pickle.dumps(
        {
            b"num_cases_per_batch": 10,
            b"label_names": [n.encode() for n in CLASS_NAMES],
            b"num_vis": 3072,
        },
        protocol=2,
    )


def release_files(per_batch: int = 50) -> dict[str, bytes]:
    """File name -> content of a whole synthetic release."""
    files = {name: batch_bytes(per_batch, seed, name) for seed, name in enumerate(BATCH_FILES)}
    files["batches.meta"] = meta_bytes()
    return files


def write_folder(root: Path, files: dict[str, bytes]) -> Path:
    """Write ``files`` as ``root/cifar-10-batches-py/``."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (folder / name).write_bytes(content)
    return folder


def write_archive(root: Path, files: dict[str, bytes]) -> Path:
    """Write ``files`` as ``root/cifar-10-python.tar.gz``."""
    root.mkdir(parents=True, exist_ok=True)
    archive = root / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return archive


def make_split(num_images: int, seed: int = 0) -> dict[str, np.ndarray]:
    """A model-input split: random uint8 images, one-hot labels, official indices."""
    rng = np.random.default_rng(seed)
    labels = np.eye(len(CLASS_NAMES), dtype=np.float32)[rng.integers(0, 10, num_images)]
    return {
        "images": rng.integers(0, 256, (num_images, 32, 32, 3), dtype=np.uint8),
        "labels": labels,
        "index": np.sort(rng.choice(50_000, num_images, replace=False)),
    }
