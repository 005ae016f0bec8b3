"""Unit tests of the evaluate nodes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.colors import to_rgba
from sklearn.metrics import accuracy_score, log_loss, precision_recall_fscore_support

from alexnet_cifar10.pipelines.evaluate.nodes import (
    calibration_report,
    compute_test_metrics,
    extract_training_history,
    fit_temperature,
    plot_accuracy,
    plot_confusion_matrix,
    plot_loss,
    plot_reliability,
    predict_test_set,
    tracked_scores,
)
from alexnet_cifar10.provenance import MixedModelsError, TrainedModel, caption, labelled

NO_TTA = {"horizontal_flip": False, "shift": 0}
CLASSES = ["a", "b", "c"]
BINS = {"bins": 15}
LABELS = {
    "model_version": "2026-01-02T03.04.05.678Z",
    "run_label": "SMOKE RUN",
    "kedro_env": "quick",
}
CAPTION = "SMOKE RUN · model 2026-01-02T03.04.05.678Z (env quick)"


def _predictions(true: list[int], predicted: list[int]) -> pd.DataFrame:
    probabilities = np.full((len(true), 3), 0.1)
    probabilities[np.arange(len(true)), predicted] = 0.8
    frame = pd.DataFrame({"true_label": true, "predicted_label": predicted})
    for index, name in enumerate(CLASSES):
        frame[f"p_{name}"] = probabilities[:, index]
    return labelled(frame, LABELS)


def _history(epochs: int) -> pd.DataFrame:
    history = pd.DataFrame(
        {
            "epoch": [1, 2, 3][:epochs],
            "accuracy": [0.3, 0.5, 0.6][:epochs],
            "val_accuracy": [0.2, 0.4, 0.5][:epochs],
            "loss": [2.0, 1.5, 1.2][:epochs],
            "val_loss": [2.2, 1.8, 1.6][:epochs],
        }
    )
    return labelled(history, LABELS)


def test_metrics_match_a_hand_count() -> None:
    metrics = compute_test_metrics(
        _predictions([0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 2, 0]), CLASSES, BINS
    )
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    # Every image at confidence 0.8, 4 of 6 right: the whole gap is |4/6 - 0.8|.
    assert metrics["ece"] == pytest.approx(0.8 - 4 / 6)
    assert metrics["brier"] == pytest.approx((4 * 0.06 + 2 * 1.46) / 6)
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
    assert {key: metrics[key] for key in LABELS} == LABELS


def test_a_class_never_predicted_and_a_class_never_present_score_zero() -> None:
    """Zero division: 'b' is never predicted (precision 0/0), 'c' is predicted once but has
    no test image (recall 0/0): each such score is 0, and they count in the macro averages."""
    metrics = compute_test_metrics(_predictions([0, 0, 1, 1], [0, 0, 0, 2]), CLASSES, BINS)
    assert metrics["per_class"] == {
        "a": {"precision": pytest.approx(2 / 3), "recall": 1.0, "f1": 0.8, "support": 2},
        "b": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2},
        "c": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0},
    }
    assert metrics["accuracy"] == 0.5 and metrics["test_images"] == 4
    assert metrics["macro_precision"] == pytest.approx(2 / 9)
    assert metrics["macro_recall"] == pytest.approx(1 / 3)
    assert metrics["macro_f1"] == pytest.approx(0.8 / 3)


def _scored(probabilities: np.ndarray, true: np.ndarray) -> pd.DataFrame:
    """A predictions table: each image's class probabilities, true and top class."""
    predicted = probabilities.argmax(axis=1)
    frame = pd.DataFrame({"true_label": true, "predicted_label": predicted})
    for index, name in enumerate(CLASSES):
        frame[f"p_{name}"] = probabilities[:, index]
    return labelled(frame, LABELS)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(min_value=1, max_value=30).flatmap(
        lambda n: st.tuples(
            st.lists(st.integers(0, 2), min_size=n, max_size=n),
            st.lists(st.lists(st.floats(0.0, 1.0), min_size=3, max_size=3), min_size=n, max_size=n),
        )
    )
)
def test_every_metric_agrees_with_scikit_learn(case: tuple[list, list]) -> None:
    true, scores = np.array(case[0]), np.array(case[1]) + 1e-3
    probabilities = scores / scores.sum(axis=1, keepdims=True)
    frame = _scored(probabilities, true)
    predicted = frame["predicted_label"].to_numpy()
    metrics = compute_test_metrics(frame, CLASSES, BINS)
    precision, recall, f1, support = precision_recall_fscore_support(
        true, predicted, labels=[0, 1, 2], zero_division=0.0
    )
    for index, name in enumerate(CLASSES):
        assert metrics["per_class"][name] == {
            "precision": pytest.approx(precision[index]),
            "recall": pytest.approx(recall[index]),
            "f1": pytest.approx(f1[index]),
            "support": support[index],
        }
    assert metrics["macro_precision"] == pytest.approx(precision.mean())
    assert metrics["macro_recall"] == pytest.approx(recall.mean())
    assert metrics["macro_f1"] == pytest.approx(f1.mean())
    assert metrics["accuracy"] == pytest.approx(accuracy_score(true, predicted))
    # Recall weighted by support is accuracy; the loss is the true class's mean -log p.
    assert sum(recall * support) / len(true) == pytest.approx(metrics["accuracy"])
    assert metrics["loss"] == pytest.approx(
        log_loss(true, probabilities, labels=[0, 1, 2]), rel=1e-6
    )
    assert metrics["test_images"] == len(true)


