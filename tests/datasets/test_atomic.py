"""Crash-safe versioned saves: an interrupted save never becomes the latest version."""

from __future__ import annotations

import os
import socket
import subprocess
import uuid
from pathlib import Path, PurePosixPath

import fsspec
import numpy as np
import pandas as pd
import pytest
from kedro.io.core import DatasetError, Version

from alexnet_cifar10.datasets import CSVDataset, NpzDataset


def test_failed_save_leaves_no_visible_version(tmp_path: Path, monkeypatch) -> None:
    path = str(tmp_path / "x.npz")
    # Two versions of their own: drawn from the clock, they could fall in one millisecond.
    first, second = "2026-01-01T00.00.00.000Z", "2026-01-01T00.00.00.001Z"
    NpzDataset(filepath=path, version=Version(None, first)).save({"a": np.array([1])})

    def crash(handle, **arrays):
        handle.write(b"PK\x03\x04 half a zip file")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(DatasetError, match="disk full"):
        NpzDataset(filepath=path, version=Version(None, second)).save({"a": np.array([2])})
    monkeypatch.undo()

    folders = sorted((tmp_path / "x.npz").iterdir())
    assert len(folders) == 2
    assert list(folders[-1].iterdir()) == [], "the staging file is removed on failure"
    loaded = NpzDataset(filepath=path, version=Version(None, None)).load()
    assert loaded["a"].tolist() == [1]


def test_killed_save_leftover_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    CSVDataset(filepath=str(path), version=Version(None, None)).save(pd.DataFrame({"a": [1]}))
    # What a SIGKILL during a save leaves: a newer folder holding only the staging file.
    leftover = path / "9999-01-01T00.00.00.000Z"
    leftover.mkdir()
    (leftover / ".h.csv.0123.partial").write_text("a\n")
    frame = CSVDataset(filepath=str(path), version=Version(None, None)).load()
    assert frame["a"].tolist() == [1]


