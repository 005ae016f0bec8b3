"""Nodes of the features pipeline: the trained network as a feature extractor.

An image's embedding is the output of the last hidden layer before the classifier,
Dropout skipped (it is the identity at inference): in the recipe, the 1024 ReLU outputs
of ``fc2``, which is what the softmax layer ``probabilities`` reads. Their transfer
value is measured with a linear probe (scikit-learn's ``LogisticRegression`` on
standardised embeddings: the standard linear-evaluation protocol, in a well-kept library)
and shown as a 2-D projection of the test embeddings by scikit-learn's ``PCA``: linear and
deterministic, its axes are the two directions of most variance and say how much of it
they hold. t-SNE would draw clusters more sharply, but its distances between clusters
mean nothing, and it optimises over every point's neighbours where PCA is one linear
decomposition.
"""

from __future__ import annotations

import logging
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from alexnet_cifar10.keras_types import KerasModel
from alexnet_cifar10.provenance import LABELS, TITLE_WIDTH, TrainedModel, caption, origin

logger = logging.getLogger(__name__)

CLASSIFIER = "probabilities"
ID_COLUMNS = ["split", "index", "label", "class", "predicted_label", *LABELS]
SPLITS = ("train", "validation", "test")


def embedding_layer(model: KerasModel) -> Any:
    """The layer whose output the classifier reads at inference (Dropout skipped)."""
    import keras

    position = [layer.name for layer in model.layers].index(CLASSIFIER) - 1
    while isinstance(model.layers[position], keras.layers.Dropout):
        position -= 1
    return model.layers[position]


def _embed_split(
    extractor: KerasModel,
    name: str,
    split: dict[str, np.ndarray],
    columns: list[str],
    batch_size: int,
) -> pd.DataFrame:
    logger.info("Embedding the %s split: %d images", name, len(split["images"]))
    features, probabilities = extractor.predict(split["images"], batch_size=batch_size, verbose=0)
    labels = split["labels"].argmax(axis=1)
    ids = pd.DataFrame({"split": name, "index": split["index"], "label": labels})
    ids["predicted_label"] = probabilities.argmax(axis=1)
    return pd.concat([ids, pd.DataFrame(features, columns=columns)], axis=1)


def extract_embeddings(
    model: TrainedModel,
    train: dict[str, np.ndarray],
    validation: dict[str, np.ndarray],
    test: dict[str, np.ndarray],
    batch_size: int,
) -> pd.DataFrame:
    """Embedding, label and the network's own prediction of every image of the splits."""
    import keras

    layer = embedding_layer(model.network)
    extractor = keras.Model(model.network.inputs, [layer.output, model.network.outputs[0]])
    columns = [f"{layer.name}_{i:04d}" for i in range(layer.output.shape[-1])]
    frame = pd.concat(
        [
            _embed_split(extractor, name, split, columns, batch_size)
            for name, split in zip(SPLITS, (train, validation, test), strict=True)
        ],
        ignore_index=True,
    )
    frame.insert(3, "class", np.asarray(model.card["class_names"])[frame["label"]])
    for position, key in enumerate(LABELS, start=5):
        frame.insert(position, key, model.labels[key])
    logger.info("Embedded %d images: %d features of layer %s", len(frame), len(columns), layer.name)
    return frame


def feature_columns(embeddings: pd.DataFrame) -> list[str]:
    """The embedding's columns, in order."""
    return [column for column in embeddings.columns if column not in ID_COLUMNS]


def _probe(C: float, max_iter: int, seed: int) -> Any:  # noqa: N803 - scikit-learn's name
    return make_pipeline(
        StandardScaler(),
        LogisticRegression(C=C, max_iter=max_iter, random_state=seed),
    )


def _by_split(embeddings: pd.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Embeddings and labels of each split."""
    columns = feature_columns(embeddings)
    return {
        name: (rows[columns].to_numpy(), rows["label"].to_numpy())
        for name, rows in ((name, embeddings[embeddings["split"] == name]) for name in SPLITS)
    }


def fit_linear_probe(embeddings: pd.DataFrame, probe: dict[str, Any], seed: int) -> dict[str, Any]:
    """Fit a linear classifier on the train embeddings for each C, keep the best on
    validation, score it on test next to the network's own test accuracy."""
    data = _by_split(embeddings)
    fitted = {C: _probe(C, probe["max_iter"], seed).fit(*data["train"]) for C in probe["C"]}
    on_validation = {C: float(model.score(*data["validation"])) for C, model in fitted.items()}
    best = max(on_validation, key=on_validation.get)
    if len(on_validation) > 1 and best in (min(on_validation), max(on_validation)):
        logger.warning("The best C (%g) is at an end of features.probe.C: widen the list", best)
    test = embeddings[embeddings["split"] == "test"]
    network = float(np.mean(test["predicted_label"] == test["label"]))
    metrics = {
        "test_accuracy": float(fitted[best].score(*data["test"])),
        "network_test_accuracy": network,
        "train_accuracy": float(fitted[best].score(*data["train"])),
        "C": best,
        "validation_accuracy_by_C": {str(C): value for C, value in on_validation.items()},
        "converged": bool(fitted[best][-1].n_iter_.max() < probe["max_iter"]),
    }
    logger.info(
        "Linear probe test accuracy %.4f (C=%g); the network's own %.4f",
        metrics["test_accuracy"],
        best,
        network,
    )
    return {**origin(embeddings), **_embedding_facts(embeddings), **metrics}


def _embedding_facts(embeddings: pd.DataFrame) -> dict[str, Any]:
    columns = feature_columns(embeddings)
    return {
        "embedding_layer": columns[0].rsplit("_", 1)[0],
        "embedding_size": len(columns),
        "images": {name: int((embeddings["split"] == name).sum()) for name in SPLITS},
        "probe": "StandardScaler + LogisticRegression (multinomial, lbfgs), scikit-learn",
    }


def _project(points: np.ndarray, seed: int) -> tuple[np.ndarray, list[str]]:
    """2-D PCA coordinates of ``points`` and the axis labels."""
    pca = PCA(n_components=2, random_state=seed)
    coordinates = pca.fit_transform(points)
    shares = pca.explained_variance_ratio_
    return coordinates, [
        f"PC{i + 1} ({share:.1%} of the variance)" for i, share in enumerate(shares)
    ]


def plot_embedding_projection(
    embeddings: pd.DataFrame,
    class_names: list[str],
    projection: dict[str, Any],
    seed: int,
) -> Figure:
    """The test embeddings in 2-D, one colour per class."""
    test = embeddings[embeddings["split"] == "test"]
    if len(test) > projection["max_points"]:
        test = test.sample(projection["max_points"], random_state=seed)
    columns = feature_columns(embeddings)
    coordinates, labels = _project(test[columns].to_numpy(), seed)
    figure, axis = plt.subplots(figsize=(8, 7))
    for label, name in enumerate(class_names):
        chosen = test["label"].to_numpy() == label
        axis.scatter(*coordinates[chosen].T, s=5, alpha=0.6, color=f"C{label}", label=name)
    axis.set_xlabel(labels[0])
    axis.set_ylabel(labels[1])
    axis.legend(markerscale=3, fontsize=8, loc="best")
    axis.set_title(
        f"{len(test)} test images: {len(columns)}-D embeddings ({columns[0].rsplit('_', 1)[0]}) "
        f"by PCA\n{caption(origin(embeddings), TITLE_WIDTH)}",
        fontsize=10,
    )
    figure.tight_layout()
    return figure
