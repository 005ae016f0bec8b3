"""Shared fixtures: synthetic CIFAR-10 releases and throw-away copies of the project."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from kedro_cli import kedro  # noqa: E402
from synthetic_cifar import release_files, write_archive  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_CIFAR = REPO.parent / "shared" / "data" / "cifar-10-batches-py"

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")


def _make_project(root: Path) -> Path:
    root.mkdir(parents=True)
    shutil.copy(REPO / "pyproject.toml", root)
    shutil.copy(REPO / ".telemetry", root)
    shutil.copytree(REPO / "conf", root / "conf", ignore=shutil.ignore_patterns("local"))
    (root / "conf" / "local").mkdir()
    shutil.copytree(
        REPO / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    write_archive(root / "data" / "01_raw", release_files(per_batch=50))
    return root


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the project's code and configuration, synthetic archive in data/01_raw."""
    return _make_project(tmp_path / "project")


@pytest.fixture(scope="session")
def _finished_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = _make_project(tmp_path_factory.mktemp("finished") / "project")
    result = kedro(root, "run", "--env", "test")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return root


@pytest.fixture
def finished_project(_finished_template: Path, tmp_path: Path) -> Path:
    """A project copy after one complete `kedro run --env test` (run once per session)."""
    return Path(shutil.copytree(_finished_template, tmp_path / "project", symlinks=True))
