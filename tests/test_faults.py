"""Faults a user can meet, tried for real on `kedro run` subprocesses: nothing is lost."""

from __future__ import annotations

import json
import signal
import sqlite3
import textwrap
from pathlib import Path

import keras
import mlflow
import numpy as np
import pandas as pd
import pytest
from kedro_cli import kedro, model_history, read_until, saved, start_kedro, versions

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


STOP_AFTER_EPOCH = textwrap.dedent(
    """
    # Sends the run a signal from inside, right after the resume point of epoch STOP_EPOCH
    # is saved: the stop lands at the same point of the run however fast the machine is.
    import importlib.abc
    import importlib.util
    import os
    import signal
    import sys

    CALLBACKS = "alexnet_cifar10.pipelines.training.callbacks"


    def stop_after_epoch(module):
        backup = module.keras.callbacks.BackupAndRestore
        save = backup.on_epoch_end

        def on_epoch_end(self, epoch, logs=None):
            save(self, epoch, logs)
            if epoch + 1 == int(os.environ["STOP_EPOCH"]):
                os.kill(os.getpid(), getattr(signal, os.environ["STOP_SIGNAL"]))

        backup.on_epoch_end = on_epoch_end


    class PatchWhenImported(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name != CALLBACKS:
                return None
            sys.meta_path.remove(self)
            spec = importlib.util.find_spec(name)
            run_module = spec.loader.exec_module

            def exec_module(module):
                run_module(module)
                stop_after_epoch(module)

            spec.loader.exec_module = exec_module
            return spec


    sys.meta_path.insert(0, PatchWhenImported())
    """
)


def stopped_after_epoch(tmp_path: Path, epoch: int, signal_name: str) -> dict[str, str]:
    """Environment of a run that sends itself ``signal_name`` once epoch ``epoch``'s resume
    point is saved."""
    folder = tmp_path / "stop"
    folder.mkdir(exist_ok=True)
    (folder / "sitecustomize.py").write_text(STOP_AFTER_EPOCH)
    return {"PYTHONPATH": str(folder), "STOP_EPOCH": str(epoch), "STOP_SIGNAL": signal_name}


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

    folders = sorted(p.name for p in (project / "data/test/06_models/alexnet.keras").iterdir())
    assert len(folders) == 2
    partial = list((project / "data/test/06_models/alexnet.keras" / folders[-1]).iterdir())
    assert [p.name.endswith(".partial") for p in partial] == [True], "only a staging file"
    assert versions(project, "06_models", "alexnet.keras") == [complete]

    result = kedro(project, "run", "--env", "test", "--pipeline", "evaluate")
    assert result.returncode == 0, result.stderr[-4000:]
    newest = versions(project, "08_reporting", "test_metrics.json")[-1]
    metrics = project / "data/test/08_reporting/test_metrics.json" / newest / "test_metrics.json"
    assert json.loads(metrics.read_text())["model_version"] == complete


