"""Faults a user can meet, tried for real on `kedro run` subprocesses: nothing is lost."""

from __future__ import annotations

import json
import signal
import textwrap
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
from kedro_cli import kedro, read_until, start_kedro, versions

pytestmark = pytest.mark.slow

RESUMABLE = "training.epochs=4,training.batch_size=8,training.resume.enabled=true"

SLOW_SAVE = textwrap.dedent(
    """
    # Makes the trained model's upload stall half-way, so that a test can kill the run
    # mid-save.
    import os
    import time
    from fsspec.implementations.local import LocalFileSystem

    put_whole_file = LocalFileSystem.put_file

    def put_file(self, lpath, rpath, **kwargs):
        if "/alexnet.keras/" not in str(rpath):
            return put_whole_file(self, lpath, rpath, **kwargs)
        content = open(lpath, "rb").read()
        os.makedirs(os.path.dirname(rpath), exist_ok=True)
        with open(rpath, "wb") as out:
            out.write(content[: len(content) // 2])
            out.flush()
        print("SLOW-SAVE-" + "HALF-WRITTEN", flush=True)
        time.sleep(300)

    LocalFileSystem.put_file = put_file
    """
)


def test_kill_during_model_save_keeps_the_previous_model(
    finished_project: Path, tmp_path: Path
) -> None:
    project = finished_project
    [complete] = versions(project, "06_models", "alexnet.keras")
    (tmp_path / "slow").mkdir()
    (tmp_path / "slow" / "sitecustomize.py").write_text(SLOW_SAVE)
    run = start_kedro(
        project,
        "run",
        "--env",
        "test",
        "--pipelines",
        "training",
        env={"PYTHONPATH": str(tmp_path / "slow")},
    )
    read_until(run, "SLOW-SAVE-HALF-WRITTEN")
    run.kill()
    run.wait(timeout=60)

    folders = sorted(p.name for p in (project / "data/06_models/alexnet.keras").iterdir())
    assert len(folders) == 2
    partial = list((project / "data/06_models/alexnet.keras" / folders[-1]).iterdir())
    assert [p.name.endswith(".partial") for p in partial] == [True], "only a staging file"
    assert versions(project, "06_models", "alexnet.keras") == [complete]

    result = kedro(project, "run", "--env", "test", "--pipeline", "evaluate")
    assert result.returncode == 0, result.stderr[-4000:]
    assert f"Skipped incomplete version {folders[-1]}" in result.stdout + result.stderr
    assert f"loading version {complete}" in result.stdout + result.stderr


def test_kill_after_epoch_2_of_4_resumes_at_epoch_3(finished_project: Path) -> None:
    project = finished_project
    run = start_kedro(
        project, "run", "--env", "test", "--pipelines", "training", "--params", RESUMABLE
    )
    read_until(run, "Resume point saved after epoch 2")
    run.kill()
    run.wait(timeout=60)
    [resume_dir] = (project / "data/06_models/resume_points").iterdir()
    before = json.loads((resume_dir / "history.json").read_text())
    assert [row["epoch"] for row in before] in ([1, 2], [1, 2, 3])

    result = kedro(
        project, "run", "--env", "test", "--pipelines", "training", "--params", RESUMABLE
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "Resuming training at epoch 3 of 4" in output
    assert "Epoch 1/4" not in output and "Epoch 2/4" not in output
    newest = versions(project, "07_model_output", "training_history.csv")[-1]
    history = pd.read_csv(
        project / "data/07_model_output/training_history.csv" / newest / "training_history.csv"
    )
    assert history["epoch"].tolist() == [1, 2, 3, 4]
    np.testing.assert_allclose(history["loss"][:2], [row["loss"] for row in before[:2]])
    assert not resume_dir.exists(), "a finished run removes its resume point"


def test_ctrl_c_stops_with_one_line_and_no_traceback(finished_project: Path) -> None:
    project = finished_project
    run = start_kedro(
        project, "run", "--env", "test", "--pipelines", "training", "--params", RESUMABLE
    )
    read_until(run, "Epoch 1/4")
    run.send_signal(signal.SIGINT)
    rest, _ = run.communicate(timeout=120)
    assert run.returncode == 130
    assert "Stopped by SIGINT: no partial version was published" in rest
    assert "Traceback" not in rest
    assert len(versions(project, "06_models", "alexnet.keras")) == 1


def test_two_concurrent_runs_keep_their_own_versions(project: Path) -> None:
    runs = [start_kedro(project, "run", "--env", "test") for _ in range(2)]
    outputs = [run.communicate(timeout=600)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    model_versions = versions(project, "06_models", "alexnet.keras")
    assert len(model_versions) == 2
    for layer, name in [
        ("05_model_input", "model_input_test.npz"),
        ("07_model_output", "test_predictions.csv"),
        ("08_reporting", "test_metrics.json"),
    ]:
        assert versions(project, layer, name) == model_versions, name
    # Each run evaluated its own model on its own test inputs.
    for version in model_versions:
        model = keras.saving.load_model(
            project / "data/06_models/alexnet.keras" / version / "alexnet.keras"
        )
        with np.load(
            project / "data/05_model_input/model_input_test.npz" / version / "model_input_test.npz"
        ) as test:
            expected = model.predict(test["images"], verbose=0)
        predictions = pd.read_csv(
            project / "data/07_model_output/test_predictions.csv" / version / "test_predictions.csv"
        )
        np.testing.assert_allclose(predictions.filter(like="p_").to_numpy(), expected, atol=1e-5)
