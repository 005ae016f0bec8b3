"""CIFAR10Dataset: reading, downloading, and every way the data can be wrong."""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import pickletools
import re
import socket
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from kedro.io import DatasetError
from local_http import QuietHandler, serving
from synthetic_cifar import (
    BATCH_FILES,
    CLASS_NAMES,
    batch_bytes,
    batch_payload,
    nhwc,
    release_files,
    write_archive,
    write_folder,
)
from tqdm import tqdm

from alexnet_cifar10.datasets import CIFAR10Dataset

OFFICIAL_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


def _where_to_put_it(root: Path, url: str = OFFICIAL_URL) -> str:
    """The advice that ends every error of a dataset whose ``path`` is ``root``."""
    return (
        "Put the official 'python version' release there: either the folder "
        f"'{root / 'cifar-10-batches-py'}' (for example `ln -s /path/to/cifar-10-batches-py "
        f"{root}/`) or the archive '{root / 'cifar-10-python.tar.gz'}' from {url}."
    )


def _load_error(root: Path, **kwargs: object) -> str:
    """The message of the ``DatasetError`` that loading the dataset at ``root`` raises."""
    with pytest.raises(DatasetError) as error:
        CIFAR10Dataset(path=str(root), **kwargs).load()  # type: ignore[arg-type]
    return str(error.value)


@contextmanager
def _served(body: bytes, content_length: int | None) -> Iterator[str]:
    """Serve ``body`` over HTTP, announcing ``content_length`` bytes (no header for None);
    yields the archive's URL."""

    class Handler(QuietHandler):
        def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
            self.send_response(200)
            if content_length is not None:
                self.send_header("Content-Length", str(content_length))
            self.end_headers()
            # HTTP/1.0: the connection closes after the body, short or not.
            self.wfile.write(body)

    with serving(Handler) as base:
        yield f"{base}/cifar-10-python.tar.gz"


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/cifar-10-python.tar.gz"


@pytest.mark.parametrize("official", [True, False], ids=["python2-cpickle", "repickled"])
def test_reads_every_image_with_its_own_label(tmp_path: Path, official: bool) -> None:
    """As pickled by the release (Python 2, numpy's legacy module path) and as re-saved by
    this Python and numpy: the same images, in batch order, each with its own label."""
    files = release_files(per_batch=20, official=official)
    paths = {arg for op, arg, _ in pickletools.genops(files["test_batch"]) if op.name == "GLOBAL"}
    legacy = "numpy.core.multiarray _reconstruct"
    assert (legacy in paths) == official, paths
    write_folder(tmp_path, files)
    data = CIFAR10Dataset(path=str(tmp_path)).load()
    batches = [batch_payload(20, seed, name) for seed, name in enumerate(BATCH_FILES)]
    train, test = batches[:5], batches[5]
    assert data["train_images"].dtype == np.uint8 and data["train_labels"].dtype == np.int64
    np.testing.assert_array_equal(
        data["train_images"], np.concatenate([nhwc(b[b"data"]) for b in train])
    )
    assert data["train_labels"].tolist() == sum((b[b"labels"] for b in train), [])
    np.testing.assert_array_equal(data["test_images"], nhwc(test[b"data"]))
    assert data["test_labels"].tolist() == test[b"labels"]
    assert data["label_names"] == CLASS_NAMES


def test_reads_archive_with_matching_md5(tmp_path: Path) -> None:
    archive = write_archive(tmp_path, release_files(per_batch=20))
    data = CIFAR10Dataset(path=str(tmp_path), md5=_md5(archive)).load()
    assert data["train_images"].shape == (100, 32, 32, 3)


@pytest.mark.parametrize("layout", ["folder", "archive", "neither"])
def test_exists_when_the_folder_or_the_archive_is_there(tmp_path: Path, layout: str) -> None:
    if layout == "folder":
        (tmp_path / "cifar-10-batches-py").mkdir()
    elif layout == "archive":
        (tmp_path / "cifar-10-python.tar.gz").write_bytes(b"")
    assert CIFAR10Dataset(path=str(tmp_path)).exists() == (layout != "neither")


def test_describe_and_metadata(tmp_path: Path) -> None:
    dataset = CIFAR10Dataset(
        path=str(tmp_path), download=True, url="http://mirror/c.tgz", metadata={"a": 1}
    )
    assert dataset._describe() == {
        "path": str(tmp_path),
        "download": True,
        "url": "http://mirror/c.tgz",
    }
    assert dataset.metadata == {"a": 1}