def test_successful_save_holds_only_the_final_file(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    CSVDataset(filepath=str(path), version=Version(None, "2026-01-01T00.00.00.000Z")).save(
        pd.DataFrame({"a": [1]})
    )
    assert [p.name for p in (path / "2026-01-01T00.00.00.000Z").iterdir()] == ["h.csv"]


VERSION = "2026-01-01T00.00.00.000Z"


def _memory_folder() -> str:
    """A fresh folder on fsspec's in-process memory:// filesystem (an object store's stand-in)."""
    return f"memory:///{uuid.uuid4().hex}"


@pytest.mark.parametrize("store", ["local", "memory"])
def test_a_second_save_of_a_saved_version_is_refused(tmp_path: Path, store: str) -> None:
    path = f"{tmp_path if store == 'local' else _memory_folder()}/x.npz"
    NpzDataset(filepath=path, version=Version(None, VERSION)).save({"a": np.array([1])})
    with pytest.raises(DatasetError, match="must not exist if versioning is enabled"):
        NpzDataset(filepath=path, version=Version(None, VERSION)).save({"a": np.array([2])})
    loaded = NpzDataset(filepath=path, version=Version(None, None)).load()
    assert loaded["a"].tolist() == [1]


def test_object_store_saves_are_staged_and_a_failed_one_stays_invisible(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On fsspec's memory:// store as on an object store: the object appears whole under
    its name, never as a staging leftover, and a failed save leaves the older version."""
    root = _memory_folder()
    memory = fsspec.filesystem("memory")
    NpzDataset(filepath=f"{root}/x.npz", version=Version(None, VERSION)).save({"a": np.arange(3)})
    assert memory.find(root) == [f"{root.removeprefix('memory://')}/x.npz/{VERSION}/x.npz"]

    def crash(handle, **arrays):
        handle.write(b"PK\x03\x04 half a zip file")
        raise OSError("connection reset")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(DatasetError, match="connection reset"):
        NpzDataset(filepath=f"{root}/x.npz", version=Version(None, None)).save({"a": np.zeros(1)})
    monkeypatch.undo()
    assert len(memory.find(root)) == 1, "no staging object is left behind"
    loaded = NpzDataset(filepath=f"{root}/x.npz", version=Version(None, None)).load()
    assert loaded["a"].tolist() == [0, 1, 2]


@pytest.mark.parametrize("dataset", [NpzDataset, CSVDataset])
def test_a_run_loads_the_version_it_saved_though_another_run_saved_a_newer_one(
    tmp_path: Path, dataset: type
) -> None:
    """Two runs in one folder: each one's loads read what it saved itself; a run that saved
    nothing reads the newest, and a ``--load-versions`` pin still wins."""
    path = str(tmp_path / ("x.npz" if dataset is NpzDataset else "x.csv"))
    older, newer = "2026-01-01T00.00.00.000Z", "2026-01-01T00.00.00.001Z"
    data = {older: {"a": np.array([1])}, newer: {"a": np.array([2])}}
    if dataset is CSVDataset:
        data = {version: pd.DataFrame(arrays) for version, arrays in data.items()}
    # The run that started later saves first, so that the newest version is not this one's.
    dataset(filepath=path, version=Version(None, newer)).save(data[newer])
    first = dataset(filepath=path, version=Version(None, older))
    first.save(data[older])
    assert first.load()["a"].tolist() == [1]
    assert dataset(filepath=path, version=Version(None, "2026-02-01T00.00.00.000Z")).load()[
        "a"
    ].tolist() == [2]
    assert dataset(filepath=path, version=Version(newer, older)).load()["a"].tolist() == [2]


def test_exists_once_a_version_is_saved(tmp_path: Path) -> None:
    path = str(tmp_path / "x.npz")
    assert not NpzDataset(filepath=path, version=Version(None, None)).exists()
    NpzDataset(filepath=path, version=Version(None, VERSION)).save({"a": np.array([1])})
    assert NpzDataset(filepath=path, version=Version(None, None)).exists()
    assert NpzDataset(filepath=path, version=Version(VERSION, None)).exists()
    other = "2025-01-01T00.00.00.000Z"
    assert not NpzDataset(filepath=path, version=Version(other, None)).exists()


def test_exists_unversioned(tmp_path: Path) -> None:
    dataset = NpzDataset(filepath=str(tmp_path / "x.npz"))
    assert not dataset.exists()
    dataset.save({"a": np.array([1])})
    assert dataset.exists()


def test_describe_and_metadata(tmp_path: Path) -> None:
    metadata = {"kedro-viz": {"layer": "model_input"}}
    dataset = NpzDataset(
        filepath=str(tmp_path / "x.npz"),
        load_args={"mmap_mode": None},
        version=Version(None, VERSION),
        metadata=metadata,
    )
    assert dataset._describe() == {
        "filepath": PurePosixPath(tmp_path.as_posix()) / "x.npz",
        "protocol": "file",
        "load_args": {"mmap_mode": None},
        "save_args": {"compress": False},
        "version": Version(None, VERSION),
    }
    assert dataset.metadata == metadata


def test_missing_folders_are_created_unless_fs_args_say_otherwise(tmp_path: Path) -> None:
    fs_args: dict[str, bool] = {}
    NpzDataset(filepath=str(tmp_path / "a" / "b" / "x.npz"), fs_args=fs_args).save(
        {"a": np.array([1])}
    )
    assert (tmp_path / "a" / "b" / "x.npz").is_file()
    assert fs_args == {}, "the caller's arguments are left as they were"
    strict = NpzDataset(filepath=str(tmp_path / "c" / "x.npz"), fs_args={"auto_mkdir": False})
    with pytest.raises(DatasetError):  # Kedro's words for it speak of versions: not checked
        strict.save({"a": np.array([1])})
    assert not (tmp_path / "c").exists()


def test_a_save_removes_what_a_killed_save_left(tmp_path: Path) -> None:
    """kill -9 runs no cleanup: the staging file of a process that no longer runs (and its
    empty version folder) goes at the next save; a running process's stays."""
    path = tmp_path / "h.csv"
    host = socket.gethostname().replace(".", "-")
    dead = subprocess.Popen(["true"])  # its process id is free again once it has ended
    dead.wait()
    killed, running = path / "2026-01-01T00.00.00.000Z", path / "2026-01-01T00.00.00.001Z"
    for folder, pid in ((killed, dead.pid), (running, os.getpid())):
        folder.mkdir(parents=True)
        (folder / f".h.csv.{host}.{pid}.{uuid.uuid4().hex}.partial").write_text("a\n")
    CSVDataset(filepath=str(path), version=Version(None, None)).save(pd.DataFrame({"a": [1]}))
    assert not killed.exists()
    assert len(list(running.iterdir())) == 1
