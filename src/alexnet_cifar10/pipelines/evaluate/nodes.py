"""Nodes of the evaluate pipeline: test-set predictions, metrics and plots.

Every output names the model it came from (``provenance.LABELS``): the predictions and
the training history carry the model's labels on every row, and the metrics and plots
take theirs from those rows. Whichever model version Kedro loads, and whichever nodes
run, a result says which model it describes.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from sklearn import metrics

from alexnet_cifar10 import calibration
from alexnet_cifar10.inference import predict_probabilities
from alexnet_cifar10.provenance import (
    LABELS,
    TITLE_WIDTH,
    MixedModelsError,
    TrainedModel,
    caption,
    labelled,
    origin,
)

logger = logging.getLogger(__name__)

_SCORES = ("precision", "recall", "f1")
_OVERALL = ("accuracy", "loss", "ece", "brier", *(f"macro_{score}" for score in _SCORES))


def predict_test_set(
    model: TrainedModel,
    test: dict[str, np.ndarray],
    batch_size: int,
    test_time_augmentation: dict[str, Any],
) -> pd.DataFrame:
    """Class probabilities, predicted and true class of every test image, by its index
    in the official test batch, with the model that predicted them."""
    names = np.asarray(model.card["class_names"])
    probabilities = predict_probabilities(
        model.network, test["images"], batch_size, test_time_augmentation
    )
    true = test["labels"].argmax(axis=1)
    predicted = probabilities.argmax(axis=1)
    frame = pd.DataFrame(
        {
            "test_batch_index": test["index"],
            "true_label": true,
            "true_class": names[true],
            "predicted_label": predicted,
            "predicted_class": names[predicted],
            "confidence": probabilities.max(axis=1),
        }
    )
    if "file_name" in test:  # a labelled folder's picture: where it is
        frame.insert(1, "file_name", test["file_name"])
    columns = pd.DataFrame(probabilities, columns=[f"p_{name}" for name in names])
    return pd.concat([labelled(frame, model.labels), columns], axis=1)


def _probabilities(predictions: pd.DataFrame, class_names: list[str]) -> tuple[np.ndarray, ...]:
    probabilities = predictions[[f"p_{name}" for name in class_names]].to_numpy()
    return probabilities, predictions["true_label"].to_numpy()


def compute_test_metrics(
    predictions: pd.DataFrame, class_names: list[str], calibration_params: dict[str, Any]
) -> dict[str, Any]:
    """Accuracy, loss (the NLL), calibration error, Brier score, per-class
    precision/recall/F1 and their macro averages."""
    labels = origin(predictions)
    probabilities, true = _probabilities(predictions, class_names)
    predicted = predictions["predicted_label"].to_numpy()
    loss = calibration.negative_log_likelihood(probabilities, true)
    *scores, support = metrics.precision_recall_fscore_support(
        true, predicted, labels=range(len(class_names)), zero_division=0.0
    )
    per_class = {
        name: {key: float(score[i]) for key, score in zip(_SCORES, scores, strict=True)}
        | {"support": int(support[i])}
        for i, name in enumerate(class_names)
    }
    accuracy = metrics.accuracy_score(true, predicted)
    logger.info(
        "Test accuracy %.4f, loss %.4f on %d images (%s)",
        accuracy,
        loss,
        len(true),
        caption(labels),
    )
    return {
        **labels,
        "test_images": len(true),
        "accuracy": float(accuracy),
        "loss": loss,
        "ece": calibration.expected_calibration_error(
            probabilities, true, calibration_params["bins"]
        ),
        "brier": calibration.brier_score(probabilities, true),
        **{
            f"macro_{key}": float(np.mean(score))
            for key, score in zip(_SCORES, scores, strict=True)
        },
        "per_class": per_class,
    }


def tracked_scores(metrics: dict[str, Any]) -> dict[str, dict[str, float]]:
    """The test metrics as tracked metrics: the overall scores and each class's F1."""
    scores = {key: metrics[key] for key in _OVERALL} | {
        f"f1_{name}": scores["f1"] for name, scores in metrics["per_class"].items()
    }
    # MLflow's metric names take letters, digits, spaces and _ - . /
    return {
        re.sub(r"[^\w\-./ ]", "_", key): {"step": 0, "value": float(value)}
        for key, value in scores.items()
    }


def fit_temperature(
    model: TrainedModel,
    validation: dict[str, np.ndarray],
    batch_size: int,
    test_time_augmentation: dict[str, Any],
) -> dict[str, Any]:
    """The temperature that minimises the model's NLL on the validation split (never the
    test set), with that NLL before and after."""
    probabilities = predict_probabilities(
        model.network, validation["images"], batch_size, test_time_augmentation
    )
    true = validation["labels"].argmax(axis=1)
    temperature = calibration.fit_temperature(probabilities, true)
    scaled = calibration.with_temperature(probabilities, temperature)
    before, after = (calibration.negative_log_likelihood(p, true) for p in (probabilities, scaled))
    logger.info(
        "Temperature %.3f fitted on %d validation images: NLL %.4f -> %.4f",
        temperature,
        len(true),
        before,
        after,
    )
    return {
        **model.labels,
        "temperature": temperature,
        "validation_images": len(true),
        "validation_nll": {"before": before, "after": after},
    }


