"""Accuracy and calibration of a trained model on its test images corrupted in the manner
of CIFAR-10-C (``alexnet_cifar10.corruptions``): "CIFAR-10-C-style, regenerated", never the
released data set."""

from __future__ import annotations

import logging
import time
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from alexnet_cifar10 import calibration
from alexnet_cifar10.corruptions import LEFT_OUT, corrupt
from alexnet_cifar10.provenance import TITLE_WIDTH, TrainedModel, caption, labelled, origin
from alexnet_cifar10.validation import ParameterError

logger = logging.getLogger(__name__)

STYLE = "CIFAR-10-C-style, regenerated"


def _first(test: dict[str, np.ndarray], count: int | None) -> tuple[np.ndarray, np.ndarray]:
    return test["images"][:count], test["labels"][:count].argmax(axis=1)


def evaluate_corruptions(  # noqa: PLR0913
    model: TrainedModel,
    test: dict[str, np.ndarray],
    robustness: dict[str, Any],
    batch_size: int,
    calibration_params: dict[str, Any],
    seed: int,
) -> pd.DataFrame:
    """Accuracy and ECE on the first ``robustness.images`` test images, clean and under
    every corruption and severity, with the seconds spent corrupting and predicting."""
    images, labels = _first(test, robustness["images"])
    runs = [("clean", 0)] + [
        (c, s) for c in robustness["corruptions"] for s in robustness["severities"]
    ]
    rows = []
    for done, (name, severity) in enumerate(runs, 1):
        start = time.perf_counter()
        corrupted = corrupt(images, name, severity, seed) if severity else images
        middle = time.perf_counter()
        probabilities = model.network.predict(corrupted, batch_size=batch_size, verbose=0)
        rows.append(
            {
                "corruption": name,
                "severity": severity,
                "images": len(labels),
                "accuracy": float(np.mean(probabilities.argmax(axis=1) == labels)),
                "ece": calibration.expected_calibration_error(
                    probabilities, labels, calibration_params["bins"]
                ),
                "corrupt_seconds": middle - start,
                "predict_seconds": time.perf_counter() - middle,
            }
        )
        logger.info(
            "Robustness %d/%d: %s at severity %d, accuracy %.4f",
            done, len(runs), name, severity, rows[-1]["accuracy"],
        )  # fmt: skip
    return labelled(pd.DataFrame(rows), model.labels)


def summarise_robustness(results: pd.DataFrame) -> dict[str, Any]:
    """Clean accuracy, mean corruption accuracy and their ratio, per corruption and per
    severity, and the images per second of corrupting and of predicting."""
    labels = origin(results)
    clean = results[results["severity"] == 0]
    corrupted = results[results["severity"] > 0]
    clean_accuracy = float(clean["accuracy"].mean())
    mean_accuracy = float(corrupted["accuracy"].mean())
    images = corrupted["images"]
    summary = {
        **labels,
        "data": STYLE,
        "left_out": LEFT_OUT,
        "images_per_corruption": int(clean["images"].iloc[0]),
        "clean_accuracy": clean_accuracy,
        "mean_corruption_accuracy": mean_accuracy,
        "relative_accuracy": mean_accuracy / clean_accuracy if clean_accuracy else None,
        "by_corruption": corrupted.groupby("corruption", sort=False)["accuracy"].mean().to_dict(),
        "by_severity": {
            int(k): v for k, v in corrupted.groupby("severity")["accuracy"].mean().items()
        },
        "corrupt_images_per_second": float(images.sum() / corrupted["corrupt_seconds"].sum()),
        "predict_images_per_second": float(images.sum() / corrupted["predict_seconds"].sum()),
    }
    share = summary["relative_accuracy"]
    logger.info(
        "Mean corruption accuracy %.4f, %s of the clean %.4f (%s)",
        mean_accuracy,
        "n/a" if share is None else f"{share:.1%}",
        clean_accuracy,
        STYLE,
    )
    return summary


def plot_robustness_heatmap(results: pd.DataFrame) -> Figure:
    """Accuracy per corruption (rows) and severity (columns), each cell annotated."""
    corrupted = results[results["severity"] > 0]
    table = corrupted.pivot(index="corruption", columns="severity", values="accuracy")
    table = table.loc[corrupted["corruption"].unique()]
    clean = float(results.loc[results["severity"] == 0, "accuracy"].mean())
    figure, axis = plt.subplots(figsize=(6.5, 0.42 * len(table) + 1.8))
    image = axis.imshow(
        table.to_numpy(), cmap="viridis", vmin=0, vmax=max(clean, 1e-6), aspect="auto"
    )
    figure.colorbar(image, ax=axis, fraction=0.05, label="accuracy")
    axis.set_xticks(range(table.shape[1]), [str(s) for s in table.columns])
    axis.set_yticks(range(len(table)), [name.replace("_", " ") for name in table.index])
    axis.set_xlabel("severity")
    for (row, col), value in np.ndenumerate(table.to_numpy()):
        colour = "black" if value > 0.6 * clean else "white"
        axis.text(col, row, f"{value:.2f}", ha="center", va="center", fontsize=8, color=colour)
    named = caption(origin(results), TITLE_WIDTH)
    axis.set_title(
        f"Test accuracy under corruption ({STYLE}); clean {clean:.4f}\n{named}", fontsize=9
    )
    figure.tight_layout()
    return figure


def plot_corruption_grid(
    test: dict[str, np.ndarray], robustness: dict[str, Any], seed: int, run_label: str
) -> Figure:
    """One test image, clean and under every corruption at severities 3 and 5."""
    index = robustness["grid_image"]
    if index >= len(test["images"]):
        raise ParameterError(
            f"Parameter 'robustness.grid_image' must be below the {len(test['images'])} "
            f"test images; got {index}."
        )
    image = test["images"][index : index + 1]
    names = robustness["corruptions"]
    figure, axes = plt.subplots(2, len(names) + 1, figsize=(1.1 * (len(names) + 1), 3.3))
    for axis in axes.flat:
        axis.set_xticks([])
        axis.set_yticks([])
        axis.set_frame_on(False)
    axes[0, 0].imshow(image[0], interpolation="nearest")
    axes[0, 0].set_title("clean", fontsize=8)
    for col, name in enumerate(names, 1):
        axes[0, col].set_title(name.replace("_", "\n"), fontsize=7)
        for row, severity in enumerate((3, 5)):
            axes[row, col].imshow(corrupt(image, name, severity, seed)[0], interpolation="nearest")
    axes[0, 1].set_ylabel("severity 3", fontsize=8)
    axes[1, 1].set_ylabel("severity 5", fontsize=8)
    figure.suptitle(
        f"Test image {index} under every corruption ({STYLE})\n{run_label}", fontsize=10
    )
    figure.tight_layout()
    return figure