def test_missing_data_offline_says_where_to_put_it(tmp_path: Path) -> None:
    url = _closed_port_url()
    message = _load_error(tmp_path, download=True, url=url)
    # The middle is the operating system's own words for a refused connection.
    assert message.startswith(f"CIFAR-10 not found (downloading {url} failed: <urlopen error ")
    assert message.endswith(
        "; this machine may be offline). Looked for "
        f"'{tmp_path / 'cifar-10-batches-py'}' and '{tmp_path / 'cifar-10-python.tar.gz'}'; "
        f"found nothing in '{tmp_path}'. " + _where_to_put_it(tmp_path, url)
    )
    assert list(tmp_path.iterdir()) == [], "no partial download may be left behind"


def test_a_silent_server_times_out_instead_of_hanging(tmp_path: Path) -> None:
    with socket.socket() as listening:  # accepts connections, never answers
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        url = f"http://127.0.0.1:{listening.getsockname()[1]}/cifar-10-python.tar.gz"
        message = _load_error(tmp_path, download=True, url=url, timeout=0.2)
    assert message.startswith(
        f"CIFAR-10 not found (downloading {url} failed: timed out; this machine may be offline). "
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "content", [None, ["notes.txt", "old"], []], ids=["missing", "other", "empty"]
)
def test_missing_data_without_download(tmp_path: Path, content: list[str] | None) -> None:
    """The message lists what the folder holds instead, or says it holds nothing."""
    root = tmp_path / "raw"
    if content is not None:
        root.mkdir()
        for name in content:
            (root / name).write_text("")
    assert _load_error(root) == (
        f"CIFAR-10 not found (downloading is off). Looked for '{root / 'cifar-10-batches-py'}' "
        f"and '{root / 'cifar-10-python.tar.gz'}'; found {content or 'nothing'} in '{root}'. "
        + _where_to_put_it(root)
    )


@pytest.mark.parametrize("announced", [True, False], ids=["content-length", "no-length"])
def test_downloads_verifies_and_reads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], announced: bool
) -> None:
    archive = write_archive(tmp_path / "served", release_files(per_batch=10))
    body = archive.read_bytes()
    raw = tmp_path / "data" / "01_raw"  # created with its parents
    with _served(body, len(body) if announced else None) as url:
        data = CIFAR10Dataset(path=str(raw), download=True, url=url, md5=_md5(archive)).load()
    assert data["train_images"].shape == (50, 32, 32, 3)
    assert sorted(p.name for p in raw.iterdir()) == ["cifar-10-python.tar.gz"]
    assert (raw / "cifar-10-python.tar.gz").read_bytes() == body
    # The progress bar counts bytes in SI steps, out of the total where the server told it.
    size = tqdm.format_sizeof(len(body))
    shown = rf"100%\|.*\| {size}/{size} \[" if announced else rf"{size}B \["
    progress = capsys.readouterr().err
    assert re.search(rf"cifar-10-python\.tar\.gz: {shown}.*B/s\]", progress), progress


def test_a_download_that_stops_early_is_refused_and_removed(tmp_path: Path) -> None:
    body = write_archive(tmp_path / "served", release_files(per_batch=10)).read_bytes()
    raw = tmp_path / "raw"
    with _served(body[:1000], len(body)) as url:
        message = _load_error(raw, download=True, url=url)
    assert message == (
        f"Download of {url} stopped early: got 1000 of {len(body)} bytes. Run again to retry. "
        + _where_to_put_it(raw, url)
    )
    assert list(raw.iterdir()) == []


def test_a_download_with_the_wrong_checksum_is_refused_and_removed(tmp_path: Path) -> None:
    archive = write_archive(tmp_path / "served", release_files(per_batch=10))
    raw = tmp_path / "raw"
    with _served(archive.read_bytes(), archive.stat().st_size) as url:
        message = _load_error(raw, download=True, url=url)
    assert message == (
        f"CIFAR-10 archive rejected: checksum mismatch for the download from {url}: MD5 "
        f"{_md5(archive)}, expected c58f30108f718f92721af3b95e74349a "
        f"({archive.stat().st_size} bytes). Delete it and download it again, or "
        + _where_to_put_it(raw, url)
    )
    assert list(raw.iterdir()) == []


def test_bad_checksum(tmp_path: Path) -> None:
    archive = write_archive(tmp_path, release_files(per_batch=10))
    assert _load_error(tmp_path) == (
        f"CIFAR-10 archive rejected: checksum mismatch for '{archive}': MD5 {_md5(archive)}, "
        f"expected c58f30108f718f92721af3b95e74349a ({archive.stat().st_size} bytes). "
        "Delete it and download it again, or " + _where_to_put_it(tmp_path)
    )


