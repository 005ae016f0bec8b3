"""Whether a classifier's confidence can be taken at its word: expected calibration error,
the proper scores (negative log-likelihood, Brier) and temperature scaling (Guo et al.,
"On Calibration of Modern Neural Networks", 2017).

All functions take class probabilities (rows sum to 1) and integer labels.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# Probabilities are clipped here before a logarithm.
EPSILON = 1e-7
# The temperatures searched, as log(T): from 1/20 to 20.
_LOG_T_BOUNDS = (-np.log(20.0), np.log(20.0))


def reliability(probabilities: np.ndarray, labels: np.ndarray, bins: int) -> pd.DataFrame:
    """Per equal-width confidence bin (lower, upper]: images, mean confidence, accuracy."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.digitize(confidence, edges[1:-1], right=True)
    frame = pd.DataFrame({"bin": index, "confidence": confidence, "correct": correct})
    grouped = frame.groupby("bin").agg(
        images=("correct", "size"), confidence=("confidence", "mean"), accuracy=("correct", "mean")
    )
    table = grouped.reindex(range(bins)).fillna({"images": 0}).astype({"images": int})
    table.insert(0, "lower", edges[:-1])
    table.insert(1, "upper", edges[1:])
    return table.reset_index(drop=True)


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int) -> float:
    """The images-weighted mean gap between accuracy and confidence over the bins."""
    table = reliability(probabilities, labels, bins).dropna()
    gaps = (table["accuracy"] - table["confidence"]).abs()
    return float((gaps * table["images"]).sum() / len(labels))


def negative_log_likelihood(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The mean of -log p(true class)."""
    true = probabilities[np.arange(len(labels)), labels]
    return float(-np.mean(np.log(np.clip(true, EPSILON, 1.0))))


def brier_score(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The mean over images of the squared distance to the one-hot label, summed over
    classes (0 is perfect, 2 the worst)."""
    one_hot = np.eye(probabilities.shape[1])[labels]
    return float(np.mean(np.sum((probabilities - one_hot) ** 2, axis=1)))


def scores(probabilities: np.ndarray, labels: np.ndarray, bins: int) -> dict[str, float]:
    """ECE, NLL and Brier score together."""
    return {
        "ece": expected_calibration_error(probabilities, labels, bins),
        "nll": negative_log_likelihood(probabilities, labels),
        "brier": brier_score(probabilities, labels),
    }


def with_temperature(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """The softmax of the logits divided by ``temperature``. log p differs from the logits
    by one constant per row, which the softmax cancels, so probabilities suffice."""
    logits = np.log(np.clip(probabilities, EPSILON, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    return exp / exp.sum(axis=1, keepdims=True)


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The temperature that minimises the NLL of these predictions."""
    # Imported here: the served model imports this module, and SciPy is not among its
    # requirements.
    from scipy.optimize import minimize_scalar

    found = minimize_scalar(
        lambda log_t: negative_log_likelihood(
            with_temperature(probabilities, float(np.exp(log_t))), labels
        ),
        bounds=_LOG_T_BOUNDS,
        method="bounded",
        options={"xatol": 1e-5},
    )
    return float(np.exp(found.x))
