"""The registered model where the project is not installed: a fresh virtual environment
made from the model's own requirements.txt (from the public package index), without the
project, Kedro or a deep-learning backend, loads `models:/alexnet_cifar10@champion-test` and
serves it with `mlflow models serve`; both answer official-format CIFAR-10 test pictures
exactly as `kedro serve` does."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
from kedro_cli import SHARED_CIFAR
from PIL import Image
from scoring import Server, b64, free_port, post, split

from alexnet_cifar10.datasets import CIFAR10Dataset

pytestmark = pytest.mark.slow

MODEL = "models:/alexnet_cifar10@champion-test"  # the test env's alias
# What the fresh environment must not hold: the model brings its code, nothing else.
ABSENT = ("alexnet_cifar10", "kedro", "keras", "tensorflow", "jax")
# uv's words when no package index can be reached.
OFFLINE = ("dns error", "Network is unreachable", "tcp connect error")
# The answer as MLflow's scoring server writes it (its own JSON encoding).
PREDICT = """
import json, sys
import mlflow, pandas as pd
from mlflow.pyfunc.scoring_server import predictions_to_json
request = json.load(open(sys.argv[1]))["dataframe_split"]
frame = pd.DataFrame(request["data"], columns=request["columns"])
predictions_to_json(mlflow.pyfunc.load_model(sys.argv[2]).predict(frame), sys.stdout)
"""


def _request(project: Path) -> bytes:
    """The first 16 official test pictures (the real CIFAR-10 where present), as PNG files."""
    root = SHARED_CIFAR.parent if SHARED_CIFAR.exists() else project / "data" / "01_raw"
    rows = []
    for image in CIFAR10Dataset(path=str(root)).load()["test_images"][:16]:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG")
        rows.append([b64(buffer.getvalue())])
    return split(rows)


def _fresh_environment(folder: Path, requirements: Path, env: dict[str, str]) -> Path:
    """A virtual environment with the model's requirements and nothing of this one (uv:
    seconds where pip takes most of a minute)."""
    uv = [sys.executable, "-m", "uv"]
    subprocess.run([*uv, "venv", "-q", str(folder)], check=True, env=env)
    python = folder / "bin" / "python"
    install = subprocess.run(
        [*uv, "pip", "install", "-q", "--python", str(python), "-r", str(requirements)],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
        env=env,
    )
    if install.returncode and any(word in install.stderr for word in OFFLINE):
        pytest.skip(
            f"no package index reachable to build the model's environment: {install.stderr[-300:]}"
        )
    assert install.returncode == 0, install.stderr[-3000:]
    return python


def test_the_registered_model_answers_where_the_project_is_not_installed(
    finished_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = finished_project
    store = f"sqlite:///{project / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    requirements = Path(mlflow.pyfunc.get_model_dependencies(MODEL))
    assert not any("alexnet" in line for line in requirements.read_text().splitlines())

    # Nothing of this environment's path: only what the fresh one installs.
    clean = {
        **{k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        "MLFLOW_TRACKING_URI": store,
    }
    started = time.monotonic()
    python = _fresh_environment(tmp_path / "venv", requirements, clean)
    built = time.monotonic() - started
    for module in ABSENT:
        found = subprocess.run(
            [str(python), "-c", f"import {module}"], capture_output=True, check=False, env=clean
        )
        assert found.returncode != 0, f"{module} is in the fresh environment"

    body = _request(project)
    (tmp_path / "request.json").write_bytes(body)
    loaded = subprocess.run(
        [str(python), "-c", PREDICT, str(tmp_path / "request.json"), MODEL],
        cwd=tmp_path,
        env=clean,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    answers = {"mlflow.pyfunc.load_model": json.loads(loaded.stdout.splitlines()[-1])}

    for name, command in {
        "mlflow models serve": [
            str(python.parent / "mlflow"),
            "models",
            "serve",
            "-m",
            MODEL,
            "--env-manager",
            "local",
            "--host",
            "127.0.0.1",
        ],
        "kedro serve": None,
    }.items():
        port = free_port()
        server = Server(
            tmp_path if command else project,
            port,
            [*command, "--port", str(port)] if command else None,
            env=clean if command else None,
        )
        try:
            server.wait_ready(timeout=120)
            status, answers[name] = post(port, body)
            assert status == 200, answers[name]
        finally:
            server.stop()
    expected = answers.pop("kedro serve")
    assert len(expected["predictions"]) == 16
    assert all(row["status"] == "ok" for row in expected["predictions"])
    for name, answer in answers.items():
        assert answer == expected, name
    logging.getLogger(__name__).info("The fresh environment was built in %.0f s", built)
