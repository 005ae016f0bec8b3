"""Crash-safe versioned saves: an interrupted save never becomes the latest version."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from kedro.io.core import DatasetError, Version

from alexnet_cifar10.datasets import CSVDataset, NpzDataset


def test_failed_save_leaves_no_visible_version(
    tmp_path: Path, monkeypatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = str(tmp_path / "x.npz")
    NpzDataset(filepath=path, version=Version(None, None)).save({"a": np.array([1])})

    def crash(handle, **arrays):
        handle.write(b"PK\x03\x04 half a zip file")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(DatasetError, match="disk full"):
        NpzDataset(filepath=path, version=Version(None, None)).save({"a": np.array([2])})
    monkeypatch.undo()

    folders = sorted((tmp_path / "x.npz").iterdir())
    assert len(folders) == 2
    assert list(folders[-1].iterdir()) == [], "the staging file is removed on failure"
    with caplog.at_level(logging.WARNING):
        loaded = NpzDataset(filepath=path, version=Version(None, None)).load()
    assert loaded["a"].tolist() == [1]
    assert f"Skipped incomplete version {folders[-1].name}" in caplog.text


def test_killed_save_leftover_is_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "h.csv"
    CSVDataset(filepath=str(path), version=Version(None, None)).save(pd.DataFrame({"a": [1]}))
    # What a SIGKILL during a save leaves: a newer folder holding only the staging file.
    leftover = path / "9999-01-01T00.00.00.000Z"
    leftover.mkdir()
    (leftover / ".h.csv.0123.partial").write_text("a\n")
    with caplog.at_level(logging.WARNING):
        frame = CSVDataset(filepath=str(path), version=Version(None, None)).load()
    assert frame["a"].tolist() == [1]
    assert "Skipped incomplete version 9999-01-01T00.00.00.000Z" in caplog.text


def test_successful_save_holds_only_the_final_file(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    CSVDataset(filepath=str(path), version=Version(None, "2026-01-01T00.00.00.000Z")).save(
        pd.DataFrame({"a": [1]})
    )
    assert [p.name for p in (path / "2026-01-01T00.00.00.000Z").iterdir()] == ["h.csv"]
