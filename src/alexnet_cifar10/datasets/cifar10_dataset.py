"""Kedro dataset for the official CIFAR-10 'python version' release.

Reads either the extracted ``cifar-10-batches-py/`` folder or the archive
``cifar-10-python.tar.gz`` from one raw-data folder, and can download the archive.
Every failure is a ``DatasetError`` that says what was found, what was expected and
where to put the data; nothing half-downloaded is ever left under the archive's name.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import os
import pickle
import tarfile
import urllib.error
import urllib.request
import uuid
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
from kedro.io import AbstractDataset, DatasetError
from tqdm.auto import tqdm

from alexnet_cifar10.pictures import IMAGE_SHAPE

logger = logging.getLogger(__name__)

FOLDER_NAME = "cifar-10-batches-py"
ARCHIVE_NAME = "cifar-10-python.tar.gz"
OFFICIAL_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
OFFICIAL_MD5 = "c58f30108f718f92721af3b95e74349a"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
META_FILE = "batches.meta"
EXPECTED_FILES = (*TRAIN_BATCHES, TEST_BATCH, META_FILE)
# The format's images: 32x32 pixels, 3 channels; the network's input and the predict
# pipeline's target size are this shape.
PIXELS = IMAGE_SHAPE[0] * IMAGE_SHAPE[1] * IMAGE_SHAPE[2]
CHUNK = 1 << 20

# The only globals the official pickles reference: numpy's array reconstruction.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"): ("numpy", "ndarray"),
    ("numpy", "dtype"): ("numpy", "dtype"),
    ("_codecs", "encode"): ("_codecs", "encode"),
}


class CIFAR10Data(TypedDict):
    """The release as arrays: NHWC uint8 images, int64 labels, class names."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    label_names: list[str]


