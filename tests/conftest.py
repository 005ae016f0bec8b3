"""Shared fixtures: throw-away copies of the project, fresh and after one run."""

from __future__ import annotations

import copy
import os
import shutil
import sys
from pathlib import Path

import pytest
from kedro.config import OmegaConfigLoader

# The helper modules (kedro_cli, synthetic_cifar) sit beside this file.
sys.path.insert(0, str(Path(__file__).parent))

from kedro_cli import REPO, kedro, make_project  # noqa: E402

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the project's code and configuration, synthetic archive in data/01_raw."""
    return make_project(tmp_path / "project")


@pytest.fixture(scope="session")
def _finished_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_project(tmp_path_factory.mktemp("finished") / "project")
    result = kedro(root, "run", "--env", "test")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return root


@pytest.fixture
def finished_project(_finished_template: Path, tmp_path: Path) -> Path:
    """A project copy after one complete `kedro run --env test` (run once per session)."""
    return Path(shutil.copytree(_finished_template, tmp_path / "project", symlinks=True))


@pytest.fixture(scope="session")
def base_params() -> dict:
    """The project's default (recipe) parameters from conf/base."""
    loader = OmegaConfigLoader(str(REPO / "conf"), base_env="base", default_run_env="base")
    return loader["parameters"]


@pytest.fixture
def recipe_training(base_params: dict) -> dict:
    """A fresh copy of the default training parameters."""
    return copy.deepcopy(base_params["training"])