def test_results_of_the_rows_of_two_models_are_refused() -> None:
    """A table that mixes two models' rows (two versions concatenated by hand, say) has
    no one model to name: metrics and plots of it are an error, not a wrong label."""
    mixed = pd.concat(
        [
            _predictions([0], [0]),
            labelled(_predictions([1], [1]), {**LABELS, "model_version": "v2"}),
        ]
    )
    with pytest.raises(
        MixedModelsError, match=r"come from 2 models \(2026-01-02T03.04.05.678Z, v2\)"
    ):
        compute_test_metrics(mixed, CLASSES, BINS)
    with pytest.raises(MixedModelsError):
        plot_confusion_matrix(mixed, CLASSES)
    assert caption(LABELS) == CAPTION


class _FixedModel:
    """Answers each image with its own row of ``answers``; records how it was asked."""

    def __init__(self, answers: list[list[float]]) -> None:
        self.answers, self.calls = np.array(answers), []

    def predict(self, images: np.ndarray, batch_size: int, verbose: int) -> np.ndarray:
        # Keras draws a progress bar unless verbose is 0 or None.
        progress_bar = verbose not in (0, None)
        self.calls.append({"images": len(images), "batch_size": batch_size, "bar": progress_bar})
        return self.answers[: len(images)]


def test_predictions_table_has_classes_and_probabilities() -> None:
    test = {
        "images": np.zeros((4, 32, 32, 3), np.uint8),
        "labels": np.eye(3)[[0, 1, 2, 1]],
        "index": np.array([7, 70, 700, 7000]),
    }
    answers = [[0.2, 0.5, 0.3], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4]]
    model = _FixedModel(answers)
    card = {**LABELS, "class_names": CLASSES}
    frame = predict_test_set(TrainedModel(model, card, pd.DataFrame()), test, 2, NO_TTA)
    # The configured batch size, and no Keras progress bar in the run's log.
    assert model.calls == [{"images": 4, "batch_size": 2, "bar": False}]
    expected = pd.DataFrame(
        {
            "test_batch_index": [7, 70, 700, 7000],
            "true_label": [0, 1, 2, 1],
            "true_class": ["a", "b", "c", "b"],
            "predicted_label": [1, 0, 2, 2],
            "predicted_class": ["b", "a", "c", "c"],
            "confidence": [0.5, 0.6, 0.8, 0.4],
            **LABELS,
            "p_a": [0.2, 0.6, 0.1, 0.3],
            "p_b": [0.5, 0.3, 0.1, 0.3],
            "p_c": [0.3, 0.1, 0.8, 0.4],
        }
    )
    pd.testing.assert_frame_equal(frame, expected, check_dtype=False)


def test_a_true_class_given_probability_zero_costs_a_finite_loss() -> None:
    """Probabilities are clipped at 1e-7 (as Keras does) before the log."""
    frame = pd.DataFrame(
        {"true_label": [0, 1], "predicted_label": [1, 1], "p_a": [0.0, 0.0], "p_b": [1.0, 1.0]}
    )
    metrics = compute_test_metrics(labelled(frame, LABELS), ["a", "b"], BINS)
    assert metrics["loss"] == pytest.approx(-np.log(1e-7) / 2)


