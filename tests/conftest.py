"""Shared fixtures: throw-away copies of the project, fresh and after runs; the browser."""

from __future__ import annotations

import copy
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kedro.config import OmegaConfigLoader

from alexnet_cifar10.settings import CONFIG_LOADER_ARGS

# The helper modules (kedro_cli, synthetic_cifar, browser) sit beside this file.
sys.path.insert(0, str(Path(__file__).parent))

from browser import CHROMIUM  # noqa: E402
from kedro_cli import REPO, copy_project, kedro, make_project  # noqa: E402

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # the browser fixture skips, or fails under CI
    sync_playwright = None

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
    return copy_project(_finished_template, tmp_path / "project")


# The parameters of the two tracked training runs of `tracked_runs`: the test
# environment's, and these overrides.
SECOND_RUN = "training.epochs=2,training.optimizer.learning_rate=0.002"


@pytest.fixture(scope="session")
def tracked_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project with three runs tracked in its MLflow store: two `kedro run --env test`,
    the second with SECOND_RUN (training.epochs 1 and 2, learning rate 0.001 and 0.002),
    then the evaluate pipeline alone on the older model. Shared by the tests that only read
    it; `tracked_project` copies it."""
    root = make_project(tmp_path_factory.mktemp("tracked") / "project")
    for extra in ([], ["--params", SECOND_RUN]):
        result = kedro(root, "run", "--env", "test", *extra)
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    older = min(path.name for path in (root / "data/test/06_models/alexnet.keras").iterdir())
    result = kedro(
        root, "run", "--env", "test", "--pipelines", "evaluate", "--load-versions", f"model:{older}"
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return root


@pytest.fixture
def tracked_project(tracked_runs: Path, tmp_path: Path) -> Path:
    """A copy of `tracked_runs` to run more in."""
    return copy_project(tracked_runs, tmp_path / "project")


@pytest.fixture(scope="session")
def base_params() -> dict:
    """The project's default (recipe) parameters from conf/base."""
    args = {**CONFIG_LOADER_ARGS, "default_run_env": CONFIG_LOADER_ARGS["base_env"]}
    loader = OmegaConfigLoader(str(REPO / "conf"), **args)
    return loader["parameters"]


@pytest.fixture
def recipe_training(base_params: dict) -> dict:
    """A fresh copy of the default training parameters."""
    return copy.deepcopy(base_params["training"])


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium from the system (Playwright cannot download browsers here)."""
    problem = None
    if sync_playwright is None:
        problem = "playwright is not installed: pip install -e '.[test]'"
    elif not Path(CHROMIUM).exists():
        problem = f"Chromium not found at {CHROMIUM}: apt-get install chromium (.ci/run does)"
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                # No DNS for anything but loopback, in case a request slipped past the router.
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                # The static build is opened from disk: its module scripts and its
                # fetch() of api/ files are file:// requests, which Chromium refuses
                # unless told to allow them.
                "--allow-file-access-from-files",
            ],
        )
        yield chromium
        chromium.close()
