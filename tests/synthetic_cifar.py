"""Tiny CIFAR-10 releases in the official 'python version' format, for tests."""

from __future__ import annotations

import io
import pickle
import struct
import tarfile
from pathlib import Path
from typing import Any

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


def official_pickle(value: Any) -> bytes:
    """``value`` pickled as the official release was, by Python 2's cPickle at protocol 2:
    strings as BINSTRING (bytes under ``encoding="bytes"``), numpy arrays rebuilt through
    ``numpy.core.multiarray._reconstruct``, the module path numpy 2 renamed. Written
    opcode by opcode, so that the legacy path is in the file whatever numpy runs here."""
    out = bytearray(b"\x80\x02")  # PROTO 2
    _emit(out, value)
    return bytes(out + b".")  # STOP


def _emit(out: bytearray, value: Any) -> None:  # noqa: PLR0912 - one branch per type
    if isinstance(value, bool):
        out += b"\x88" if value else b"\x89"  # NEWTRUE / NEWFALSE
    elif value is None:
        out += b"N"
    elif isinstance(value, int):
        if 0 <= value < 1 << 16:  # BININT1 / BININT2
            out += b"K" + bytes([value]) if value < 1 << 8 else b"M" + struct.pack("<H", value)
        else:
            out += b"J" + struct.pack("<i", value)  # BININT
    elif isinstance(value, bytes | str):  # Python 2's str: SHORT_BINSTRING / BINSTRING
        raw = value.encode() if isinstance(value, str) else value
        out += b"U" + bytes([len(raw)]) if len(raw) < 1 << 8 else b"T" + struct.pack("<I", len(raw))
        out += raw
    elif isinstance(value, tuple | list | dict):
        opening, closing = {tuple: (b"(", b"t"), list: (b"](", b"e"), dict: (b"}(", b"u")}[
            type(value)
        ]
        out += opening
        for item in value.items() if isinstance(value, dict) else value:
            for part in item if isinstance(value, dict) else (item,):
                _emit(out, part)
        out += closing  # TUPLE / APPENDS / SETITEMS
    elif isinstance(value, np.ndarray):
        # _reconstruct(ndarray, (0,), 'b'), then its state: (1, shape, dtype, False, bytes).
        out += b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n"
        _emit(out, (0,))
        _emit(out, b"b")
        out += b"\x87R"  # TUPLE3, REDUCE
        out += b"(K\x01"
        _emit(out, value.shape)
        out += b"cnumpy\ndtype\n"
        _emit(out, (value.dtype.str[1:], 0, 1))
        out += b"R"
        order = "|" if value.dtype.itemsize == 1 else "<"
        _emit(out, (3, order, None, None, None, -1, -1, 0))
        out += b"b\x89"  # BUILD the dtype; not Fortran-ordered
        _emit(out, np.ascontiguousarray(value).tobytes())
        out += b"tb"  # the state tuple; BUILD the array
    else:
        raise TypeError(f"no Python 2 pickle for {type(value).__name__}")


def batch_payload(num_images: int, seed: int, name: str = "batch") -> dict[bytes, Any]:
    """What one batch file holds: bytes keys, (N, 3072) uint8 rows (channel-major), and
    labels balanced over the classes in a seeded order of their own."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(num_images) % len(CLASS_NAMES)).tolist()
    # Each class gets its own mean colour so that a tiny model can learn something.
    base = (np.array(labels)[:, None] * 23 % 256).astype(np.int16)
    noise = rng.integers(-40, 40, size=(num_images, 3072))
    return {
        b"batch_label": name.encode(),
        b"labels": labels,
        b"data": np.clip(base + noise, 0, 255).astype(np.uint8),
        b"filenames": [f"img_{i}.png".encode() for i in range(num_images)],
    }


def batch_bytes(num_images: int, seed: int, name: str = "batch", official: bool = True) -> bytes:
    """One pickled batch like the official ones (``batch_payload``). With
    ``official=False``, pickled by this Python and numpy instead, as a re-saved copy is."""
    payload = batch_payload(num_images, seed, name)
    return official_pickle(payload) if official else pickle.dumps(payload, protocol=2)


def nhwc(rows: np.ndarray) -> np.ndarray:
    """Official rows as NHWC images, pixel by pixel: channel c of pixel (y, x) of an image
    is at c * 1024 + y * 32 + x of its row."""
    n, y, x, c = np.indices((len(rows), 32, 32, 3))
    return rows[n, c * 1024 + y * 32 + x]


def meta_bytes(official: bool = True) -> bytes:
    """The ``batches.meta`` file."""
    payload = {
        b"num_cases_per_batch": 10,
        b"label_names": [n.encode() for n in CLASS_NAMES],
        b"num_vis": 3072,
    }
    return official_pickle(payload) if official else pickle.dumps(payload, protocol=2)


def release_files(per_batch: int = 50, official: bool = True) -> dict[str, bytes]:
    """File name -> content of a whole synthetic release, pickled as the official one is
    (``official=False``: as this Python and numpy pickle it)."""
    files = {
        name: batch_bytes(per_batch, seed, name, official) for seed, name in enumerate(BATCH_FILES)
    }
    files["batches.meta"] = meta_bytes(official)
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
