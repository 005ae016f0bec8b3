"""`kedro run --pipelines tune` as users run it: several workers on one study (an SQLite
file; a PostgreSQL server the test starts), a killed worker, the best parameters given back
to `kedro run --config`, the trials in MLflow and in optuna-dashboard."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import mlflow
import optuna
import pandas as pd
import postgres
import pytest
import yaml
from browser import (
    Session,
    check_screenshots,
    free_port,
    http_get,
    offline_env,
    stop_server,
    wait_until_served,
    wait_until_still,
)
from kedro_cli import ENV, kedro, start_kedro

pytestmark = pytest.mark.slow

STUDY = "alexnet_cifar10"


def _newest(folder: Path) -> Path:
    """The newest version of a versioned dataset folder's file."""
    return max(folder.iterdir()) / folder.name


def _load(storage: str) -> optuna.Study:
    return optuna.load_study(study_name=STUDY, storage=storage)


def _finish(worker: subprocess.Popen) -> str:
    output, _ = worker.communicate(timeout=600)
    assert worker.returncode == 0, output[-4000:]
    return output


def _wait_for(condition: Any, what: str, limit: float = 300) -> None:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < limit, f"no {what} after {limit} s"
        time.sleep(0.5)


def test_two_workers_share_one_study_file_and_its_best_parameters_train(
    finished_project: Path, browser: Any, tmp_path: Path
) -> None:
    project = finished_project
    workers = [start_kedro(project, "run", "--env", "test", "--pipelines", "tune") for _ in "ab"]
    for worker in workers:
        _finish(worker)
    storage = f"sqlite:///{project}/data/test/06_models/optuna.db"
    trials = _load(storage).trials
    # Each worker ran its tune.n_trials (2): no trial lost, none run twice, none left open.
    assert [trial.number for trial in trials] == [0, 1, 2, 3]
    assert {trial.state.name for trial in trials} <= {"COMPLETE", "PRUNED"}
    table = pd.read_csv(_newest(project / "data/test/07_model_output/tuning_trials.csv"))
    assert len(table) == 4
    assert (project / "data/test/08_reporting/optimization_history_plot.png").is_dir()
    assert (project / "data/test/08_reporting/parameter_importance_plot.png").is_dir()

    # Each worker is a tracked run; each of its trials a nested run with its state.
    client = mlflow.MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(STUDY).experiment_id
    parents = client.search_runs([experiment], "tags.run_kind = 'tune'")
    assert len(parents) == 2
    for parent in parents:
        children = client.search_runs(
            [experiment], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
        )
        assert len(children) == 2
        assert {child.data.tags["optuna.state"] for child in children} <= {"complete", "pruned"}

    # The best parameters file is a run configuration that `kedro run` takes.
    best = _newest(project / "data/test/07_model_output/best_parameters.yml")
    rate = yaml.safe_load(best.read_text())["run"]["params"]["training"]["optimizer"]
    result = kedro(project, "run", "--config", str(best), "--pipelines", "training")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    (trained,) = client.search_runs(
        [experiment],
        "tags.run_kind = 'train'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    logged = trained.data.params["training.optimizer.learning_rate"]
    assert float(logged) == rate["learning_rate"]

    _check_dashboard(project, storage, browser, tmp_path)


def _check_dashboard(project: Path, storage: str, browser: Any, tmp_path: Path) -> None:
    """optuna-dashboard, as docs/tuning.md starts it, lists the study and its trials."""
    port = free_port()
    log_path = tmp_path / "dashboard.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "optuna-dashboard"), storage, "--port", str(port)],
            cwd=project,
            env={**ENV, **offline_env()},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}/"
        try:
            studies = wait_until_served(server, lambda: http_get(url + "api/studies"), log_path)
            assert STUDY.encode() in studies
            session = Session(browser, (url,))
            screenshot = tmp_path / "optuna-dashboard.png"
            try:
                session.page.goto(f"{url}dashboard/studies/1")
                session.page.get_by_text("Best Trial").first.wait_for()
                wait_until_still(session.page, ".main-svg")
                session.page.screenshot(path=screenshot)
                session.assert_offline()
            finally:
                session.close()
            # A real picture; docs/images/ shows a study on the real data instead.
            check_screenshots([screenshot], publish=False)
        finally:
            stop_server(server, port)


@pytest.mark.skipif(
    not postgres.available(), reason="PostgreSQL is not installed (.ci/run installs it)"
)
def test_workers_on_postgresql_lose_only_the_killed_workers_trial(finished_project: Path) -> None:
    project = finished_project
    with postgres.server("optuna") as url:
        storage = url.replace("postgresql://", "postgresql+psycopg://")
        common = f"tune.storage={url},tune.heartbeat_seconds=1"
        # A worker whose one trial lasts minutes: it is killed (SIGKILL) in that trial.
        doomed = start_kedro(
            project, "run", "--env", "test", "--pipelines", "tune",
            "--params", f"{common},tune.n_trials=1,tune.epochs=5000",
        )  # fmt: skip
        _wait_for(lambda: _running(storage), "running trial of the first worker")
        survivor = start_kedro(
            project,
            "run",
            "--env",
            "test",
            "--pipelines",
            "tune",
            "--params",
            f"{common},tune.n_trials=3",
        )
        _wait_for(lambda: len(_load(storage).trials) > 1, "trial of the second worker")
        os.kill(doomed.pid, signal.SIGKILL)
        doomed.wait(timeout=60)
        _finish(survivor)
        trials = _load(storage).trials
    assert [trial.number for trial in trials] == [0, 1, 2, 3]
    # The killed worker's trial, without a heartbeat, was recorded failed by the other.
    assert trials[0].state.name == "FAIL"
    assert {trial.state.name for trial in trials[1:]} <= {"COMPLETE", "PRUNED"}


def _running(storage: str) -> bool:
    try:
        return any(t.state.name == "RUNNING" for t in _load(storage).trials)
    except KeyError:  # the study is not created yet
        return False
