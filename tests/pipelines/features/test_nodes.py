"""Unit tests of the features nodes, on a tiny network and a few images."""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from synthetic_cifar import CLASS_NAMES, make_split

from alexnet_cifar10.pipelines.features.nodes import (
    embedding_layer,
    extract_embeddings,
    feature_columns,
    fit_linear_probe,
    plot_embedding_projection,
)
from alexnet_cifar10.provenance import TrainedModel, labelled

LABELS = {"model_version": "v7", "run_label": "unit", "kedro_env": "test"}


def _trained(network: Any) -> TrainedModel:
    return TrainedModel(network, {**LABELS, "class_names": CLASS_NAMES}, pd.DataFrame())


PROBE = {"C": [0.1, 1.0], "max_iter": 200}


def test_the_embedding_is_fc2_the_layer_the_classifier_reads(model: Any) -> None:
    assert embedding_layer(model).name == "fc2"


def test_without_dropout_the_embedding_is_the_layer_before_the_classifier() -> None:
    import keras

    network = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(5, name="first"),
            keras.layers.Dense(3, name="hidden"),
            keras.layers.Dense(2, activation="softmax", name="probabilities"),
        ]
    )
    assert embedding_layer(network).name == "hidden"


def test_embeddings_are_fc2_outputs_one_row_per_image(model: Any) -> None:
    import keras

    splits = make_split(12), make_split(5, 1), make_split(7, 2)
    frame = extract_embeddings(_trained(model), *splits, 4)
    assert frame.index.tolist() == list(range(24)), "one row per image, numbered afresh"
    assert frame["split"].value_counts().to_dict() == {"train": 12, "test": 7, "validation": 5}
    assert list(frame.columns[:6]) == [
        "split", "index", "label", "class", "predicted_label", "model_version",
    ]  # fmt: skip
    assert list(frame.columns[5:8]) == list(LABELS)
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
    assert frame[list(LABELS)].drop_duplicates().to_dict("records") == [LABELS]
    assert test["class"].tolist() == [CLASS_NAMES[i] for i in test["label"]]


def test_the_network_is_asked_in_batches_without_a_progress_bar(
    model: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import keras

    batch_sizes = []
    predict = keras.Model.predict

    def spy(self: Any, images: np.ndarray, **kwargs: Any) -> Any:
        batch_sizes.append(kwargs.get("batch_size"))
        return predict(self, images, **kwargs)

    monkeypatch.setattr(keras.Model, "predict", spy)
    splits = make_split(3), make_split(2, 1), make_split(2, 2)
    extract_embeddings(_trained(model), *splits, 4)
    assert batch_sizes == [4, 4, 4]
    # Keras's progress bar ends with the time per step ("12ms/step").
    assert "/step" not in capsys.readouterr().out


def _embeddings(separable: bool, seed: int = 0) -> pd.DataFrame:
    """Three splits of 8-D embeddings; with ``separable``, each class has its own mean."""
    rng = np.random.default_rng(seed)
    parts = []
    for split, count in (("train", 200), ("validation", 100), ("test", 100)):
        labels = rng.integers(0, 3, count)
        centres = np.eye(3, 8)[labels] * (6.0 if separable else 0.0)
        features = centres + rng.normal(size=(count, 8))
        frame = pd.DataFrame({"split": split, "index": np.arange(count), "label": labels})
        frame["class"], frame["predicted_label"] = "x", labels
        frame = labelled(frame, LABELS)
        parts.append(pd.concat([frame, pd.DataFrame(features).add_prefix("fc2_")], axis=1))
    return pd.concat(parts, ignore_index=True)


def test_the_probe_learns_what_is_linearly_there_and_nothing_else() -> None:
    separable = fit_linear_probe(_embeddings(True), PROBE, 0)
    assert separable["test_accuracy"] > 0.95
    assert separable["network_test_accuracy"] == 1.0  # predicted_label = label above
    assert separable["C"] in PROBE["C"] and separable["converged"]
    assert set(separable["validation_accuracy_by_C"]) == {"0.1", "1.0"}
    assert (separable["embedding_layer"], separable["embedding_size"]) == ("fc2", 8)
    assert separable["images"] == {"train": 200, "validation": 100, "test": 100}
    assert separable["model_version"] == "v7"
    noise = fit_linear_probe(_embeddings(False), PROBE, 0)
    assert noise["test_accuracy"] < 0.5, "three classes: about 1/3 by chance"


def _few_examples_many_features() -> pd.DataFrame:
    """24 training rows of 20 features, one of them (per class) informative: too
    little regularisation overfits them, too much learns nothing. The network is right on
    the first half of the test split only."""
    rng = np.random.default_rng(5)
    parts = []
    for split, count in (("train", 24), ("validation", 60), ("test", 60)):
        labels = rng.integers(0, 3, count)
        values = rng.normal(size=(count, 20))
        values[np.arange(count), labels] += 1.5
        frame = pd.DataFrame({"split": split, "index": np.arange(count), "label": labels})
        right = np.arange(count) < count // 2 if split == "test" else np.zeros(count, bool)
        frame["class"] = "x"
        frame["predicted_label"] = np.where(right, labels, (labels + 1) % 3)
        frame = labelled(frame, LABELS)
        parts.append(pd.concat([frame, pd.DataFrame(values).add_prefix("fc2_")], axis=1))
    return pd.concat(parts, ignore_index=True)


def test_the_probe_keeps_the_c_best_on_validation_and_scores_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    embeddings = _few_examples_many_features()
    probe = {"C": [1e-4, 0.05, 100.0], "max_iter": 500}
    with caplog.at_level(logging.WARNING):
        result = fit_linear_probe(embeddings, probe, 0)
    assert not caplog.records, "the best C is inside the list"
    # The same fits by hand: standardised features, scikit-learn's logistic regression.
    split = {
        name: (rows[feature_columns(embeddings)].to_numpy(), rows["label"].to_numpy())
        for name, rows in embeddings.groupby("split")
    }
    by_hand = {
        C: make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=500)).fit(
            *split["train"]
        )
        for C in probe["C"]
    }
    assert result == {
        "run_label": "unit",
        "kedro_env": "test",
        "model_version": "v7",
        "embedding_layer": "fc2",
        "embedding_size": 20,
        "images": {"train": 24, "validation": 60, "test": 60},
        "probe": "StandardScaler + LogisticRegression (multinomial, lbfgs), scikit-learn",
        "test_accuracy": by_hand[0.05].score(*split["test"]),
        "network_test_accuracy": 0.5,
        "train_accuracy": by_hand[0.05].score(*split["train"]),
        "C": 0.05,
        "validation_accuracy_by_C": {
            str(C): model.score(*split["validation"]) for C, model in by_hand.items()
        },
        "converged": True,
    }


