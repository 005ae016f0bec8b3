"""Nodes of the evaluate pipeline: test-set predictions, metrics and plots.

Every output is labelled by the model it came from (run label, Kedro environment and
version of the training run, read from that model's ``training_run``), not by the
configuration of the command that evaluates it.
"""

from __future__ import annotations

import logging
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from alexnet_cifar10.keras_types import KerasModel

logger = logging.getLogger(__name__)

_EPSILON = 1e-7
NOT_RECORDED = "not recorded"


def provenance(training_run: dict[str, Any]) -> dict[str, str]:
    """Run label, Kedro environment and version of the model a training run saved."""
    return {
        key: training_run.get(key, NOT_RECORDED)
        for key in ("run_label", "kedro_env", "model_version")
    }


def model_caption(training_run: dict[str, Any]) -> str:
    """One line naming the model: its run label, version and environment."""
    origin = provenance(training_run)
    return f"{origin['run_label']} · model {origin['model_version']} (env {origin['kedro_env']})"


def predict_test_set(
    model: KerasModel,
    test: dict[str, np.ndarray],
    class_names: list[str],
    batch_size: int,
    training_run: dict[str, Any],
) -> pd.DataFrame:
    """Class probabilities, predicted and true class of every test image, by its index
    in the official test batch, with the model that predicted them."""
    probabilities = model.predict(test["images"], batch_size=batch_size, verbose=0)
    true = test["labels"].argmax(axis=1)
    predicted = probabilities.argmax(axis=1)
    origin = provenance(training_run)
    frame = pd.DataFrame(
        {
            "test_batch_index": test["index"],
            "true_label": true,
            "true_class": np.asarray(class_names)[true],
            "predicted_label": predicted,
            "predicted_class": np.asarray(class_names)[predicted],
            "confidence": probabilities.max(axis=1),
            "model_version": origin["model_version"],
            "run_label": origin["run_label"],
        }
    )
    columns = pd.DataFrame(probabilities, columns=[f"p_{name}" for name in class_names])
    return pd.concat([frame, columns], axis=1)


def compute_test_metrics(
    predictions: pd.DataFrame, class_names: list[str], training_run: dict[str, Any]
) -> dict[str, Any]:
    """Accuracy, loss, per-class precision/recall/F1 and their macro averages."""
    true = predictions["true_label"].to_numpy()
    predicted = predictions["predicted_label"].to_numpy()
    probabilities = predictions[[f"p_{name}" for name in class_names]].to_numpy()
    loss = -np.mean(np.log(np.clip(probabilities[np.arange(len(true)), true], _EPSILON, 1)))
    per_class = {}
    for label, name in enumerate(class_names):
        hits = int(np.sum((predicted == label) & (true == label)))
        predicted_count, support = int(np.sum(predicted == label)), int(np.sum(true == label))
        precision = hits / predicted_count if predicted_count else 0.0
        recall = hits / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
    accuracy = float(np.mean(predicted == true))
    logger.info(
        "Test accuracy %.4f, loss %.4f on %d images (%s)",
        accuracy,
        loss,
        len(true),
        model_caption(training_run),
    )
    return {
        **provenance(training_run),
        "test_images": len(true),
        "accuracy": accuracy,
        "loss": float(loss),
        "macro_precision": float(np.mean([m["precision"] for m in per_class.values()])),
        "macro_recall": float(np.mean([m["recall"] for m in per_class.values()])),
        "macro_f1": float(np.mean([m["f1"] for m in per_class.values()])),
        "per_class": per_class,
    }


def _curve_plot(history: pd.DataFrame, metric: str, label: str, caption: str) -> Figure:
    figure, axis = plt.subplots(figsize=(7, 4.5))
    axis.plot(history["epoch"], history[metric], marker="o", label=f"training {label}")
    axis.plot(history["epoch"], history[f"val_{metric}"], marker="o", label=f"validation {label}")
    axis.set_xlabel("epoch")
    axis.set_ylabel(label)
    axis.set_title(f"Training and validation {label} per epoch\n{caption}", fontsize=10)
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    return figure


def plot_accuracy(history: pd.DataFrame, training_run: dict[str, Any]) -> Figure:
    """Training and validation accuracy per epoch: the recipe's plot."""
    return _curve_plot(history, "accuracy", "accuracy", model_caption(training_run))


def plot_loss(history: pd.DataFrame, training_run: dict[str, Any]) -> Figure:
    """Training and validation loss per epoch."""
    return _curve_plot(history, "loss", "loss", model_caption(training_run))


def plot_confusion_matrix(
    predictions: pd.DataFrame, class_names: list[str], training_run: dict[str, Any]
) -> Figure:
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
    axis.set_title(
        f"Test confusion matrix, accuracy {accuracy:.4f}\n{model_caption(training_run)}",
        fontsize=10,
    )
    figure.tight_layout()
    return figure