def test_an_archive_that_is_no_gzip_is_a_checksum_mismatch(tmp_path: Path) -> None:
    """A web page saved under the archive's name, say: not truncated, just wrong."""
    archive = tmp_path / "cifar-10-python.tar.gz"
    archive.write_bytes(b"<html>Service unavailable</html>")
    assert _load_error(tmp_path, md5="0" * 32) == (
        f"CIFAR-10 archive rejected: checksum mismatch for '{archive}': MD5 {_md5(archive)}, "
        f"expected {'0' * 32} (32 bytes). Delete it and download it again, or "
        + _where_to_put_it(tmp_path)
    )


def test_an_archive_that_is_no_gzip_without_checksum(tmp_path: Path) -> None:
    archive = tmp_path / "cifar-10-python.tar.gz"
    archive.write_bytes(b"<html>Service unavailable</html>")
    assert _load_error(tmp_path, md5=None) == (
        f"CIFAR-10 archive '{archive}' is truncated or corrupt (not a gzip file). Delete it "
        "and download it again, or " + _where_to_put_it(tmp_path)
    )


def test_truncated_archive(tmp_path: Path) -> None:
    archive = write_archive(tmp_path, release_files(per_batch=10))
    md5 = _md5(archive)
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    assert _load_error(tmp_path, md5=md5) == (
        f"CIFAR-10 archive rejected: '{archive}' is truncated: its gzip stream ends early "
        f"after {archive.stat().st_size} bytes. Delete it and download it again, or "
        + _where_to_put_it(tmp_path)
    )


def test_truncated_archive_without_checksum(tmp_path: Path) -> None:
    archive = write_archive(tmp_path, release_files(per_batch=10))
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    assert _load_error(tmp_path, md5=None) == (
        f"CIFAR-10 archive '{archive}' is truncated or corrupt (Compressed file ended before "
        "the end-of-stream marker was reached). Delete it and download it again, or "
        + _where_to_put_it(tmp_path)
    )


@pytest.mark.parametrize("layout", ["folder", "archive"])
def test_missing_batch(tmp_path: Path, layout: str) -> None:
    files = release_files(per_batch=10)
    del files["data_batch_3"]
    where = (write_folder if layout == "folder" else write_archive)(tmp_path, files)
    found = ["batches.meta", "data_batch_1", "data_batch_2", "data_batch_4", "data_batch_5"]
    assert _load_error(tmp_path, md5=None) == (
        f"CIFAR-10 release in '{where}' is incomplete: missing ['data_batch_3']. "
        f"Found {[*found, 'test_batch']}; expected ['data_batch_1', 'data_batch_2', "
        "'data_batch_3', 'data_batch_4', 'data_batch_5', 'test_batch', 'batches.meta']. "
        + _where_to_put_it(tmp_path)
    )