def test_the_history_is_the_models_own_with_its_labels() -> None:
    history = _history(2).drop(columns=list(LABELS))
    model = TrainedModel(network=None, card={**LABELS, "class_names": CLASSES}, history=history)
    pd.testing.assert_frame_equal(extract_training_history(model), _history(2))


def test_plots_show_what_they_claim() -> None:
    history = _history(2)
    axis = plot_accuracy(history).get_axes()[0]
    assert [line.get_label() for line in axis.get_lines()] == [
        "training accuracy",
        "validation accuracy",
    ]
    assert axis.get_lines()[1].get_ydata().tolist() == [0.2, 0.4]
    assert CAPTION in axis.get_title()
    loss_axis = plot_loss(history).get_axes()[0]
    assert loss_axis.get_ylabel() == "loss"
    assert loss_axis.get_lines()[0].get_ydata().tolist() == [2.0, 1.5]
    assert loss_axis.get_lines()[1].get_ydata().tolist() == [2.2, 1.8]
    matrix = plot_confusion_matrix(_predictions([0, 1, 1], [0, 1, 0]), CLASSES)
    texts = [t.get_text() for t in matrix.get_axes()[0].texts]
    assert texts == ["1", "0", "0", "1", "1", "0", "0", "0", "0"]
    assert [t.get_text() for t in matrix.get_axes()[0].get_xticklabels()] == CLASSES
    assert "SMOKE RUN" in matrix.get_axes()[0].get_title()


def test_curves_have_their_titles_labels_and_a_point_per_whole_epoch() -> None:
    history = _history(3)
    for plot, label in ((plot_accuracy, "accuracy"), (plot_loss, "loss")):
        figure = plot(history)
        axis = figure.get_axes()[0]
        assert axis.get_title() == f"Training and validation {label} per epoch\n{CAPTION}"
        assert (axis.get_xlabel(), axis.get_ylabel()) == ("epoch", label)
        assert [line.get_label() for line in axis.get_legend().get_lines()] == [
            f"training {label}",
            f"validation {label}",
        ]
        for line in axis.get_lines():
            assert line.get_xdata().tolist() == [1, 2, 3] and line.get_marker() == "o"
        figure.canvas.draw()
        assert all(float(tick).is_integer() for tick in axis.get_xticks()), "no epoch 1.5"


def test_confusion_matrix_cells_are_readable_and_the_title_gives_the_accuracy() -> None:
    """Counts are white on the cells darker than half the largest count, black elsewhere."""
    true = [0] * 4 + [1] * 2 + [2] * 3
    predicted = [0] * 4 + [1, 2] + [2, 2, 1]
    figure = plot_confusion_matrix(_predictions(true, predicted), CLASSES)
    axis = figure.get_axes()[0]
    white, black = to_rgba("white"), to_rgba("black")
    assert [(t.get_text(), to_rgba(t.get_color())) for t in axis.texts] == [
        ("4", white), ("0", black), ("0", black),
        ("0", black), ("1", black), ("1", black),
        ("0", black), ("1", black), ("2", black),
    ]  # fmt: skip
    assert {(t.get_ha(), t.get_va()) for t in axis.texts} == {("center", "center")}
    assert axis.get_images()[0].get_cmap().name == "Blues"
    assert (axis.get_xlabel(), axis.get_ylabel()) == ("predicted class", "true class")
    assert [t.get_text() for t in axis.get_yticklabels()] == CLASSES
    assert {(t.get_rotation(), t.get_ha()) for t in axis.get_xticklabels()} == {(45.0, "right")}
    assert axis.get_title() == f"Test confusion matrix, accuracy 0.7778\n{CAPTION}"
    one = plot_confusion_matrix(_predictions([2], [2]), CLASSES).get_axes()[0]
    assert one.get_title() == f"Test confusion matrix, accuracy 1.0000\n{CAPTION}"


def test_a_long_caption_wraps_inside_the_figure() -> None:
    long_label = "TUNED: bf16, batch 500, crop+flip, AdamW, warm-up + cosine, label smoothing"
    history = _history(2).assign(run_label=long_label)
    figure = plot_accuracy(history)
    title = figure.get_axes()[0].title
    lines = title.get_text().split("\n")
    assert len(lines) == 3 and max(map(len, lines)) <= 80
    assert " ".join(lines[1:]) == caption({**LABELS, "run_label": long_label})
    figure.canvas.draw()
    box = title.get_window_extent()
    assert 0 <= box.x0 and box.x1 <= figure.bbox.width, "the title fits the figure"


