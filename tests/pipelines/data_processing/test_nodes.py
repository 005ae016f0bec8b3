"""Unit tests of the data_processing nodes."""

from __future__ import annotations

import numpy as np
import pytest
from synthetic_cifar import CLASS_NAMES

from alexnet_cifar10.pipelines.data_processing.nodes import (
    build_model_inputs,
    plot_sample_images,
    split_dataset,
    summarise_dataset,
)
from alexnet_cifar10.validation import ParameterError

PARAMS = {"validation_fraction": 0.2, "stratify": True, "subset_fraction": 1.0}


@pytest.fixture
def data() -> dict:
    rng = np.random.default_rng(0)
    return {
        "train_images": rng.integers(0, 256, (500, 32, 32, 3), dtype=np.uint8),
        "train_labels": np.repeat(np.arange(10), 50),
        "test_images": rng.integers(0, 256, (100, 32, 32, 3), dtype=np.uint8),
        "test_labels": np.tile(np.arange(10), 10),
        "label_names": list(CLASS_NAMES),
    }


def test_split_is_stratified_disjoint_and_seeded(data: dict) -> None:
    split = split_dataset(data, PARAMS, seed=1)
    assert len(split["train"]) == 400 and len(split["validation"]) == 100
    assert not set(split["train"]) & set(split["validation"])
    assert np.bincount(data["train_labels"][split["validation"]]).tolist() == [10] * 10
    assert split["test"].tolist() == list(range(100))
    again = split_dataset(data, PARAMS, seed=1)
    other = split_dataset(data, PARAMS, seed=2)
    np.testing.assert_array_equal(split["validation"], again["validation"])
    assert not np.array_equal(split["validation"], other["validation"])


def test_unstratified_split_has_the_requested_size(data: dict) -> None:
    split = split_dataset(data, {**PARAMS, "stratify": False, "validation_fraction": 0.3}, 0)
    assert len(split["validation"]) == 150
    assert sorted(np.concatenate([split["train"], split["validation"]])) == list(range(500))


def test_subset_keeps_a_stratified_share_of_every_split(data: dict) -> None:
    split = split_dataset(data, {**PARAMS, "subset_fraction": 0.1}, 0)
    assert [len(split[k]) for k in ("train", "validation", "test")] == [40, 10, 10]
    assert np.bincount(data["test_labels"][split["test"]]).tolist() == [1] * 10


def test_model_inputs_are_uint8_images_and_one_hot_labels(data: dict) -> None:
    split = split_dataset(data, PARAMS, 0)
    train, validation, test = build_model_inputs(data, split, CLASS_NAMES)
    assert train["images"].dtype == np.uint8 and train["images"].shape == (400, 32, 32, 3)
    assert train["labels"].shape == (400, 10) and train["labels"].dtype == np.float32
    np.testing.assert_array_equal(train["labels"].argmax(1), data["train_labels"][split["train"]])
    np.testing.assert_array_equal(validation["images"], data["train_images"][split["validation"]])
    np.testing.assert_array_equal(test["images"], data["test_images"])
    assert train["labels"].sum(axis=1).tolist() == [1.0] * 400


def test_every_split_keeps_images_labels_and_official_indices_paired(data: dict) -> None:
    split = split_dataset(data, {**PARAMS, "subset_fraction": 0.5}, 3)
    model_inputs = build_model_inputs(data, split, CLASS_NAMES)
    sources = ("train", "train", "test")
    names = ("train", "validation", "test")
    for name, inputs, source in zip(names, model_inputs, sources, strict=True):
        np.testing.assert_array_equal(inputs["index"], split[name])
        np.testing.assert_array_equal(inputs["images"], data[f"{source}_images"][split[name]])
        np.testing.assert_array_equal(
            inputs["labels"].argmax(axis=1), data[f"{source}_labels"][split[name]]
        )


def test_class_names_must_match_the_dataset(data: dict) -> None:
    with pytest.raises(ParameterError, match="Parameter 'class_names'"):
        build_model_inputs(data, split_dataset(data, PARAMS, 0), CLASS_NAMES[::-1])


def test_report_counts_and_channel_statistics(data: dict) -> None:
    split = split_dataset(data, PARAMS, 0)
    report = summarise_dataset(data, split, CLASS_NAMES, "SMOKE RUN")
    assert report["run_label"] == "SMOKE RUN"
    assert report["splits"]["train"]["images"] == 400
    assert set(report["splits"]["validation"]["class_counts"].values()) == {10}
    expected = (data["train_images"] / 255).reshape(-1, 3)
    np.testing.assert_allclose(
        report["channel_mean"]["official_train"], expected.mean(0), atol=1e-6
    )
    np.testing.assert_allclose(report["channel_std"]["official_train"], expected.std(0), atol=1e-6)


def test_sample_grid_has_a_row_per_class(data: dict) -> None:
    figure = plot_sample_images(data, CLASS_NAMES, per_class=4)
    axes = figure.get_axes()
    assert len(axes) == 40
    assert [axes[row * 4].get_ylabel() for row in range(10)] == CLASS_NAMES
    # Each row shows that class's own first training images.
    for row in range(10):
        picks = np.flatnonzero(data["train_labels"] == row)[:4]
        for col, index in enumerate(picks):
            shown = axes[row * 4 + col].get_images()[0].get_array()
            np.testing.assert_array_equal(shown, data["train_images"][index])
