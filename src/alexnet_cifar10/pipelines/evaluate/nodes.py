"""Nodes of the evaluate pipeline: test-set predictions, metrics and plots.

Every output names the model it came from (``provenance.LABELS``): the predictions and
the training history carry the model's labels on every row, and the metrics and plots
take theirs from those rows. Whichever model version Kedro loads, and whichever nodes
run, a result says which model it describes.
"""

from __future__ import annotations

import logging
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from sklearn import metrics

from alexnet_cifar10.inference import predict_probabilities
from alexnet_cifar10.provenance import TITLE_WIDTH, TrainedModel, caption, labelled, origin

logger = logging.getLogger(__name__)

_EPSILON = 1e-7
_SCORES = ("precision", "recall", "f1")


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
    columns = pd.DataFrame(probabilities, columns=[f"p_{name}" for name in names])
    return pd.concat([labelled(frame, model.labels), columns], axis=1)


def compute_test_metrics(predictions: pd.DataFrame, class_names: list[str]) -> dict[str, Any]:
    """Accuracy, loss, per-class precision/recall/F1 and their macro averages."""
    labels = origin(predictions)
    true = predictions["true_label"].to_numpy()
    predicted = predictions["predicted_label"].to_numpy()
    probabilities = predictions[[f"p_{name}" for name in class_names]].to_numpy()
    loss = -np.mean(np.log(np.clip(probabilities[np.arange(len(true)), true], _EPSILON, 1)))
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
        "loss": float(loss),
        **{
            f"macro_{key}": float(np.mean(score))
            for key, score in zip(_SCORES, scores, strict=True)
        },
        "per_class": per_class,
    }


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
