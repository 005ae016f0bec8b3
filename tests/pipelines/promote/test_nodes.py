"""Unit tests of the promotion gates: each verdict and its reason, the alias holder, provenance."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from alexnet_cifar10.pipelines.promote.nodes import check_gates
from alexnet_cifar10.provenance import MixedModelsError

LABELS = {"model_version": "2026-01-02T03.04.05.678Z", "run_label": "unit", "kedro_env": "test"}
PROMOTE = {"alias": "champion", "accuracy_tolerance": 0.005, "max_ece": 0.05}


def _reports(accuracy: float = 0.74, ece: float = 0.02, parity: bool = True) -> list[dict]:
    metrics = {**LABELS, "accuracy": accuracy}
    calibration = {**LABELS, "after": {"ece": ece}}
    export_parity = {
        **LABELS,
        "within_tolerance": parity,
        "identical_top1": 10 if parity else 9,
        "images": 10,
        "max_abs_probability_difference": 1e-7 if parity else 0.3,
        "tolerance": 1e-4,
    }
    return [metrics, calibration, export_parity]


def _registered(holder_accuracy: float | None = None) -> list[dict[str, Any]]:
    """Version 2 is the evaluated model's; version 1, if given an accuracy, holds the alias."""
    mine = {**LABELS, "version": "2", "aliases": []}
    older = {"model_version": "older", "version": "1", "aliases": []}
    if holder_accuracy is not None:
        older |= {"aliases": ["champion"], "test_accuracy": str(holder_accuracy)}
    return [mine, older]


def _verdicts(report: dict) -> dict[str, bool]:
    return {gate["gate"]: gate["passed"] for gate in report["gates"]}


def test_a_model_that_passes_every_gate_is_promoted_to_its_registered_version() -> None:
    report, champion = check_gates(*_reports(), _registered(0.736), PROMOTE)
    assert champion is report
    assert report["promoted"] and report["registered_version"] == "2"
    assert report["holder_before"] == "1" and report["alias"] == "champion"
    assert report["figures"] == {"test_accuracy": 0.74, "ece_after_scaling": 0.02}
    assert {key: report[key] for key in LABELS} == LABELS


def test_the_first_model_passes_the_accuracy_gate() -> None:
    report, _ = check_gates(*_reports(), _registered(), PROMOTE)
    accuracy = next(gate for gate in report["gates"] if gate["gate"] == "accuracy")
    assert accuracy["passed"] and "no model holds the alias" in accuracy["reason"]


@pytest.mark.parametrize(
    ("reports", "holder", "failed", "reason"),
    [
        (_reports(accuracy=0.730), 0.736, "accuracy", "0.7300 against 0.7360 of version 1"),
        (_reports(ece=0.08), None, "calibration", "ECE after temperature scaling 0.0800"),
        (_reports(parity=False), None, "onnx_parity", "9 of 10 test images"),
    ],
)
def test_each_failed_gate_stops_the_promotion_and_says_why(
    reports: list[dict], holder: float | None, failed: str, reason: str
) -> None:
    report, _ = check_gates(*reports, _registered(holder), PROMOTE)
    assert not report["promoted"]
    assert [name for name, passed in _verdicts(report).items() if not passed] == [failed]
    assert reason in next(g["reason"] for g in report["gates"] if g["gate"] == failed)


def test_within_the_tolerance_below_the_holder_still_passes() -> None:
    report, _ = check_gates(*_reports(accuracy=0.732), _registered(0.736), PROMOTE)
    assert _verdicts(report)["accuracy"]


def test_an_unregistered_model_is_not_promoted(caplog: pytest.LogCaptureFixture) -> None:
    others = [v for v in _registered() if v["version"] == "1"]
    with caplog.at_level(logging.WARNING):
        report, _ = check_gates(*_reports(), others, PROMOTE)
    assert not report["promoted"] and report["registered_version"] is None
    assert "registered (not registered: the run that trained it was not tracked)" in caplog.text


def test_reports_of_two_models_are_refused() -> None:
    metrics, calibration, parity = _reports()
    with pytest.raises(MixedModelsError):
        check_gates(metrics, {**calibration, "model_version": "other"}, parity, [], PROMOTE)
