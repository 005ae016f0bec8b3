"""Unit tests of the network and the training node."""

from __future__ import annotations

import copy

import keras
import numpy as np
import pytest

from alexnet_cifar10.model import RandomCropFlip, build_alexnet
from alexnet_cifar10.pipelines.training.nodes import (
    TrainingDivergedError,
    train_model,
    validate_training_params,
)
from alexnet_cifar10.validation import ParameterError

from .conftest import make_split


def test_default_parameters_build_the_recipe_topology(recipe_training: dict) -> None:
    model = build_alexnet(recipe_training["model"], num_classes=10)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == [
        "InputLayer",
        "Rescaling",
        "Conv2D",
        "BatchNormalization",
        "MaxPooling2D",
        "Conv2D",
        "BatchNormalization",
        "MaxPooling2D",
        "Conv2D",
        "BatchNormalization",
        "Conv2D",
        "BatchNormalization",
        "Conv2D",
        "BatchNormalization",
        "MaxPooling2D",
        "Flatten",
        "Dense",
        "Dropout",
        "Dense",
        "Dropout",
        "Dense",
    ]
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert all(conv.activation is keras.activations.relu for conv in convs)
    pools = [layer for layer in model.layers if isinstance(layer, keras.layers.MaxPooling2D)]
    assert all(p.pool_size == (3, 3) and p.strides == (2, 2) for p in pools)
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert [d.units for d in dense] == [1024, 1024, 10]
    assert dense[-1].activation is keras.activations.softmax
    assert [d.rate for d in model.layers if isinstance(d, keras.layers.Dropout)] == [0.5, 0.5]
    assert model.input.dtype == "uint8" and tuple(model.input.shape) == (None, 32, 32, 3)
    assert tuple(model.output.shape) == (None, 10)


def test_model_scales_uint8_to_unit_range(recipe_training: dict) -> None:
    model = build_alexnet(recipe_training["model"], num_classes=10)
    scaled = model.get_layer("scale_to_unit")(np.full((1, 32, 32, 3), 255, dtype=np.uint8))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(scaled), 1.0)


def test_random_crop_flip_is_identity_at_inference_and_shifts_in_training() -> None:
    images = np.random.default_rng(0).random((8, 32, 32, 3)).astype(np.float32)
    layer = RandomCropFlip(pad=4, flip=True, seed=1)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(images, training=False)), images)
    out = keras.ops.convert_to_numpy(layer(images, training=True))
    assert out.shape == images.shape
    for original, moved in zip(images, out, strict=True):
        matches = [
            (dy, dx, flip)
            for flip in (False, True)
            for dy in range(-4, 5)
            for dx in range(-4, 5)
            if np.allclose(_shift(original[:, ::-1] if flip else original, dy, dx), moved)
        ]
        assert matches, "every output is a whole-pixel shift (and maybe a flip) with zero fill"


def _shift(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    padded = np.pad(image, ((4, 4), (4, 4), (0, 0)))
    return padded[4 + dy : 36 + dy, 4 + dx : 36 + dx]


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("optimizer", "name"), "adamax", "'training.optimizer.name' must be one of"),
        (("loss",), "hinge", "'training.loss' must be one of"),
        (("epochs",), 0, "'training.epochs' must be an integer >= 1"),
        (("epochs",), -3, "'training.epochs' must be an integer >= 1"),
        (("batch_size",), 0, "'training.batch_size' must be an integer >= 1"),
        (("batch_size",), -64, "'training.batch_size' must be an integer >= 1"),
        (("model", "dropout"), 1.0, r"'training.model.dropout' must be a number in \[0, 1\)"),
        (("model", "dropout"), -0.1, r"'training.model.dropout' must be a number in \[0, 1\)"),
        (("optimizer", "learning_rate"), 0, "'training.optimizer.learning_rate' must be"),
        (("precision",), "float16", "'training.precision' must be one of"),
        (("label_smoothing",), 1.5, "'training.label_smoothing' must be"),
    ],
)
def test_bad_parameters_are_rejected_by_name(
    recipe_training: dict, path: tuple, value: object, message: str
) -> None:
    target = recipe_training
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(ParameterError, match=message):
        validate_training_params(recipe_training)


def test_a_pooling_plan_below_1x1_is_rejected(recipe_training: dict) -> None:
    params = copy.deepcopy(recipe_training)
    for conv in params["model"]["conv_layers"]:
        conv["pool"] = True
    with pytest.raises(ParameterError) as error:
        validate_training_params(params)
    assert "'training.model.conv_layers[4].pool'" in str(error.value)
    assert "feature map is 1x1" in str(error.value)


def test_default_parameters_are_valid(recipe_training: dict) -> None:
    validate_training_params(recipe_training)


def test_train_model_returns_model_history_and_facts(tiny_training: dict) -> None:
    model, history, facts = train_model(make_split(64), make_split(32, 1), tiny_training, 0, "t")
    assert list(history.columns[:1]) == ["epoch"]
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "epoch_seconds"} <= set(history)
    assert len(history) == 1
    assert facts["backend"] == keras.backend.backend()
    assert facts["device"].lower().startswith(("cpu", "gpu"))
    assert facts["train_images"] == 64 and facts["epochs_run"] == 1
    probabilities = model.predict(make_split(4)["images"], verbose=0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_train_model_is_seeded(tiny_training: dict) -> None:
    first = train_model(make_split(32), make_split(16, 1), tiny_training, 7, "t")[1]
    second = train_model(make_split(32), make_split(16, 1), tiny_training, 7, "t")[1]
    np.testing.assert_allclose(first["loss"], second["loss"], rtol=1e-5)


def test_divergence_stops_with_a_clear_error(tiny_training: dict) -> None:
    train = make_split(32)
    train["labels"][:] = np.nan
    with pytest.raises(TrainingDivergedError, match="loss became NaN or infinite in epoch 1"):
        train_model(train, make_split(16, 1), tiny_training, 0, "t")
