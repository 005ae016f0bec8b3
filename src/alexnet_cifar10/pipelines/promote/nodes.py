"""Nodes of the promote pipeline: the quality gates that decide which registered version
of the served model carries the alias ``kedro serve`` serves (``promote.alias``).

A model is promoted only if every gate passes: it is registered (a tracked run), its test
accuracy is not below the current holder's by more than ``promote.accuracy_tolerance``,
its ECE after temperature scaling is at most ``promote.max_ece``, and ONNX Runtime gives
Keras' answers (the export parity report). Each gate says what it compared and why it
passed or failed; the report is saved whether or not the model was promoted.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from alexnet_cifar10.provenance import LABELS, origin

logger = logging.getLogger(__name__)


def _gate(name: str, passed: bool, reason: str) -> dict[str, Any]:
    return {"gate": name, "passed": bool(passed), "reason": reason}


def _accuracy_gate(accuracy: float, holder: dict[str, str] | None, tolerance: float) -> dict:
    if holder is None:
        return _gate("accuracy", True, f"test accuracy {accuracy:.4f}; no model holds the alias")
    best = float(holder["test_accuracy"])
    return _gate(
        "accuracy",
        accuracy >= best - tolerance,
        f"test accuracy {accuracy:.4f} against {best:.4f} of version {holder['version']} "
        f"(at most {tolerance} below it: promote.accuracy_tolerance)",
    )


def _gates(  # noqa: PLR0913
    metrics: dict,
    calibration: dict,
    parity: dict,
    candidate: dict | None,
    holder: dict | None,
    promote: dict[str, Any],
) -> list[dict[str, Any]]:
    ece = calibration["after"]["ece"]
    return [
        _gate(
            "registered",
            candidate is not None,
            f"registered as version {candidate['version']}"
            if candidate
            else "not registered: the run that trained it was not tracked",
        ),
        _accuracy_gate(metrics["accuracy"], holder, promote["accuracy_tolerance"]),
        _gate(
            "calibration",
            ece <= promote["max_ece"],
            f"ECE after temperature scaling {ece:.4f} (at most {promote['max_ece']}: "
            "promote.max_ece)",
        ),
        _gate(
            "onnx_parity",
            parity["within_tolerance"],
            f"{parity['identical_top1']} of {parity['images']} test images with Keras' top-1, "
            f"largest probability difference {parity['max_abs_probability_difference']:.1e} "
            f"(tolerance {parity['tolerance']})",
        ),
    ]


def check_gates(
    test_metrics: dict[str, Any],
    calibration_metrics: dict[str, Any],
    export_parity: dict[str, Any],
    registered: list[dict[str, Any]],
    promote: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The promotion report of the evaluated model (each gate, passed or not and why),
    twice: as the versioned report and as what sets the registry's alias."""
    reports = [test_metrics, calibration_metrics, export_parity]
    labels = origin(pd.DataFrame([{key: r[key] for key in LABELS} for r in reports]))
    mine = [v for v in registered if v.get("model_version") == labels["model_version"]]
    candidate = mine[0] if mine else None
    holder = next((v for v in registered if promote["alias"] in v["aliases"]), None)
    gates = _gates(test_metrics, calibration_metrics, export_parity, candidate, holder, promote)
    report = {
        **labels,
        "alias": promote["alias"],
        "registered_version": candidate["version"] if candidate else None,
        "holder_before": holder["version"] if holder else None,
        "gates": gates,
        "promoted": all(gate["passed"] for gate in gates),
        "figures": {
            "test_accuracy": test_metrics["accuracy"],
            "ece_after_scaling": calibration_metrics["after"]["ece"],
        },
    }
    _log(report)
    return report, report


def _log(report: dict[str, Any]) -> None:
    failed = [
        f"{gate['gate']} ({gate['reason']})" for gate in report["gates"] if not gate["passed"]
    ]
    if report["promoted"]:
        logger.info(
            "Promoted model %s (version %s) to @%s: every gate passed.",
            report["model_version"],
            report["registered_version"],
            report["alias"],
        )
    else:
        logger.warning(
            "Model %s not promoted to @%s: %s failed.",
            report["model_version"],
            report["alias"],
            "; ".join(failed),
        )
