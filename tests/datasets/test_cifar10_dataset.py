"""CIFAR10Dataset: reading, downloading, and every way the data can be wrong."""

from __future__ import annotations

import hashlib
import http.server
import os
import pickle
import socket
import threading
from pathlib import Path

import numpy as np
import pytest
from kedro.io import DatasetError
from synthetic_cifar import CLASS_NAMES, batch_bytes, release_files, write_archive, write_folder

from alexnet_cifar10.datasets import CIFAR10Dataset


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/cifar-10-python.tar.gz"


def test_reads_folder_as_nhwc_uint8(tmp_path: Path) -> None:
    files = release_files(per_batch=20)
    write_folder(tmp_path, files)
    data = CIFAR10Dataset(path=str(tmp_path)).load()
    assert data["train_images"].shape == (100, 32, 32, 3)
    assert data["train_images"].dtype == np.uint8
    assert data["test_images"].shape == (20, 32, 32, 3)
    assert data["label_names"] == CLASS_NAMES
    raw = pickle.loads(files["data_batch_1"], encoding="bytes")[b"data"]
    # Pixel (row 0, col 1) of image 0: red at offset 1, green at 1025, blue at 2049.
    assert data["train_images"][0, 0, 1].tolist() == [raw[0, 1], raw[0, 1025], raw[0, 2049]]
    assert data["train_labels"][:3].tolist() == [0, 1, 2]


def test_reads_archive_with_matching_md5(tmp_path: Path) -> None:
    archive = write_archive(tmp_path, release_files(per_batch=20))
    data = CIFAR10Dataset(path=str(tmp_path), md5=_md5(archive)).load()
    assert data["train_images"].shape == (100, 32, 32, 3)


def test_missing_data_offline_says_where_to_put_it(tmp_path: Path) -> None:
    dataset = CIFAR10Dataset(path=str(tmp_path), download=True, url=_closed_port_url())
    with pytest.raises(DatasetError) as error:
        dataset.load()
    message = str(error.value)
    assert "CIFAR-10 not found" in message
    assert "may be offline" in message
    assert str(tmp_path / "cifar-10-batches-py") in message
    assert list(tmp_path.iterdir()) == [], "no partial download may be left behind"


def test_missing_data_without_download(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"CIFAR-10 not found \(downloading is off\)"):
        CIFAR10Dataset(path=str(tmp_path)).load()


def test_downloads_verifies_and_reads(tmp_path: Path) -> None:
    served = tmp_path / "served"
    archive = write_archive(served, release_files(per_batch=10))

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(served), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/cifar-10-python.tar.gz"
        raw = tmp_path / "raw"
        data = CIFAR10Dataset(path=str(raw), download=True, url=url, md5=_md5(archive)).load()
    finally:
        server.shutdown()
    assert data["train_images"].shape == (50, 32, 32, 3)
    assert sorted(p.name for p in raw.iterdir()) == ["cifar-10-python.tar.gz"]


def test_bad_checksum(tmp_path: Path) -> None:
    write_archive(tmp_path, release_files(per_batch=10))
    with pytest.raises(DatasetError) as error:
        CIFAR10Dataset(path=str(tmp_path)).load()
    assert "checksum mismatch" in str(error.value)
    assert "expected c58f30108f718f92721af3b95e74349a" in str(error.value)


def test_truncated_archive(tmp_path: Path) -> None:
    archive = write_archive(tmp_path, release_files(per_batch=10))
    md5 = _md5(archive)
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(DatasetError, match="is truncated: its gzip stream ends early"):
        CIFAR10Dataset(path=str(tmp_path), md5=md5).load()


def test_truncated_archive_without_checksum(tmp_path: Path) -> None:
    archive = write_archive(tmp_path, release_files(per_batch=10))
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(DatasetError, match="is truncated or corrupt"):
        CIFAR10Dataset(path=str(tmp_path), md5=None).load()


@pytest.mark.parametrize("layout", ["folder", "archive"])
def test_missing_batch(tmp_path: Path, layout: str) -> None:
    files = release_files(per_batch=10)
    del files["data_batch_3"]
    (write_folder if layout == "folder" else write_archive)(tmp_path, files)
    with pytest.raises(DatasetError) as error:
        CIFAR10Dataset(path=str(tmp_path), md5=None).load()
    assert "is incomplete: missing ['data_batch_3']" in str(error.value)
    assert "expected ['data_batch_1'" in str(error.value)


def test_wrong_shape(tmp_path: Path) -> None:
    files = release_files(per_batch=10)
    batch = pickle.loads(files["data_batch_2"], encoding="bytes")
    batch[b"data"] = batch[b"data"][:, :3000]
    files["data_batch_2"] = pickle.dumps(batch, protocol=2)
    write_folder(tmp_path, files)
    with pytest.raises(DatasetError) as error:
        CIFAR10Dataset(path=str(tmp_path)).load()
    assert "'data_batch_2'" in str(error.value)
    assert "shape (10, 3000)" in str(error.value)
    assert "expected (N, 3072) uint8" in str(error.value)


def test_wrong_dtype(tmp_path: Path) -> None:
    files = release_files(per_batch=10)
    batch = pickle.loads(files["test_batch"], encoding="bytes")
    batch[b"data"] = batch[b"data"].astype(np.float32)
    files["test_batch"] = pickle.dumps(batch, protocol=2)
    write_folder(tmp_path, files)
    with pytest.raises(DatasetError, match="dtype float32; expected"):
        CIFAR10Dataset(path=str(tmp_path)).load()


def test_label_count_mismatch(tmp_path: Path) -> None:
    files = release_files(per_batch=10)
    batch = pickle.loads(files["data_batch_1"], encoding="bytes")
    batch[b"labels"] = batch[b"labels"][:5]
    files["data_batch_1"] = pickle.dumps(batch, protocol=2)
    write_folder(tmp_path, files)
    with pytest.raises(DatasetError, match=r"\(5,\) labels .* for 10 images"):
        CIFAR10Dataset(path=str(tmp_path)).load()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "is not a readable batch"),
        (batch_bytes(10, 0)[:1000], "is not a readable batch"),
        (pickle.dumps([1, 2, 3], protocol=2), "is not a batch"),
    ],
    ids=["empty", "truncated", "not-a-dict"],
)
def test_unreadable_batch(tmp_path: Path, content: bytes, expected: str) -> None:
    files = release_files(per_batch=10)
    files["data_batch_4"] = content
    write_folder(tmp_path, files)
    with pytest.raises(DatasetError, match=expected) as error:
        CIFAR10Dataset(path=str(tmp_path)).load()
    assert "'data_batch_4'" in str(error.value)


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_without_running(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    files = release_files(per_batch=10)
    files["data_batch_1"] = pickle.dumps({b"data": _Exploit(marker)}, protocol=2)
    write_folder(tmp_path / "raw", files)
    with pytest.raises(DatasetError) as error:
        CIFAR10Dataset(path=str(tmp_path / "raw")).load()
    assert "Refused to unpickle CIFAR-10 file 'data_batch_1'" in str(error.value)
    assert "system" in str(error.value)
    assert "Nothing in it was executed" in str(error.value)
    assert not marker.exists()


def test_is_read_only(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="read-only"):
        CIFAR10Dataset(path=str(tmp_path)).save({})  # type: ignore[arg-type]