@pytest.mark.parametrize(
    ("grid", "warned"),
    [
        ([0.05, 100.0], ["The best C (0.05) is at an end of features.probe.C: widen the list"]),
        ([1e-4, 0.05], ["The best C (0.05) is at an end of features.probe.C: widen the list"]),
        ([0.05], []),
    ],
)
def test_a_best_c_at_an_end_of_several_asks_for_a_wider_list(
    grid: list[float], warned: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        fit_linear_probe(_few_examples_many_features(), {"C": grid, "max_iter": 500}, 0)
    assert [record.getMessage() for record in caplog.records] == warned


def test_a_probe_stopped_by_max_iter_is_scored_as_stopped_and_says_so() -> None:
    embeddings = _few_examples_many_features()
    train = embeddings[embeddings["split"] == "train"]
    features, labels = train[feature_columns(embeddings)].to_numpy(), train["label"].to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        result = fit_linear_probe(embeddings, {"C": [100.0], "max_iter": 1}, 0)
        one_step = make_pipeline(StandardScaler(), LogisticRegression(C=100.0, max_iter=1))
        one_step.fit(features, labels)
    assert result["train_accuracy"] == one_step.score(features, labels) < 1.0
    assert result["converged"] is False


def test_a_layer_name_with_underscores_and_a_single_unit() -> None:
    embeddings = _embeddings(True).drop(columns=[f"fc2_{i}" for i in range(1, 8)])
    embeddings = embeddings.rename(columns={"fc2_0": "hidden_fc_0000"})
    result = fit_linear_probe(embeddings, {"C": [1.0], "max_iter": 500}, 0)
    assert (result["embedding_layer"], result["embedding_size"]) == ("hidden_fc", 1)


def test_the_projection_shows_each_class_of_the_test_split() -> None:
    figure = plot_embedding_projection(_embeddings(True), ["a", "b", "c"], {"max_points": 30}, 0)
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


def test_the_projection_is_titled_by_its_layer_and_drawn_the_same_every_time() -> None:
    embeddings = _embeddings(True).rename(columns=lambda name: name.replace("fc2_", "my_fc_"))
    axis, again = (
        plot_embedding_projection(embeddings, ["a", "b", "c"], {"max_points": 30}, 0).get_axes()[0]
        for _ in range(2)
    )
    assert axis.get_title() == (
        "30 test images: 8-D embeddings (my_fc) by PCA\nunit · model v7 (env test)"
    )
    for points, same in zip(axis.collections, again.collections, strict=True):
        np.testing.assert_array_equal(points.get_offsets(), same.get_offsets())


def test_a_wide_projection_is_reproducible() -> None:
    """600 points of 100 features: scikit-learn's PCA solves this one by randomised SVD,
    seeded."""
    rng = np.random.default_rng(0)
    frame = labelled(pd.DataFrame({"split": "test", "label": rng.integers(0, 3, 600)}), LABELS)
    wide = pd.concat([frame, pd.DataFrame(rng.normal(size=(600, 100))).add_prefix("fc2_")], axis=1)
    offsets = [
        np.concatenate([points.get_offsets() for points in axis.collections])
        for axis in (
            plot_embedding_projection(wide, ["a", "b", "c"], {"max_points": 600}, 0).axes[0]
            for _ in range(2)
        )
    ]
    np.testing.assert_array_equal(*offsets)
