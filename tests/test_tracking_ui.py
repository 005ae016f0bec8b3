"""The MLflow UI in headless Chromium, as a person uses it to compare two tracked runs.

The UI is served by `mlflow ui --backend-store-uri sqlite:///mlflow.db` from the project
root (the README's command) on a free loopback port, and Chromium refuses and records
every request that leaves 127.0.0.1 (see ``browser``). The screenshot of the two runs
compared goes to docs/images/ with ``UPDATE_SCREENSHOTS=1``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from browser import (
    VIEWPORT,
    Session,
    assert_loopback_only,
    check_screenshots,
    free_port,
    http_get,
    offline_env,
    stop_server,
    wait_until_served,
    wait_until_still,
)
from kedro_cli import ENV, versions

# Under pytest-xdist, the tests that read the session's tracked runs share one worker,
# which builds them once.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("tracked_runs")]

mlflow = pytest.importorskip("mlflow", reason="MLflow is a dependency of the project")

EXPERIMENT = "alexnet_cifar10"
# The UI server alone: no background job runner (MLflow's GenAI jobs), one worker.
UI_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


def accuracies_on_disk(project: Path) -> dict[str, float]:
    """Model version (the run's name) -> test accuracy, from the runs' test_metrics.json."""
    folder = project / "data" / "test" / "08_reporting" / "test_metrics.json"
    return {
        version: json.loads((folder / version / "test_metrics.json").read_text())["accuracy"]
        for version in versions(project, "06_models", "alexnet.keras")
    }


def shows(cell: str, value: float) -> bool:
    """Whether a cell prints ``value``, to the digits it shows."""
    try:
        return abs(float(cell) - value) <= 0.5 * 10 ** -len(cell.partition(".")[2])
    except ValueError:
        return False


def runs_in_table(page: Any) -> dict[str, list[str]]:
    """Each row of the runs table (its pinned and scrolled parts), by MLflow run id."""
    rows: dict[str, list[str]] = {}
    for row in page.locator("[role=row][row-id]").all():
        rows.setdefault(row.get_attribute("row-id"), []).extend(row.inner_text().split("\n"))
    return rows


def close_assistant(page: Any) -> None:
    """MLflow 3.17 opens its assistant panel beside the runs; a person closes it."""
    close = page.get_by_role("button", name="Close", exact=True)
    if close.count():
        close.first.click()


def check_runs_table(page: Any, run_ids: dict[str, str], expected: dict[str, float]) -> None:
    """Every run in the table, under its name, with its test accuracy as a column."""
    for name in run_ids:
        page.get_by_text(name, exact=True).first.wait_for(timeout=60_000)
    close_assistant(page)
    page.get_by_role("button", name="Columns", exact=True).click()
    page.locator(".du-bois-light-tree-title").get_by_text("test.accuracy", exact=True).click()
    page.keyboard.press("Escape")
    page.get_by_role("columnheader", name="test.accuracy").first.wait_for()
    rows = runs_in_table(page)
    assert set(run_ids.values()) <= set(rows)
    for name, run_id in run_ids.items():
        cells = rows[run_id]
        assert name in cells
        assert any(shows(cell, expected[name]) for cell in cells), (cells, expected[name])


def compare_all(page: Any, expected: dict[str, float], screenshot: Path) -> None:
    """Select every run, compare them: the parameters that differ against test accuracy."""
    page.locator("[role=columnheader] input[type=checkbox]").first.check()
    page.get_by_role("button", name="Compare").click()
    page.get_by_text(f"Comparing {len(expected)} Runs").wait_for()
    metric = page.locator(".du-bois-light-select-multiple").nth(1)
    metric.locator(".du-bois-light-select-selection-item-remove").first.click()
    metric.click()
    page.keyboard.type("test.accuracy")
    page.keyboard.press("Enter")
    page.keyboard.press("Escape")
    close_assistant(page)
    for name in expected:
        page.get_by_text(name, exact=True).first.wait_for()
    page.get_by_text("training.optimizer.learning_rate").first.wait_for()
    # Parameters, metrics and tags: only the rows that differ between the runs, all in view.
    for switch in page.get_by_role("switch", name="Show diff only").all():
        switch.click()
    page.set_viewport_size({**VIEWPORT, "height": 1800})
    page.get_by_text(f"Comparing {len(expected)} Runs").scroll_into_view_if_needed()
    page.mouse.move(5, 5)
    wait_until_still(page, "svg, .js-plotly-plot")  # the plot's transition
    page.screenshot(path=screenshot)


def test_mlflow_ui_shows_both_runs_and_their_test_accuracy(
    tracked_runs: Path, browser: Any, tmp_path: Path
) -> None:
    project = tracked_runs
    expected = accuracies_on_disk(project)
    client = mlflow.MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(EXPERIMENT).experiment_id
    trained = client.search_runs([experiment], "tags.run_kind = 'train'")
    run_ids = {run.info.run_name: run.info.run_id for run in trained}
    assert set(run_ids) == set(expected)

    port = free_port()
    log_path = tmp_path / "mlflow-ui.log"
    log = log_path.open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", "sqlite:///mlflow.db"]
        + ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        cwd=project,
        env={**ENV, **offline_env(), **UI_ENV},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: stopping it stops its workers
    )
    url = f"http://127.0.0.1:{port}/"
    screenshot = tmp_path / "mlflow-compare.png"
    try:
        wait_until_served(server, lambda: http_get(url + "health"), log_path)
        assert_loopback_only(port)
        session = Session(browser, (url,))
        try:
            session.page.goto(f"{url}#/experiments/{experiment}/runs?workflowType=machine_learning")
            check_runs_table(session.page, run_ids, expected)
            compare_all(session.page, expected, screenshot)
            session.assert_offline()
        finally:
            session.close()
        check_screenshots([screenshot], publish=True)
    finally:
        stop_server(server, port)
        log.close()


def test_kedro_mlflow_ui_serves_the_projects_own_store_from_any_folder(
    project: Path, tmp_path: Path
) -> None:
    """`kedro mlflow ui`, from a subfolder of the project: it hands `mlflow ui` the project's
    database on loopback (a stand-in `mlflow` on the PATH records what it was given)."""
    (tmp_path / "bin").mkdir()
    stand_in = tmp_path / "bin" / "mlflow"
    stand_in.write_text(f'#!/bin/sh\necho "$@" > {tmp_path / "arguments"}\n')
    stand_in.chmod(0o755)
    (project / "notebooks").mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "kedro", "mlflow", "ui", "--env", "test"],
        cwd=project / "notebooks",
        env={**ENV, "PATH": f"{tmp_path / 'bin'}:{ENV['PATH']}"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (tmp_path / "arguments").read_text().split() == [
        "ui",
        "--backend-store-uri",
        f"sqlite:///{project}/mlflow.db",
        "--host",
        "127.0.0.1",
        "--port",
        "5000",
    ]
    assert not (project / "notebooks" / "mlflow.db").exists()
