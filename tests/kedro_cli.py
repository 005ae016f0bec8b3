"""Helpers to drive the kedro CLI in a throw-away copy of the project, as a user would."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import zipfile
from contextlib import closing
from pathlib import Path

import pandas as pd
from click.testing import CliRunner
from kedro.framework.cli.cli import KedroCLI
from synthetic_cifar import release_files, write_archive

REPO = Path(__file__).resolve().parents[1]
SHARED_CIFAR = REPO.parent / "shared" / "data" / "cifar-10-batches-py"

ENV = {
    **os.environ,
    "KEDRO_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
    "COLUMNS": "200",
    "PYTHONUNBUFFERED": "1",
    # MLflow 3 sends usage data unless told not to (it reads DO_NOT_TRACK only as "true").
    "MLFLOW_DISABLE_TELEMETRY": "true",
}


def make_project(root: Path) -> Path:
    """Copy the project's code and configuration to ``root``, a synthetic archive in
    data/01_raw."""
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


def copy_project(source: Path, target: Path) -> Path:
    """Copy a project folder. MLflow keeps absolute artifact paths in its store: the copy's
    are moved along, so that runs in the copy write their artifacts inside it."""
    shutil.copytree(source, target, symlinks=True)
    store = target / "mlflow.db"
    if store.exists():
        old, new = (source / "mlartifacts").as_uri(), (target / "mlartifacts").as_uri()
        with closing(sqlite3.connect(store)) as database, database:
            database.execute(
                "UPDATE experiments SET artifact_location = replace(artifact_location, ?, ?)",
                (old, new),
            )
            for table, column in (
                ("runs", "artifact_uri"),
                ("logged_models", "artifact_location"),
                ("model_versions", "storage_location"),
            ):
                database.execute(
                    f"UPDATE {table} SET {column} = replace({column}, ?, ?)",
                    (old, new),
                )
    return target


def kedro(
    project: Path,
    *args: str,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """Run ``kedro ARGS`` in ``project`` and wait for it. ``result.log`` holds the run's
    log messages, one per line (the console wraps long ones to the terminal's width)."""
    log_file = project / "info.log"
    log_file.unlink(missing_ok=True)
    result = subprocess.run(
        [sys.executable, "-m", "kedro", *args],
        cwd=project,
        env={**ENV, **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    result.log = log_file.read_text() if log_file.exists() else ""
    return result


class _Messages(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name} - {record.levelname} - {record.getMessage()}")


def kedro_here(project: Path, *args: str) -> subprocess.CompletedProcess:
    """``kedro ARGS`` through Kedro's own command line, in ``project`` but in this process:
    the runs of a test share one start of the deep-learning backend, seconds each on this
    CPU. ``result.log`` holds the log messages, one per line."""
    messages = _Messages()
    root = logging.getLogger()
    root.addHandler(messages)
    try:
        with contextlib.chdir(project):
            result = CliRunner().invoke(KedroCLI(project_path=project), list(args))
    finally:
        root.removeHandler(messages)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    completed = subprocess.CompletedProcess(args, result.exit_code, result.output, "")
    completed.log = "\n".join(messages.lines)
    return completed


def start_kedro(
    project: Path,
    *args: str,
    env: dict[str, str] | None = None,
) -> subprocess.Popen:
    """Start ``kedro ARGS`` in ``project``; stdout and stderr merged, line-buffered text."""
    return subprocess.Popen(
        [sys.executable, "-m", "kedro", *args],
        cwd=project,
        env={**ENV, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )


def read_until(process: subprocess.Popen, marker: str) -> str:
    """Read the process's output until a line contains ``marker``; return what was read."""
    seen = []
    assert process.stdout is not None
    for line in process.stdout:
        seen.append(line)
        if marker in line:
            return "".join(seen)
    raise AssertionError(f"{marker!r} never appeared; output was:\n{''.join(seen)[-4000:]}")


def model_card(project: Path, version: str) -> dict:
    """The card that a trained model's archive holds."""
    archive = project / "data/test/06_models/alexnet.keras" / version / "alexnet.keras"
    with zipfile.ZipFile(archive) as model:
        return json.loads(model.read("model_card.json"))


def model_history(project: Path, version: str) -> pd.DataFrame:
    """The training history that a trained model's archive holds."""
    archive = project / "data/test/06_models/alexnet.keras" / version / "alexnet.keras"
    with zipfile.ZipFile(archive) as model:
        return pd.read_csv(io.BytesIO(model.read("training_history.csv")))


def saved(project: Path, layer: str, name: str, version: str) -> Path:
    """Where one version of a `test` environment's output is."""
    return project / "data" / "test" / layer / name / version / name


def versions(project: Path, layer: str, name: str) -> list[str]:
    """Version folders of ``data/layer/name`` holding a complete file, oldest first."""
    root = project / "data" / "test" / layer / name
    return sorted(p.name for p in root.iterdir() if (p / name).is_file()) if root.exists() else []
