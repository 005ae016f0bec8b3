"""The network (model.py): the recipe's topology, its cost, the augmentation layer."""

from __future__ import annotations

import keras
import numpy as np

from alexnet_cifar10.model import RandomCropFlip, build_alexnet, layer_costs

# The recipe's network: 5 convolutions (96, 256, 384, 384, 256 filters), 2 x 1024 dense.
RECIPE_PARAMETERS = 7_140_618
RECIPE_MULTIPLY_ADDS = 296_044_544


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
    assert [c.filters for c in convs] == [96, 256, 384, 384, 256]
    assert [c.kernel_size for c in convs] == [(3, 3), (5, 5), (3, 3), (3, 3), (3, 3)]
    assert all(c.strides == (1, 1) and c.padding == "same" for c in convs)
    assert all(conv.activation is keras.activations.relu for conv in convs)
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert [n.momentum for n in norms] == [0.99] * 5
    pools = [layer for layer in model.layers if isinstance(layer, keras.layers.MaxPooling2D)]
    assert all(p.pool_size == (3, 3) and p.strides == (2, 2) for p in pools)
    assert all(p.padding == "valid" for p in pools)
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert [d.units for d in dense] == [1024, 1024, 10]
    assert [d.activation for d in dense] == [keras.activations.relu] * 2 + [
        keras.activations.softmax
    ]
    assert [d.rate for d in model.layers if isinstance(d, keras.layers.Dropout)] == [0.5, 0.5]
    assert model.input.dtype == "uint8" and tuple(model.input.shape) == (None, 32, 32, 3)
    assert tuple(model.output.shape) == (None, 10)
    assert model.count_params() == RECIPE_PARAMETERS


def test_layer_costs_count_parameters_and_multiply_adds(recipe_training: dict) -> None:
    costs = layer_costs(build_alexnet(recipe_training["model"], num_classes=10))
    by_name = {row["layer"]: row for row in costs}
    # conv1: 32x32 outputs x 96 filters x (3x3x3) inputs each.
    assert by_name["conv1"]["multiply_adds"] == 32 * 32 * 96 * 27
    assert by_name["conv1"]["output_shape"] == "32x32x96"
    assert by_name["pool1"]["output_shape"] == "15x15x96"
    # conv2 on the 15x15 map after the first pooling: 5x5x96 inputs each.
    assert by_name["conv2"]["multiply_adds"] == 15 * 15 * 256 * 25 * 96
    assert by_name["fc1"]["multiply_adds"] == 3 * 3 * 256 * 1024
    assert by_name["bn1"]["parameters"] == 4 * 96 and by_name["bn1"]["multiply_adds"] == 0
    assert sum(row["parameters"] for row in costs) == RECIPE_PARAMETERS
    assert sum(row["multiply_adds"] for row in costs) == RECIPE_MULTIPLY_ADDS


def test_model_scales_uint8_to_unit_range(recipe_training: dict) -> None:
    model = build_alexnet(recipe_training["model"], num_classes=10)
    scaled = model.get_layer("scale_to_unit")(np.full((1, 32, 32, 3), 255, dtype=np.uint8))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(scaled), 1.0)


def test_augmentation_is_a_layer_only_when_enabled(recipe_training: dict) -> None:
    params = recipe_training["model"]
    plain = build_alexnet(params, 10, augmentation={"enabled": False, "pad": 4})
    augmented = build_alexnet(params, 10, augmentation={"enabled": True, "pad": 2})
    assert not any(isinstance(layer, RandomCropFlip) for layer in plain.layers)
    [layer] = [layer for layer in augmented.layers if isinstance(layer, RandomCropFlip)]
    assert layer.pad == 2 and layer.flip


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
