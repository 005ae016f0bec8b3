"""NpzDataset: versioned round trips of dicts of arrays."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from kedro.io import DatasetError
from kedro.io.core import Version
from local_http import QuietHandler, serving

from alexnet_cifar10.datasets import NpzDataset


@pytest.mark.parametrize("compress", [False, True])
def test_round_trip_keeps_dtypes(tmp_path: Path, compress: bool) -> None:
    data = {
        "images": np.arange(96, dtype=np.uint8).reshape(2, 4, 4, 3),
        "labels": np.eye(2, dtype=np.float32),
    }
    dataset = NpzDataset(
        filepath=str(tmp_path / "x.npz"),
        save_args={"compress": compress},
        version=Version(None, None),
    )
    dataset.save(data)
    loaded = NpzDataset(filepath=str(tmp_path / "x.npz"), version=Version(None, None)).load()
    assert loaded.keys() == data.keys()
    for key, value in data.items():
        assert loaded[key].dtype == value.dtype
        np.testing.assert_array_equal(loaded[key], value)


def test_each_save_is_a_new_version(tmp_path: Path) -> None:
    # Explicit versions: two saves within one millisecond would draw the same timestamp.
    for value in (1, 2):
        version = Version(None, f"2026-01-01T00.00.00.00{value}Z")
        NpzDataset(filepath=str(tmp_path / "x.npz"), version=version).save({"a": np.array([value])})
    versions = sorted((tmp_path / "x.npz").iterdir())
    assert len(versions) == 2
    latest = NpzDataset(filepath=str(tmp_path / "x.npz"), version=Version(None, None)).load()
    assert latest["a"].tolist() == [2]


@pytest.mark.parametrize(
    ("data", "kind"), [([np.zeros(3)], "list"), ({"a": [1, 2]}, "dict")], ids=["list", "list-value"]
)
def test_rejects_anything_but_a_dict_of_arrays(tmp_path: Path, data: object, kind: str) -> None:
    dataset = NpzDataset(filepath=str(tmp_path / "x.npz"), version=Version(None, None))
    with pytest.raises(DatasetError) as error:
        dataset.save(data)  # type: ignore[arg-type]
    assert str(error.value) == f"NpzDataset saves a dict of numpy arrays; got {kind}."
    assert not (tmp_path / "x.npz").exists()


@pytest.mark.parametrize("compress", [False, True])
def test_compress_chooses_deflate_over_stored(tmp_path: Path, compress: bool) -> None:
    path = tmp_path / "x.npz"
    NpzDataset(filepath=str(path), save_args={"compress": compress}).save({"a": np.zeros(4096)})
    with zipfile.ZipFile(path) as archive:
        methods = {member.compress_type for member in archive.infolist()}
    assert methods == {zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED}


def test_load_args_reach_numpy(tmp_path: Path) -> None:
    path = str(tmp_path / "x.npz")
    NpzDataset(filepath=path).save({"a": np.arange(3)})
    with pytest.raises(DatasetError, match=r"Header info length \(\d+\) is large"):
        NpzDataset(filepath=path, load_args={"max_header_size": 10}).load()


def test_never_loads_pickled_objects(tmp_path: Path) -> None:
    """An object array would run code from the file as it is unpickled: refused."""
    path = tmp_path / "x.npz"
    np.savez(path, a=np.array([{"not": "an array"}], dtype=object))
    with pytest.raises(DatasetError, match="Object arrays cannot be loaded when allow_pickle"):
        NpzDataset(filepath=str(path)).load()


def test_describe_lists_its_arguments(tmp_path: Path) -> None:
    described = NpzDataset(
        filepath=str(tmp_path / "x.npz"), save_args={"compress": True}
    )._describe()
    assert described["save_args"] == {"compress": True}
    assert described["load_args"] == {}


def test_object_store_round_trip_through_fsspec_memory() -> None:
    path = "memory://bucket/inputs.npz"
    NpzDataset(filepath=path, version=Version(None, None)).save({"a": np.arange(3)})
    loaded = NpzDataset(filepath=path, version=Version(None, None)).load()
    assert loaded["a"].tolist() == [0, 1, 2]


TOKEN = "Bearer s3cret"


@pytest.fixture
def served_npz() -> Iterator[str]:
    """The URL of an ``.npz`` file on a local HTTP server that wants ``TOKEN``."""
    buffer = io.BytesIO()
    np.savez(buffer, a=np.arange(3))
    content = buffer.getvalue()

    class Handler(QuietHandler):
        def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
            if self.headers.get("Authorization") != TOKEN:
                self.send_error(401)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            if self.command == "GET":
                self.wfile.write(content)

        do_HEAD = do_GET

    with serving(Handler) as base:
        yield f"{base}/inputs.npz"


def test_reads_over_http_with_the_credentials_given(served_npz: str) -> None:
    dataset = NpzDataset(filepath=served_npz, credentials={"headers": {"Authorization": TOKEN}})
    assert dataset.exists()
    assert dataset.load()["a"].tolist() == [0, 1, 2]
    assert not NpzDataset(filepath=served_npz).exists(), "refused without them"


def test_http_cannot_be_versioned() -> None:
    with pytest.raises(DatasetError) as error:
        NpzDataset(filepath="https://example.org/inputs.npz", version=Version(None, None))
    assert str(error.value) == (
        "Versioning is not supported for HTTP protocols. Please remove the `versioned` flag "
        "from the dataset configuration."
    )