def test_archive_files_outside_the_release_folder_do_not_count(tmp_path: Path) -> None:
    files = release_files(per_batch=10)
    stray = files.pop("data_batch_3")
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, content in [
            *((f"cifar-10-batches-py/{n}", c) for n, c in files.items()),
            ("data_batch_3", stray),
            ("other/data_batch_3", stray),
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
        folder = tarfile.TarInfo("cifar-10-batches-py/data_batch_3")
        folder.type = tarfile.DIRTYPE  # a folder under a batch's name is no batch either
        tar.addfile(folder)
    message = _load_error(tmp_path, md5=None)
    assert message.startswith(
        f"CIFAR-10 release in '{archive}' is incomplete: missing ['data_batch_3']. Found "
        "['batches.meta', 'data_batch_1', 'data_batch_2', 'data_batch_4', 'data_batch_5', "
        "'test_batch']; "
    )


def _with_batch(name: str, **changes: object) -> dict[str, bytes]:
    """A release whose batch ``name`` has its entries replaced by ``changes``."""
    files = release_files(per_batch=10)
    batch = pickle.loads(files[name], encoding="bytes")
    batch.update({key.encode(): value for key, value in changes.items()})
    files[name] = pickle.dumps(batch, protocol=2)
    return files


@pytest.mark.parametrize(
    "data",
    [
        np.zeros((10, 3000), np.uint8),
        np.zeros(30720, np.uint8),
        np.zeros((10, 3072, 1), np.uint8),
        np.zeros((10, 3072), np.float32),
    ],
    ids=["short-rows", "flat", "3d", "float32"],
)
def test_wrong_shape_or_dtype(tmp_path: Path, data: np.ndarray) -> None:
    folder = write_folder(tmp_path, _with_batch("data_batch_2", data=data))
    assert _load_error(tmp_path) == (
        f"CIFAR-10 file 'data_batch_2' in '{folder}' has data of shape {data.shape} and "
        f"dtype {data.dtype}; expected (N, 3072) uint8, one row of 32x32x3 pixels per image. "
        + _where_to_put_it(tmp_path)
    )


@pytest.mark.parametrize(
    ("labels", "described"),
    [(list(range(5)), "(5,) labels of dtype int64"), ([0.0] * 10, "(10,) labels of dtype float64")],
    ids=["too-few", "floats"],
)
def test_labels_must_be_one_integer_per_image(
    tmp_path: Path, labels: list[float], described: str
) -> None:
    folder = write_folder(tmp_path, _with_batch("test_batch", labels=labels))
    assert _load_error(tmp_path) == (
        f"CIFAR-10 file 'test_batch' in '{folder}' has {described} for 10 images; expected "
        "one integer label per image. " + _where_to_put_it(tmp_path)
    )


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "is not a readable batch (EOFError: Ran out of input); it may be truncated or empty"),
        (
            batch_bytes(10, 0)[:1000],
            "is not a readable batch (UnpicklingError: pickle data was truncated); it may be "
            "truncated or empty",
        ),
        (
            pickle.dumps([1, 2, 3], protocol=2),
            "is not a batch: expected a dict with 'data' (uint8 array) and 'labels', found list",
        ),
        (
            pickle.dumps({b"data": np.zeros((1, 3072), np.uint8)}, protocol=2),
            "is not a batch: expected a dict with 'data' (uint8 array) and 'labels', found dict",
        ),
        (
            pickle.dumps({b"data": [[0] * 3072], b"labels": [0]}, protocol=2),
            "is not a batch: expected a dict with 'data' (uint8 array) and 'labels', found dict",
        ),
    ],
    ids=["empty", "truncated", "not-a-dict", "no-labels", "data-not-an-array"],
)
def test_unreadable_batch(tmp_path: Path, content: bytes, problem: str) -> None:
    files = release_files(per_batch=10)
    files["data_batch_4"] = content
    folder = write_folder(tmp_path, files)
    assert _load_error(tmp_path) == (
        f"CIFAR-10 file 'data_batch_4' in '{folder}' {problem}. " + _where_to_put_it(tmp_path)
    )


def test_an_unreadable_meta_file_is_named(tmp_path: Path) -> None:
    files = release_files(per_batch=10)
    files["batches.meta"] = b""
    folder = write_folder(tmp_path, files)
    assert _load_error(tmp_path) == (
        f"CIFAR-10 file 'batches.meta' in '{folder}' is not a readable batch (EOFError: Ran out "
        "of input); it may be truncated or empty. " + _where_to_put_it(tmp_path)
    )


def test_a_bad_batch_in_the_archive_is_named_with_the_archive(tmp_path: Path) -> None:
    files = release_files(per_batch=10)
    files["data_batch_4"] = b""
    archive = write_archive(tmp_path, files)
    assert _load_error(tmp_path, md5=None) == (
        f"CIFAR-10 file 'data_batch_4' in '{archive}' is not a readable batch (EOFError: Ran out "
        "of input); it may be truncated or empty. " + _where_to_put_it(tmp_path)
    )


@pytest.mark.parametrize(
    "meta",
    [{b"num_vis": 3072}, ["airplane"], {b"label_names": ["airplane"]}],
    ids=["no-names", "not-a-dict", "str-names"],
)
def test_meta_without_label_names(tmp_path: Path, meta: object) -> None:
    files = release_files(per_batch=10)
    files["batches.meta"] = pickle.dumps(meta, protocol=2)
    folder = write_folder(tmp_path, files)
    assert _load_error(tmp_path) == (
        f"CIFAR-10 file 'batches.meta' in '{folder}' has no list of label names under "
        "'label_names'. " + _where_to_put_it(tmp_path)
    )


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_without_running(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    files = release_files(per_batch=10)
    files["data_batch_1"] = pickle.dumps({b"data": _Exploit(marker)}, protocol=2)
    folder = write_folder(tmp_path / "raw", files)
    assert _load_error(tmp_path / "raw") == (
        f"Refused to unpickle CIFAR-10 file 'data_batch_1' in '{folder}': it references "
        f"'{os.system.__module__}.system', which the official CIFAR-10 files never contain. "
        "Nothing in it was executed. " + _where_to_put_it(tmp_path / "raw")
    )
    assert not marker.exists()


def test_is_read_only(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as error:
        CIFAR10Dataset(path=str(tmp_path)).save({})  # type: ignore[arg-type]
    assert str(error.value) == "CIFAR10Dataset is read-only: it never writes data."