class ForbiddenPickleError(pickle.UnpicklingError):
    """A pickle asked for a global outside what the official files use."""


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals the official batch files use."""

    def find_class(self, module: str, name: str) -> Any:
        target = _ALLOWED_GLOBALS.get((module, name))
        if target is None:
            raise ForbiddenPickleError(
                f"it references '{module}.{name}', which the official CIFAR-10 files never contain"
            )
        return super().find_class(*target)


def safe_unpickle(payload: bytes) -> Any:
    """Unpickle a CIFAR-10 batch without running code it may smuggle in."""
    return _RestrictedUnpickler(io.BytesIO(payload), encoding="bytes").load()


def _file_md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _gzip_is_truncated(path: Path) -> bool:
    try:
        with gzip.open(path, "rb") as handle:
            while handle.read(CHUNK):
                pass
    except EOFError:
        return True
    except (OSError, zlib.error):
        return False
    return False


class CIFAR10Dataset(AbstractDataset[None, CIFAR10Data]):
    """Loads CIFAR-10 ('python version') from a folder, an archive or the web.

    Example catalog entry::

        raw_images:
          type: alexnet_cifar10.datasets.CIFAR10Dataset
          path: data/01_raw
          download: true
    """

    def __init__(  # noqa: PLR0913
        self,
        *,
        path: str,
        download: bool = False,
        url: str = OFFICIAL_URL,
        md5: str | None = OFFICIAL_MD5,
        timeout: float = 30.0,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Creates the dataset.

        Args:
            path: Folder that holds ``cifar-10-batches-py/`` or ``cifar-10-python.tar.gz``.
            download: Whether to download the archive into ``path`` when neither is there.
            url: Where to download the archive from.
            md5: Expected MD5 of the archive; ``None`` skips the check.
            timeout: Seconds to wait for the download server before giving up.
            metadata: Free-form metadata, used by kedro-viz.
        """
        self._path = Path(path)
        self._download = download
        self._url = url
        self._md5 = md5
        self._timeout = timeout
        self.metadata = metadata

    @property
    def folder(self) -> Path:
        """The extracted release folder this dataset looks for."""
        return self._path / FOLDER_NAME

    @property
    def archive(self) -> Path:
        """The release archive this dataset looks for."""
        return self._path / ARCHIVE_NAME

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path), "download": self._download, "url": self._url}

    def _exists(self) -> bool:
        return self.folder.is_dir() or self.archive.is_file()

    def save(self, data: Any) -> None:
        raise DatasetError(f"{type(self).__name__} is read-only: it never writes data.")

    def fetch(self) -> None:
        """Make sure the release is here: download the archive when neither it nor the
        folder is there and downloading is on; otherwise say where to put it."""
        if self._exists():
            return
        if not self._download:
            raise DatasetError(self._not_found_message("downloading is off"))
        self._fetch_archive()

    def load(self) -> CIFAR10Data:
        if self.folder.is_dir():
            logger.info("Reading CIFAR-10 from folder %s", self.folder)
            return self._read_folder()
        self.fetch()
        self._verify_archive()
        logger.info("Reading CIFAR-10 from archive %s", self.archive)
        return self._read_archive()

    def _where_to_put_it(self) -> str:
        return (
            f"Put the official 'python version' release there: either the folder "
            f"'{self.folder}' (for example `ln -s /path/to/{FOLDER_NAME} {self._path}/`) "
            f"or the archive '{self.archive}' from {self._url}."
        )

    def _not_found_message(self, reason: str) -> str:
        found = sorted(p.name for p in self._path.iterdir()) if self._path.is_dir() else []
        return (
            f"CIFAR-10 not found ({reason}). Looked for '{self.folder}' and "
            f"'{self.archive}'; found {found or 'nothing'} in '{self._path}'. "
            + self._where_to_put_it()
        )

    def _fetch_archive(self) -> None:
        self._path.mkdir(parents=True, exist_ok=True)
        partial = self._path / f".{ARCHIVE_NAME}.{uuid.uuid4().hex}.partial"
        logger.info("Downloading CIFAR-10 from %s to %s", self._url, self.archive)
        try:
            with urllib.request.urlopen(self._url, timeout=self._timeout) as response:  # noqa: S310
                total = int(response.headers.get("Content-Length") or 0) or None
                with (
                    partial.open("wb") as out,
                    tqdm(total=total, unit="B", unit_scale=True, desc=ARCHIVE_NAME) as bar,
                ):
                    for block in iter(lambda: response.read(CHUNK), b""):
                        out.write(block)
                        bar.update(len(block))
            if total is not None and partial.stat().st_size != total:
                raise DatasetError(
                    f"Download of {self._url} stopped early: got "
                    f"{partial.stat().st_size} of {total} bytes. Run again to retry. "
                    + self._where_to_put_it()
                )
            self._check_md5(partial, shown_as=f"the download from {self._url}")
            os.replace(partial, self.archive)
        except (urllib.error.URLError, OSError) as exc:
            raise DatasetError(
                self._not_found_message(
                    f"downloading {self._url} failed: {exc}; this machine may be offline"
                )
            ) from exc
        finally:
            partial.unlink(missing_ok=True)

    def _check_md5(self, path: Path, shown_as: str) -> None:
        if self._md5 is None:
            return
        actual = _file_md5(path)
        if actual == self._md5:
            return
        size = path.stat().st_size
        if _gzip_is_truncated(path):
            problem = f"{shown_as} is truncated: its gzip stream ends early after {size} bytes"
        else:
            problem = (
                f"checksum mismatch for {shown_as}: MD5 {actual}, expected {self._md5} "
                f"({size} bytes)"
            )
        raise DatasetError(
            f"CIFAR-10 archive rejected: {problem}. Delete it and download it again, or "
            + self._where_to_put_it()
        )

    def _verify_archive(self) -> None:
        self._check_md5(self.archive, shown_as=f"'{self.archive}'")

    def _read_folder(self) -> CIFAR10Data:
        missing = [name for name in EXPECTED_FILES if not (self.folder / name).is_file()]
        if missing:
            raise self._missing_error(
                missing, str(self.folder), sorted(p.name for p in self.folder.iterdir())
            )
        return self._assemble(lambda name: (self.folder / name).read_bytes(), str(self.folder))

    def _read_archive(self) -> CIFAR10Data:
        try:
            with tarfile.open(self.archive, "r:gz") as tar:
                members = {
                    Path(m.name).name: m
                    for m in tar.getmembers()
                    if m.isfile() and Path(m.name).parent.name == FOLDER_NAME
                }
                missing = [name for name in EXPECTED_FILES if name not in members]
                if missing:
                    raise self._missing_error(missing, str(self.archive), sorted(members))
                payloads = {
                    name: tar.extractfile(members[name]).read()  # type: ignore[union-attr]
                    for name in EXPECTED_FILES
                }
        except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
            raise DatasetError(
                f"CIFAR-10 archive '{self.archive}' is truncated or corrupt ({exc}). "
                "Delete it and download it again, or " + self._where_to_put_it()
            ) from exc
        return self._assemble(payloads.__getitem__, str(self.archive))

    def _missing_error(self, missing: list[str], where: str, found: list[str]) -> DatasetError:
        return DatasetError(
            f"CIFAR-10 release in '{where}' is incomplete: missing {missing}. "
            f"Found {found}; expected {list(EXPECTED_FILES)}. " + self._where_to_put_it()
        )

    def _assemble(self, read: Callable[[str], bytes], where: str) -> CIFAR10Data:
        train = [self._parse_batch(read(name), name, where) for name in TRAIN_BATCHES]
        test_images, test_labels = self._parse_batch(read(TEST_BATCH), TEST_BATCH, where)
        meta = self._unpickle(read(META_FILE), META_FILE, where)
        try:
            label_names = [n.decode("utf-8") for n in meta[b"label_names"]]
        except (KeyError, TypeError, AttributeError) as exc:
            raise DatasetError(
                f"CIFAR-10 file '{META_FILE}' in '{where}' has no list of label names "
                f"under 'label_names'. " + self._where_to_put_it()
            ) from exc
        return CIFAR10Data(
            train_images=np.concatenate([images for images, _ in train]),
            train_labels=np.concatenate([labels for _, labels in train]),
            test_images=test_images,
            test_labels=test_labels,
            label_names=label_names,
        )

    def _unpickle(self, payload: bytes, name: str, where: str) -> Any:
        try:
            return safe_unpickle(payload)
        except ForbiddenPickleError as exc:
            raise DatasetError(
                f"Refused to unpickle CIFAR-10 file '{name}' in '{where}': {exc}. "
                "Nothing in it was executed. " + self._where_to_put_it()
            ) from exc
        except Exception as exc:
            raise DatasetError(
                f"CIFAR-10 file '{name}' in '{where}' is not a readable batch "
                f"({type(exc).__name__}: {exc}); it may be truncated or empty. "
                + self._where_to_put_it()
            ) from exc

    def _parse_batch(self, payload: bytes, name: str, where: str) -> tuple[np.ndarray, np.ndarray]:
        batch = self._unpickle(payload, name, where)
        data = batch.get(b"data") if isinstance(batch, dict) else None
        labels = batch.get(b"labels") if isinstance(batch, dict) else None
        if not isinstance(data, np.ndarray) or labels is None:
            raise DatasetError(
                f"CIFAR-10 file '{name}' in '{where}' is not a batch: expected a dict with "
                f"'data' (uint8 array) and 'labels', found {type(batch).__name__}. "
                + self._where_to_put_it()
            )
        labels = np.asarray(labels)
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != PIXELS:  # noqa: PLR2004
            raise DatasetError(
                f"CIFAR-10 file '{name}' in '{where}' has data of shape {data.shape} and "
                f"dtype {data.dtype}; expected (N, {PIXELS}) uint8, one row of 32x32x3 "
                "pixels per image. " + self._where_to_put_it()
            )
        if labels.shape != (data.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
            raise DatasetError(
                f"CIFAR-10 file '{name}' in '{where}' has {labels.shape} labels of dtype "
                f"{labels.dtype} for {data.shape[0]} images; expected one integer label "
                "per image. " + self._where_to_put_it()
            )
        # Rows are stored channel-major (1024 red, 1024 green, 1024 blue): go to NHWC.
        images = data.reshape(-1, IMAGE_SHAPE[2], *IMAGE_SHAPE[:2]).transpose(0, 2, 3, 1)
        return np.ascontiguousarray(images), labels.astype(np.int64)