def test_kill_after_epoch_2_of_4_resumes_at_epoch_3(finished_project: Path, tmp_path: Path) -> None:
    project = finished_project
    killed = kedro(
        project, "run", "--env", "test", "--pipelines", "training", "--params", RESUMABLE,
        env=stopped_after_epoch(tmp_path, 2, "SIGKILL"),
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stdout[-3000:] + killed.stderr[-3000:]
    assert "Saving the resume point after epoch 2" in killed.stdout + killed.stderr
    [resume_dir] = (project / "data/test/06_models/resume_points").iterdir()
    before = json.loads((resume_dir / "history.json").read_text())
    assert [row["epoch"] for row in before] == [1, 2]

    result = kedro(
        project, "run", "--env", "test", "--pipelines", "training", "--params", RESUMABLE
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "Resuming training at epoch 3 of 4" in output
    assert "Epoch 1/4" not in output and "Epoch 2/4" not in output
    history = model_history(project, versions(project, "06_models", "alexnet.keras")[-1])
    assert history["epoch"].tolist() == [1, 2, 3, 4]
    np.testing.assert_allclose(history["loss"][:2], [row["loss"] for row in before])
    assert not resume_dir.exists(), "a finished run removes its resume point"


@pytest.mark.parametrize(("signal_name", "status"), [("SIGINT", 130), ("SIGTERM", 143)])
def test_ctrl_c_and_sigterm_stop_with_one_line_and_no_traceback(
    finished_project: Path, tmp_path: Path, signal_name: str, status: int
) -> None:
    project = finished_project
    result = kedro(
        project, "run", "--env", "test", "--pipelines", "training", "--params", RESUMABLE,
        env=stopped_after_epoch(tmp_path, 1, signal_name),
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == status, output[-4000:]
    assert f"Stopped by {signal_name}: no partial version was published" in output
    # What the nodes before train_model published, under the stopped run's version.
    [summary] = versions(project, "08_reporting", "model_summary.csv")[-1:]
    assert f"as version {summary}: model_summary, untrained_model." in output
    assert "Traceback" not in output
    assert "Epoch 2/4" not in output
    assert len(versions(project, "06_models", "alexnet.keras")) == 1
    [resume_dir] = (project / "data/test/06_models/resume_points").iterdir()
    assert [row["epoch"] for row in json.loads((resume_dir / "history.json").read_text())] == [1]
    # The MLflow run of the stopped run says so, as the one before it says it finished.
    client = mlflow.MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    runs = client.search_runs(
        [client.get_experiment_by_name("alexnet_cifar10").experiment_id],
        order_by=["attributes.start_time DESC"],
    )
    assert [run.info.status for run in runs[:2]] == ["KILLED", "FINISHED"]


def test_a_tracking_store_locked_mid_run_costs_only_the_tracking(project: Path) -> None:
    """The MLflow store locked by another process once training starts: the run finishes
    with every output, one line says tracking stopped, and MLflow's record says that it is
    incomplete."""
    run = start_kedro(project, "run", "--env", "test")
    before = read_until(run, "Running node: train_model")
    lock = sqlite3.connect(project / "mlflow.db", isolation_level=None, timeout=60)
    lock.execute("BEGIN EXCLUSIVE")  # what a long write of another process holds
    try:
        during = read_until(run, "MLflow could not record")
    finally:
        lock.close()
    after = run.communicate(timeout=600)[0]
    output = before + during + after
    assert run.returncode == 0, output[-4000:]
    assert output.count("MLflow could not record") == 1
    assert "Traceback" not in output and "[SQL:" not in output
    [version] = versions(project, "06_models", "alexnet.keras")
    assert versions(project, "08_reporting", "test_metrics.json") == [version]
    client = mlflow.MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    [record] = client.search_runs([client.get_experiment_by_name("alexnet_cifar10").experiment_id])
    assert record.info.status == "FINISHED"
    assert record.data.tags["tracking"].startswith("incomplete: ")
    assert "test.accuracy" not in record.data.metrics


def test_two_concurrent_runs_keep_their_own_versions(project: Path) -> None:
    """Two runs started together, seeded differently so that their models differ: each
    saves under a version of its own, and each run's predictions and metrics come from the
    model that run trained, whichever of the two saved last."""
    runs = [
        start_kedro(project, "run", "--env", "test"),
        start_kedro(project, "run", "--env", "test", "--params", "seed=1"),
    ]
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
    with np.load(
        saved(project, "05_model_input", "model_input_test.npz", model_versions[0])
    ) as test:
        images = test["images"]
    answers = {
        version: keras.saving.load_model(
            saved(project, "06_models", "alexnet.keras", version)
        ).predict(images, verbose=0)
        for version in model_versions
    }
    assert np.abs(answers[model_versions[0]] - answers[model_versions[1]]).max() > 1e-3
    for version in model_versions:
        predictions = pd.read_csv(
            saved(project, "07_model_output", "test_predictions.csv", version)
        )
        assert set(predictions["model_version"]) == {version}
        np.testing.assert_allclose(
            predictions.filter(like="p_").to_numpy(), answers[version], atol=1e-5
        )
        metrics = json.loads(
            saved(project, "08_reporting", "test_metrics.json", version).read_text()
        )
        accuracy = (predictions["predicted_label"] == predictions["true_label"]).mean()
        assert metrics["model_version"] == version
        assert metrics["accuracy"] == pytest.approx(accuracy)
