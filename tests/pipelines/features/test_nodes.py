"""Unit tests of the features nodes, on a tiny network and a few images."""

from __future__ import annotations

import numpy as np
import pandas as pd
from synthetic_cifar import CLASS_NAMES, make_split

from alexnet_cifar10.pipelines.features.nodes import (
    embedding_layer,
    extract_embeddings,
    feature_columns,
    fit_linear_probe,
    plot_embedding_projection,
)

TRAINING_RUN = {"run_label": "unit", "kedro_env": "test", "model_version": "v7"}
PROBE = {"C": [0.1, 1.0], "max_iter": 200}


def test_the_embedding_is_fc2_the_layer_the_classifier_reads(model) -> None:
    assert embedding_layer(model).name == "fc2"


def test_embeddings_are_fc2_outputs_one_row_per_image(model) -> None:
    import keras  # noqa: PLC0415

    splits = make_split(12), make_split(5, 1), make_split(7, 2)
    frame = extract_embeddings(model, *splits, CLASS_NAMES, 4, TRAINING_RUN)
    assert frame["split"].value_counts().to_dict() == {"train": 12, "test": 7, "validation": 5}
    assert list(frame.columns[:6]) == [
        "split", "index", "label", "class", "predicted_label", "model_version",
    ]  # fmt: skip
    assert feature_columns(frame) == [f"fc2_{i:04d}" for i in range(6)]
    test = frame[frame["split"] == "test"]
    fc2 = keras.Model(model.inputs, model.get_layer("fc2").output)
    np.testing.assert_allclose(
        test[feature_columns(frame)].to_numpy(), fc2.predict(splits[2]["images"], verbose=0),
        rtol=1e-6, atol=1e-6,
    )  # fmt: skip
    assert test["index"].tolist() == splits[2]["index"].tolist()
    assert test["label"].tolist() == splits[2]["labels"].argmax(axis=1).tolist()
    own = model.predict(splits[2]["images"], verbose=0).argmax(axis=1)
    assert test["predicted_label"].tolist() == own.tolist()
    assert set(frame["model_version"]) == {"v7"}
    assert test["class"].tolist() == [CLASS_NAMES[i] for i in test["label"]]


def _embeddings(separable: bool, seed: int = 0) -> pd.DataFrame:
    """Three splits of 8-D embeddings; with ``separable``, each class has its own mean."""
    rng = np.random.default_rng(seed)
    parts = []
    for split, count in (("train", 200), ("validation", 100), ("test", 100)):
        labels = rng.integers(0, 3, count)
        centres = np.eye(3, 8)[labels] * (6.0 if separable else 0.0)
        features = centres + rng.normal(size=(count, 8))
        frame = pd.DataFrame({"split": split, "index": np.arange(count), "label": labels})
        frame["class"], frame["predicted_label"], frame["model_version"] = "x", labels, "v7"
        parts.append(pd.concat([frame, pd.DataFrame(features).add_prefix("fc2_")], axis=1))
    return pd.concat(parts, ignore_index=True)


def test_the_probe_learns_what_is_linearly_there_and_nothing_else() -> None:
    separable = fit_linear_probe(_embeddings(True), PROBE, 0, TRAINING_RUN)
    assert separable["test_accuracy"] > 0.95
    assert separable["network_test_accuracy"] == 1.0  # predicted_label = label above
    assert separable["C"] in PROBE["C"] and separable["converged"]
    assert set(separable["validation_accuracy_by_C"]) == {"0.1", "1.0"}
    assert (separable["embedding_layer"], separable["embedding_size"]) == ("fc2", 8)
    assert separable["images"] == {"train": 200, "validation": 100, "test": 100}
    assert separable["model_version"] == "v7"
    noise = fit_linear_probe(_embeddings(False), PROBE, 0, TRAINING_RUN)
    assert noise["test_accuracy"] < 0.5, "three classes: about 1/3 by chance"


def test_the_projection_shows_each_class_of_the_test_split() -> None:
    figure = plot_embedding_projection(
        _embeddings(True), ["a", "b", "c"], {"max_points": 30}, 0, TRAINING_RUN
    )
    axis = figure.get_axes()[0]
    assert [text.get_text() for text in axis.get_legend().get_texts()] == ["a", "b", "c"]
    assert sum(len(points.get_offsets()) for points in axis.collections) == 30
    assert "30 test images" in axis.get_title() and "v7" in axis.get_title()
    assert axis.get_xlabel().startswith("PC1 (") and "of the variance" in axis.get_xlabel()
    # Three classes with their own means: PCA's first two axes hold most of the variance.
    shares = [
        float(label.split("(")[1].split("%")[0]) for label in (axis.get_xlabel(), axis.get_ylabel())
    ]
    assert sum(shares) > 50
