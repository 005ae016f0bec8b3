"""Promotion as a user meets it: `kedro run` gives its model the alias only when every gate
passes, a run that fails one leaves the alias where it was, and `--pipelines promote`
checks the newest model again."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest
from kedro_cli import kedro, saved, versions

pytestmark = pytest.mark.slow

ALIAS = "champion-test"  # conf/test/parameters.yml


def _registry(project: Path) -> dict[str, list[str]]:
    """Each registered version's model_version tag, with its aliases."""
    client = mlflow.MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    aliases = client.get_registered_model("alexnet_cifar10").aliases
    return {
        v.tags["model_version"]: sorted(a for a, held in aliases.items() if held == v.version)
        for v in client.search_model_versions("name = 'alexnet_cifar10'")
    }


def _report(project: Path, version: str) -> dict:
    return json.loads(saved(project, "08_reporting", "promotion_report.json", version).read_text())


def test_the_alias_moves_only_to_a_model_that_passes_every_gate(finished_project: Path) -> None:
    project = finished_project
    [first] = versions(project, "06_models", "alexnet.keras")
    assert _registry(project) == {first: [ALIAS]}, "the test env's alias, never `champion`"
    [passed] = versions(project, "08_reporting", "promotion_report.json")
    assert _report(project, passed)["promoted"]

    # ONNX Runtime and Keras differ by ~1e-8 here: a tolerance below that fails the gate.
    failing = kedro(project, "run", "--env", "test", "--params", "export.parity_tolerance=1e-12")
    assert failing.returncode == 0, failing.stderr[-3000:]
    second = versions(project, "06_models", "alexnet.keras")[-1]
    report = _report(project, versions(project, "08_reporting", "promotion_report.json")[-1])
    assert report["model_version"] == second and not report["promoted"]
    assert [g["gate"] for g in report["gates"] if not g["passed"]] == ["onnx_parity"]
    assert f"Model {second} not promoted to @{ALIAS}: onnx_parity (50 of 50" in failing.log
    assert _registry(project) == {first: [ALIAS], second: []}

    again = kedro(project, "run", "--env", "test", "--pipelines", "promote")
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"Promoted model {second} (version 2) to @{ALIAS}" in again.log
    assert _registry(project) == {first: [], second: [ALIAS]}
