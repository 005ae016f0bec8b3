"""Shared fixtures: synthetic CIFAR-10 releases and throw-away copies of the project."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from synthetic_cifar import release_files, write_archive  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_CIFAR = REPO.parent / "shared" / "data" / "cifar-10-batches-py"

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the project's configuration with a synthetic archive in data/01_raw."""
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(REPO / "pyproject.toml", root)
    shutil.copy(REPO / ".telemetry", root)
    shutil.copytree(REPO / "conf", root / "conf", ignore=shutil.ignore_patterns("local"))
    (root / "conf" / "local").mkdir()
    shutil.copytree(
        REPO / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    write_archive(root / "data" / "01_raw", release_files(per_batch=50))
    return root
