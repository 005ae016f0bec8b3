"""Unit tests of the data_processing nodes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from synthetic_cifar import CLASS_NAMES

from alexnet_cifar10.pipelines.data_processing.nodes import (
    build_model_inputs,
    encode_splits,
    plot_sample_images,
    split_indices,
    summarise_dataset,
)
from alexnet_cifar10.validation import ParameterError

RESIZE = {"fit": "crop", "resample": "lanczos", "background": [255, 255, 255]}
PARAMS = {
    "validation_fraction": 0.2,
    "test_fraction": 0.2,
    "stratify": True,
    "subset_fraction": 1.0,
    "resize": RESIZE,
}


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
    split = split_indices(data, PARAMS, seed=1)
    assert len(split["train"]) == 400 and len(split["validation"]) == 100
    assert not set(split["train"]) & set(split["validation"])
    assert np.bincount(data["train_labels"][split["validation"]]).tolist() == [10] * 10
    assert split["test"].tolist() == list(range(100))
    again = split_indices(data, PARAMS, seed=1)
    other = split_indices(data, PARAMS, seed=2)
    np.testing.assert_array_equal(split["validation"], again["validation"])
    assert not np.array_equal(split["validation"], other["validation"])


def test_unstratified_split_has_the_requested_size(data: dict) -> None:
    split = split_indices(data, {**PARAMS, "stratify": False, "validation_fraction": 0.3}, 0)
    assert len(split["validation"]) == 150
    assert sorted(np.concatenate([split["train"], split["validation"]])) == list(range(500))


def test_subset_keeps_a_stratified_share_of_every_split(data: dict) -> None:
    split = split_indices(data, {**PARAMS, "subset_fraction": 0.1}, 0)
    assert [len(split[k]) for k in ("train", "validation", "test")] == [40, 10, 10]
    assert np.bincount(data["test_labels"][split["test"]]).tolist() == [1] * 10


@settings(max_examples=60, deadline=None)
@given(
    train_labels=st.lists(st.integers(0, 9), min_size=2, max_size=120),
    test_size=st.integers(1, 60),
    fraction=st.floats(0.05, 0.95),
    stratify=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_the_split_shares_out_the_training_set_as_asked(  # noqa: PLR0913
    train_labels: list[int], test_size: int, fraction: float, stratify: bool, seed: int
) -> None:
    """Train and validation are sorted, disjoint and together the whole official training
    set; validation holds round(fraction * n) images, of every class when stratified; the
    test split is the whole official test set, untouched."""
    labels = np.array(train_labels)
    data = {"train_labels": labels, "test_labels": np.zeros(test_size, dtype=int)}
    params = {"validation_fraction": fraction, "stratify": stratify, "subset_fraction": 1.0}
    split = split_indices(data, params, seed)
    train, validation = split["train"], split["validation"]
    assert sorted(np.concatenate([train, validation])) == list(range(len(labels)))
    assert (np.diff(train) > 0).all() and (np.diff(validation) > 0).all()
    if stratify:
        for label in np.unique(labels):
            members = int((labels == label).sum())
            assert (labels[validation] == label).sum() == round(members * fraction)
    else:
        assert len(validation) == round(len(labels) * fraction)
    assert split["test"].tolist() == list(range(test_size))


@settings(max_examples=40, deadline=None)
@given(
    labels=st.lists(st.integers(0, 9), min_size=10, max_size=200),
    subset=st.floats(0.05, 0.95),
    seed=st.integers(0, 2**32 - 1),
)
def test_a_subset_takes_the_same_share_of_every_class_of_every_split(
    labels: list[int], subset: float, seed: int
) -> None:
    train_labels, test_labels = np.array(labels), np.array(labels[::-1])
    data = {"train_labels": train_labels, "test_labels": test_labels}
    full_params = {"validation_fraction": 0.25, "stratify": True, "subset_fraction": 1.0}
    full = split_indices(data, full_params, seed)
    part = split_indices(data, {**full_params, "subset_fraction": subset}, seed)
    for name, source in (
        ("train", train_labels),
        ("validation", train_labels),
        ("test", test_labels),
    ):
        assert set(part[name]) <= set(full[name]), name
        for label in range(10):
            members = int((source[full[name]] == label).sum())
            assert (source[part[name]] == label).sum() == round(members * subset)
    assert part["validation"].tolist() == sorted(set(part["validation"]))


@settings(max_examples=30, deadline=None)
@given(labels=st.lists(st.integers(0, 9), min_size=1, max_size=50), data=st.data())
def test_one_hot_labels_round_trip_to_the_release_labels(labels: list[int], data) -> None:
    """Each chosen image comes with a one-hot row whose argmax is its own release label."""
    count = len(labels)
    chosen = data.draw(st.permutations(range(count)))[: data.draw(st.integers(0, count))]
    index = np.array(chosen, dtype=np.int64)
    images = np.arange(count, dtype=np.uint8)[:, None, None, None] * np.ones(
        (1, 32, 32, 3), np.uint8
    )
    release = {
        "train_images": images,
        "train_labels": np.array(labels),
        "test_images": images,
        "test_labels": np.array(labels),
        "label_names": CLASS_NAMES,
    }
    split = {"train": index, "validation": index[::-1], "test": index}
    for inputs in encode_splits(release, split, CLASS_NAMES):
        assert inputs["labels"].dtype == np.float32 and inputs["labels"].shape == (len(index), 10)
        assert set(np.unique(inputs["labels"])) <= {0.0, 1.0}
        assert (inputs["labels"].sum(axis=1) == 1).all()
        assert inputs["labels"].argmax(axis=1).tolist() == [labels[i] for i in inputs["index"]]
        assert inputs["images"][:, 0, 0, 0].tolist() == inputs["index"].tolist()


def test_model_inputs_are_uint8_images_and_one_hot_labels(data: dict) -> None:
    split = split_indices(data, PARAMS, 0)
    train, validation, test, inventory = build_model_inputs(data, PARAMS, 0, CLASS_NAMES, 32)
    assert inventory["refused"] == [] and inventory["classes"]["cat"] == {"files": 60, "refused": 0}
    assert train["images"].dtype == np.uint8 and train["images"].shape == (400, 32, 32, 3)
    assert train["labels"].shape == (400, 10) and train["labels"].dtype == np.float32
    np.testing.assert_array_equal(train["labels"].argmax(1), data["train_labels"][split["train"]])
    np.testing.assert_array_equal(validation["images"], data["train_images"][split["validation"]])
    np.testing.assert_array_equal(test["images"], data["test_images"])
    assert train["labels"].sum(axis=1).tolist() == [1.0] * 400


def test_every_split_keeps_images_labels_and_official_indices_paired(data: dict) -> None:
    params = {**PARAMS, "subset_fraction": 0.5}
    split = split_indices(data, params, 3)
    model_inputs = build_model_inputs(data, params, 3, CLASS_NAMES, 32)[:3]
    sources = ("train", "train", "test")
    names = ("train", "validation", "test")
    for name, inputs, source in zip(names, model_inputs, sources, strict=True):
        np.testing.assert_array_equal(inputs["index"], split[name])
        np.testing.assert_array_equal(inputs["images"], data[f"{source}_images"][split[name]])
        np.testing.assert_array_equal(
            inputs["labels"].argmax(axis=1), data[f"{source}_labels"][split[name]]
        )


def test_class_names_must_match_the_dataset(data: dict) -> None:
    with pytest.raises(ParameterError) as raised:
        build_model_inputs(data, PARAMS, 0, CLASS_NAMES[::-1], 32)
    assert str(raised.value) == (
        f"Parameter 'class_names' {CLASS_NAMES[::-1]} does not match the dataset's label "
        f"names {CLASS_NAMES}; fix conf/base/parameters.yml."
    )


def test_report_counts_and_channel_statistics(data: dict) -> None:
    *splits, inventory = build_model_inputs(data, PARAMS, 0, CLASS_NAMES, 32)
    splits.insert(3, inventory)
    report = summarise_dataset(*splits, CLASS_NAMES, "SMOKE RUN")
    assert report["raw"]["layout"] == "CIFAR-10 python release"
    assert report["splits"]["train"]["imbalance"] == 1.0
    assert report["run_label"] == "SMOKE RUN"
    assert report["splits"]["train"]["images"] == 400
    assert set(report["splits"]["validation"]["class_counts"].values()) == {10}
    expected = (splits[0]["images"] / 255).reshape(-1, 3)
    train = report["splits"]["train"]
    np.testing.assert_allclose(train["channel_mean"], expected.mean(0), atol=1e-6)
    np.testing.assert_allclose(train["channel_std"], expected.std(0), atol=1e-6)


def _split(images: np.ndarray, labels: list[int], classes: int = 3) -> dict[str, np.ndarray]:
    return {"images": images, "labels": np.eye(classes, dtype=np.float32)[labels]}


def test_the_report_in_full() -> None:
    """5001 training images: more than one chunk of the channel statistics. Red is full in
    every third image (mean 1/3), green in the last image alone, blue never; the pictures
    are 2x4, not square. Class 'c' has no training image: it is counted as 0."""
    train = np.zeros((5001, 2, 4, 3), np.uint8)
    train[::3, ..., 0] = 255
    train[-1, ..., 1] = 255
    test = np.zeros((4, 2, 4, 3), np.uint8)
    test[1::2] = 255
    splits = (
        _split(train, list(np.arange(5001) % 2)),
        _split(np.zeros((1, 2, 4, 3), np.uint8), [1]),
        _split(test, [0, 2, 2, 1]),
    )
    inventory = {"layout": "one folder per class", "refused": [{"file": "c/x.png"}]}
    assert summarise_dataset(*splits, inventory, ["a", "b", "c"], "SMOKE RUN") == {
        "run_label": "SMOKE RUN",
        "raw": inventory,
        "splits": {
            # Rounded to 6 decimals: 1/3, 1/5001 and their standard deviations.
            "train": {
                "images": 5001,
                "class_counts": {"a": 2501, "b": 2500, "c": 0},
                "imbalance": 2501.0,
                "channel_mean": [0.333333, 0.0002, 0.0],
                "channel_std": [0.471405, 0.014139, 0.0],
            },
            "validation": {
                "images": 1,
                "class_counts": {"a": 0, "b": 1, "c": 0},
                "imbalance": 1.0,
                "channel_mean": [0.0] * 3,
                "channel_std": [0.0] * 3,
            },
            "test": {
                "images": 4,
                "class_counts": {"a": 1, "b": 1, "c": 2},
                "imbalance": 2.0,
                "channel_mean": [0.5] * 3,
                "channel_std": [0.5] * 3,
            },
        },
        "channels": ["red", "green", "blue"],
        "pixel_scale": "pixels / 255",
    }


def test_sample_grid_has_a_row_per_class(data: dict) -> None:
    train = build_model_inputs(data, PARAMS, 0, CLASS_NAMES, 32)[0]
    figure = plot_sample_images(train, CLASS_NAMES, 4, "SMOKE RUN")
    axes = figure.get_axes()
    assert len(axes) == 40
    assert [axes[row * 4].get_ylabel() for row in range(10)] == CLASS_NAMES
    # Each row shows that class's own first training images.
    for row in range(10):
        picks = np.flatnonzero(train["labels"].argmax(axis=1) == row)[:4]
        for col, index in enumerate(picks):
            shown = axes[row * 4 + col].get_images()[0].get_array()
            np.testing.assert_array_equal(shown, train["images"][index])


def test_sample_grid_reads_as_a_table_of_pixels() -> None:
    """Class names horizontal to the left of their row, no ticks, pixels unsmoothed; a class
    with fewer training images than asked leaves the rest of its row empty."""
    images = np.arange(5 * 32 * 32 * 3, dtype=np.uint64).astype(np.uint8).reshape(5, 32, 32, 3)
    figure = plot_sample_images(_split(images, [0, 1, 0, 2, 1]), ["a", "b", "c"], 2, "TEST")
    assert figure.get_suptitle() == "Training images by class\nTEST"
    axes = figure.get_axes()
    assert [len(axis.get_images()) for axis in axes] == [1, 1, 1, 1, 1, 0]
    for axis in axes:
        assert (list(axis.get_xticks()), list(axis.get_yticks())) == ([], [])
        assert all(image.get_interpolation() == "nearest" for image in axis.get_images())
    labels = [axes[row * 2].yaxis.label for row in range(3)]
    assert [label.get_text() for label in labels] == ["a", "b", "c"]
    assert {(label.get_rotation(), label.get_ha(), label.get_va()) for label in labels} == {
        (0.0, "right", "center")
    }
    assert not axes[1].get_ylabel(), "the name is on the row's first picture only"


def test_sample_grid_of_one_picture_per_class() -> None:
    train = _split(np.zeros((2, 32, 32, 3), np.uint8), [1, 0], classes=2)
    axes = plot_sample_images(train, ["a", "b"], 1, "TEST").get_axes()
    assert [axis.get_ylabel() for axis in axes] == ["a", "b"]