def test_test_scores_keep_overall_scores_and_each_class_f1_under_mlflow_names() -> None:
    metrics = {
        "model_version": "v1",
        "accuracy": 0.5,
        "loss": 1.25,
        "ece": 0.1,
        "brier": 0.6,
        "macro_precision": 0.4,
        "macro_recall": 0.5,
        "macro_f1": 0.45,
        "per_class": {"cat": {"f1": 0.2}, "big dog?": {"f1": 0.7}},
    }
    assert tracked_scores(metrics) == {
        "accuracy": {"step": 0, "value": 0.5},
        "loss": {"step": 0, "value": 1.25},
        "ece": {"step": 0, "value": 0.1},
        "brier": {"step": 0, "value": 0.6},
        "macro_precision": {"step": 0, "value": 0.4},
        "macro_recall": {"step": 0, "value": 0.5},
        "macro_f1": {"step": 0, "value": 0.45},
        "f1_cat": {"step": 0, "value": 0.2},
        "f1_big dog_": {"step": 0, "value": 0.7},
    }


def _temperature(**labels: str) -> dict:
    return {**LABELS, **labels, "temperature": 2.0}


def test_the_calibration_report_compares_before_and_after_scaling() -> None:
    predictions = _predictions([0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 2, 0])
    report = calibration_report(predictions, _temperature(), CLASSES, BINS)
    assert {key: report[key] for key in LABELS} == LABELS
    assert report["before"]["ece"] == pytest.approx(0.8 - 4 / 6)
    # Temperature 2 softens 0.8 / 0.1 / 0.1 towards 1/3: below 4/6, so under-confident.
    assert report["after"]["ece"] < report["before"]["ece"]
    assert sum(row["images"] for row in report["reliability_after"]) == 6
    assert len(report["reliability_before"]) == 15
    # Empty bins have no accuracy: null, and the report is strict JSON.
    assert report["reliability_before"][0]["accuracy"] is None
    json.loads(json.dumps(report, allow_nan=False))
    figure = plot_reliability(report)
    assert CAPTION in figure.axes[0].get_title()
    with pytest.raises(MixedModelsError, match="fitted for model other"):
        calibration_report(predictions, _temperature(model_version="other"), CLASSES, BINS)


def test_the_temperature_is_fitted_on_the_validation_split_and_lowers_its_nll() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 60)
    images = rng.integers(0, 256, (60, 32, 32, 3), dtype=np.uint8)
    model = TrainedModel(_OverConfident(labels), {**LABELS, "class_names": CLASSES}, None)
    validation = {"images": images, "labels": np.eye(3)[labels]}
    fitted = fit_temperature(model, validation, 16, NO_TTA)
    assert fitted["temperature"] > 1, "an over-confident model is softened"
    assert fitted["validation_nll"]["after"] < fitted["validation_nll"]["before"]
    assert fitted["validation_images"] == 60
    assert {key: fitted[key] for key in LABELS} == LABELS


class _OverConfident:
    """Stands for a network: right on two thirds of the images, always 99% sure."""

    def __init__(self, labels: np.ndarray) -> None:
        self.answers = np.where(np.arange(len(labels)) % 3 == 0, (labels + 1) % 3, labels)

    def predict(self, images: np.ndarray, batch_size: int, verbose: int = 0) -> np.ndarray:
        chosen = self.answers[: len(images)]
        probabilities = np.full((len(images), 3), 0.005)
        probabilities[np.arange(len(images)), chosen] = 0.99
        return probabilities


@pytest.mark.parametrize("words", range(1, 14))
def test_a_wrapped_caption_never_breaks_the_model_or_its_environment(words: int) -> None:
    """Whatever the run label's length, "model <version>" and "(env <env>)" stay whole."""
    labels = {**LABELS, "run_label": " ".join(["smoke"] * words)}
    lines = caption(labels, 40).splitlines()
    assert " ".join(lines) == caption(labels)
    assert any(f"model {LABELS['model_version']}" in line for line in lines)
    assert any(f"(env {LABELS['kedro_env']})" in line for line in lines)
