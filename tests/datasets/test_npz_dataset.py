"""NpzDataset: versioned round trips of dicts of arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from kedro.io import DatasetError
from kedro.io.core import Version

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
    for value in (1, 2):
        NpzDataset(filepath=str(tmp_path / "x.npz"), version=Version(None, None)).save(
            {"a": np.array([value])}
        )
    versions = sorted((tmp_path / "x.npz").iterdir())
    assert len(versions) == 2
    latest = NpzDataset(filepath=str(tmp_path / "x.npz"), version=Version(None, None)).load()
    assert latest["a"].tolist() == [2]


def test_rejects_anything_but_a_dict_of_arrays(tmp_path: Path) -> None:
    dataset = NpzDataset(filepath=str(tmp_path / "x.npz"), version=Version(None, None))
    with pytest.raises(DatasetError, match="saves a dict of numpy arrays"):
        dataset.save([np.zeros(3)])


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
