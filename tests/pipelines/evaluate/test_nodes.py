"""Unit tests of the evaluate nodes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alexnet_cifar10.pipelines.evaluate.nodes import (
    compute_test_metrics,
    model_caption,
    plot_accuracy,
    plot_confusion_matrix,
    plot_loss,
    predict_test_set,
)

CLASSES = ["a", "b", "c"]
TRAINING_RUN = {
    "run_label": "SMOKE RUN",
    "kedro_env": "quick",
    "model_version": "2026-01-02T03.04.05.678Z",
    "fit_seconds": 1.0,
}


def _predictions(true: list[int], predicted: list[int]) -> pd.DataFrame:
    probabilities = np.full((len(true), 3), 0.1)
    probabilities[np.arange(len(true)), predicted] = 0.8
    frame = pd.DataFrame({"true_label": true, "predicted_label": predicted})
    for index, name in enumerate(CLASSES):
        frame[f"p_{name}"] = probabilities[:, index]
    return frame


def test_metrics_match_a_hand_count() -> None:
    metrics = compute_test_metrics(
        _predictions([0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 2, 0]), CLASSES, TRAINING_RUN
    )
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    assert metrics["per_class"]["a"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert metrics["per_class"]["b"]["precision"] == pytest.approx(2 / 3)
    assert metrics["per_class"]["b"]["recall"] == 1.0
    assert metrics["per_class"]["c"] == {
        "precision": 1.0,
        "recall": 0.5,
        "f1": pytest.approx(2 / 3),
        "support": 2,
    }
    assert metrics["macro_recall"] == pytest.approx((0.5 + 1 + 0.5) / 3)
    # Right answers have p=0.8, wrong ones p=0.1 on the true class.
    assert metrics["loss"] == pytest.approx(-(4 * np.log(0.8) + 2 * np.log(0.1)) / 6)
    assert metrics["run_label"] == "SMOKE RUN"
    assert metrics["kedro_env"] == "quick"
    assert metrics["model_version"] == TRAINING_RUN["model_version"]


def test_a_model_without_recorded_origin_is_said_so() -> None:
    metrics = compute_test_metrics(_predictions([0], [0]), CLASSES, {"fit_seconds": 1.0})
    assert metrics["run_label"] == metrics["model_version"] == "not recorded"
    assert model_caption(TRAINING_RUN) == ("SMOKE RUN · model 2026-01-02T03.04.05.678Z (env quick)")


class _FixedModel:
    def predict(self, images: np.ndarray, batch_size: int, verbose: int) -> np.ndarray:
        return np.tile([0.2, 0.5, 0.3], (len(images), 1))


def test_predictions_table_has_classes_and_probabilities() -> None:
    test = {
        "images": np.zeros((4, 32, 32, 3), np.uint8),
        "labels": np.eye(3)[[0, 1, 2, 1]],
        "index": np.array([7, 70, 700, 7000]),
    }
    frame = predict_test_set(_FixedModel(), test, CLASSES, 2, TRAINING_RUN)
    assert frame["test_batch_index"].tolist() == [7, 70, 700, 7000]
    assert set(frame["model_version"]) == {TRAINING_RUN["model_version"]}
    assert set(frame["run_label"]) == {"SMOKE RUN"}
    assert frame["true_class"].tolist() == ["a", "b", "c", "b"]
    assert frame["predicted_class"].tolist() == ["b"] * 4
    assert frame["confidence"].tolist() == [0.5] * 4
    assert list(frame.columns[-3:]) == ["p_a", "p_b", "p_c"]


def test_plots_show_what_they_claim() -> None:
    history = pd.DataFrame(
        {
            "epoch": [1, 2],
            "accuracy": [0.3, 0.5],
            "val_accuracy": [0.2, 0.4],
            "loss": [2.0, 1.5],
            "val_loss": [2.2, 1.8],
        }
    )
    axis = plot_accuracy(history, TRAINING_RUN).get_axes()[0]
    assert [line.get_label() for line in axis.get_lines()] == [
        "training accuracy",
        "validation accuracy",
    ]
    assert axis.get_lines()[1].get_ydata().tolist() == [0.2, 0.4]
    assert model_caption(TRAINING_RUN) in axis.get_title()
    loss_axis = plot_loss(history, TRAINING_RUN).get_axes()[0]
    assert loss_axis.get_ylabel() == "loss"
    assert loss_axis.get_lines()[0].get_ydata().tolist() == [2.0, 1.5]
    assert loss_axis.get_lines()[1].get_ydata().tolist() == [2.2, 1.8]
    matrix = plot_confusion_matrix(_predictions([0, 1, 1], [0, 1, 0]), CLASSES, TRAINING_RUN)
    texts = [t.get_text() for t in matrix.get_axes()[0].texts]
    assert texts == ["1", "0", "0", "1", "1", "0", "0", "0", "0"]
    assert [t.get_text() for t in matrix.get_axes()[0].get_xticklabels()] == CLASSES
    assert "SMOKE RUN" in matrix.get_axes()[0].get_title()