def _same_model(predictions: pd.DataFrame, temperature: dict[str, Any]) -> dict[str, str]:
    labels = origin(predictions)
    if {key: temperature[key] for key in LABELS} != labels:
        raise MixedModelsError(
            f"The temperature was fitted for model {temperature['model_version']}, the "
            f"predictions come from model {labels['model_version']}; run the evaluate "
            "pipeline on one model."
        )
    return labels


def calibration_report(
    predictions: pd.DataFrame,
    temperature: dict[str, Any],
    class_names: list[str],
    calibration_params: dict[str, Any],
) -> dict[str, Any]:
    """ECE, NLL and Brier score on the test set before and after temperature scaling,
    with the reliability bins of both."""
    labels = _same_model(predictions, temperature)
    probabilities, true = _probabilities(predictions, class_names)
    scaled = calibration.with_temperature(probabilities, temperature["temperature"])
    bins = calibration_params["bins"]
    report = {**labels, "temperature": temperature["temperature"], "bins": bins}
    for when, p in (("before", probabilities), ("after", scaled)):
        report[when] = calibration.scores(p, true, bins)
        table = calibration.reliability(p, true, bins).astype(object)
        # An empty bin has no confidence nor accuracy: null in JSON, not a bare NaN.
        report[f"reliability_{when}"] = table.where(table.notna(), None).to_dict("records")
    logger.info(
        "Test ECE %.4f -> %.4f, NLL %.4f -> %.4f with temperature %.3f",
        report["before"]["ece"],
        report["after"]["ece"],
        report["before"]["nll"],
        report["after"]["nll"],
        temperature["temperature"],
    )
    return report


def plot_reliability(report: dict[str, Any]) -> Figure:
    """Accuracy against confidence per bin before and after temperature scaling, with
    the images in each bin below."""
    figure, (top, bottom) = plt.subplots(
        2, 1, figsize=(7, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    width = 1 / report["bins"]
    top.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfect calibration")
    for when, colour, shift in (("before", "tab:blue", -0.2), ("after", "tab:orange", 0.2)):
        table = pd.DataFrame(report[f"reliability_{when}"])
        centre = (table["lower"] + table["upper"]) / 2 + shift * width
        ece = report[when]["ece"]
        name = f"{when} scaling (ECE {ece:.3f})"
        top.bar(centre, table["accuracy"].fillna(0), width * 0.4, color=colour, label=name)
        bottom.bar(centre, table["images"], width * 0.4, color=colour)
    top.set_ylabel("accuracy")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.legend(loc="upper left", fontsize=9)
    bottom.set_xlabel("confidence (top class probability)")
    bottom.set_ylabel("images")
    named = caption({key: report[key] for key in LABELS}, TITLE_WIDTH)
    top.set_title(
        f"Reliability on the test set, temperature {report['temperature']:.3f}\n{named}",
        fontsize=10,
    )
    figure.tight_layout()
    return figure


def extract_training_history(model: TrainedModel) -> pd.DataFrame:
    """The evaluated model's own training history, one row per epoch, with its labels."""
    return labelled(model.history, model.labels)


def _curve_plot(history: pd.DataFrame, metric: str, label: str, caption: str) -> Figure:
    figure, axis = plt.subplots(figsize=(7, 4.5))
    axis.plot(history["epoch"], history[metric], marker="o", label=f"training {label}")
    axis.plot(history["epoch"], history[f"val_{metric}"], marker="o", label=f"validation {label}")
    axis.set_xlabel("epoch")
    axis.set_ylabel(label)
    axis.set_title(f"Training and validation {label} per epoch\n{caption}", fontsize=10)
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    # Half an epoch either side: a run of one epoch still gets whole-epoch ticks.
    axis.set_xlim(history["epoch"].min() - 0.5, history["epoch"].max() + 0.5)
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    return figure


def plot_accuracy(history: pd.DataFrame) -> Figure:
    """Training and validation accuracy per epoch: the recipe's plot."""
    return _curve_plot(history, "accuracy", "accuracy", caption(origin(history), TITLE_WIDTH))


def plot_loss(history: pd.DataFrame) -> Figure:
    """Training and validation loss per epoch."""
    return _curve_plot(history, "loss", "loss", caption(origin(history), TITLE_WIDTH))


def plot_confusion_matrix(predictions: pd.DataFrame, class_names: list[str]) -> Figure:
    """Test-set confusion matrix with class names, counts in every cell."""
    size = len(class_names)
    matrix = np.zeros((size, size), dtype=int)
    np.add.at(matrix, (predictions["true_label"], predictions["predicted_label"]), 1)
    figure, axis = plt.subplots(figsize=(8, 7))
    image = axis.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axis, fraction=0.046)
    axis.set_xticks(range(size), class_names, rotation=45, ha="right")
    axis.set_yticks(range(size), class_names)
    axis.set_xlabel("predicted class")
    axis.set_ylabel("true class")
    threshold = matrix.max() / 2
    for (row, col), count in np.ndenumerate(matrix):
        axis.text(
            col,
            row,
            str(count),
            ha="center",
            va="center",
            fontsize=8,
            color="white" if count > threshold else "black",
        )
    accuracy = np.trace(matrix) / max(matrix.sum(), 1)
    named = caption(origin(predictions), TITLE_WIDTH)
    axis.set_title(f"Test confusion matrix, accuracy {accuracy:.4f}\n{named}", fontsize=10)
    figure.tight_layout()
    return figure
