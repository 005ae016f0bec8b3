"""The network (model.py): the recipe's topology, its cost, the augmentation layer."""

from __future__ import annotations

import keras
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from alexnet_cifar10.model import RandomCropFlip, build_alexnet, layer_costs

# The recipe's network: 5 convolutions (96, 256, 384, 384, 256 filters), 2 x 1024 dense.
RECIPE_PARAMETERS = 7_140_618
RECIPE_MULTIPLY_ADDS = 296_044_544
# One pooled convolution and no dense layer: the cheapest network to build.
TINY_NETWORK = {
    "conv_layers": [
        {"filters": 2, "kernel_size": 3, "strides": 2, "pool": True, "batch_norm": True}
    ],
    "pool_size": 2,
    "pool_strides": 2,
    "input_size": 32,
    "batch_norm_momentum": 0.99,
    "dense_units": [],
    "dropout": 0.5,
}


def test_default_parameters_build_the_recipe_topology(recipe_training: dict) -> None:
    model = build_alexnet(recipe_training["model"], num_classes=10)
    assert model.name == "alexnet_cifar10"
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


def test_the_network_follows_every_parameter() -> None:
    params = {
        "conv_layers": [
            {"filters": 6, "kernel_size": 5, "strides": 2, "pool": True, "batch_norm": True},
            {"filters": 4, "kernel_size": 3, "strides": 1, "pool": False, "batch_norm": True},
        ],
        "pool_size": 2,
        "pool_strides": 1,
        "input_size": 32,
        "batch_norm_momentum": 0.9,
        "dense_units": [32],
        "dropout": 0.25,
    }
    model = build_alexnet(params, num_classes=7)
    assert [layer.name for layer in model.layers] == [
        "image", "scale_to_unit", "conv1", "bn1", "pool1", "conv2", "bn2", "flatten", "fc1",
        "dropout1", "probabilities",
    ]  # fmt: skip
    conv1, conv2 = model.get_layer("conv1"), model.get_layer("conv2")
    assert (conv1.filters, conv1.kernel_size, conv1.strides) == (6, (5, 5), (2, 2))
    assert (conv2.filters, conv2.kernel_size, conv2.strides) == (4, (3, 3), (1, 1))
    assert conv1.padding == conv2.padding == "same"
    assert model.get_layer("bn1").momentum == model.get_layer("bn2").momentum == 0.9
    pool = model.get_layer("pool1")
    assert (pool.pool_size, pool.strides, pool.padding) == ((2, 2), (1, 1), "valid")
    assert model.get_layer("fc1").units == 32 and model.get_layer("dropout1").rate == 0.25
    assert model.get_layer("probabilities").units == 7
    # 32x32 -> 16x16 (stride 2, same) -> 15x15 (2x2 pool, stride 1) -> 15x15x4 = 900.
    assert [tuple(model.get_layer(n).output.shape[1:]) for n in ("pool1", "flatten")] == [
        (15, 15, 6),
        (900,),
    ]
    conv = (5 * 5 * 3 + 1) * 6 + (3 * 3 * 6 + 1) * 4
    assert model.count_params() == conv + 4 * (6 + 4) + (900 + 1) * 32 + (32 + 1) * 7


def test_batch_norm_follows_each_convolution_that_asks_for_it(recipe_training: dict) -> None:
    network = recipe_training["model"]
    conv_layers = [
        {**conv, "batch_norm": conv["pool"]} for conv in network["conv_layers"]
    ]  # BatchNorm after the pooled convolutions only: the 1st, 2nd and 5th
    model = build_alexnet({**network, "conv_layers": conv_layers}, 10)
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert [layer.name for layer in norms] == ["bn1", "bn2", "bn5"]
    assert {layer.momentum for layer in norms} == {network["batch_norm_momentum"]}
    # Two BatchNorms of 384 channels fewer, 4 weights per channel.
    assert model.count_params() == RECIPE_PARAMETERS - 2 * 4 * 384 == 7_137_546
    none = [{**conv, "batch_norm": False} for conv in network["conv_layers"]]
    plain = build_alexnet({**network, "conv_layers": none}, 10)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in plain.layers)


def test_layer_costs_count_parameters_and_multiply_adds(recipe_training: dict) -> None:
    costs = layer_costs(build_alexnet(recipe_training["model"], num_classes=10))
    by_name = {row["layer"]: row for row in costs}
    # conv1: 32x32 outputs x 96 filters x (3x3x3) inputs each.
    assert by_name["conv1"]["multiply_adds"] == 32 * 32 * 96 * 27
    assert by_name["conv1"]["output_shape"] == "32x32x96"
    assert [by_name[name]["type"] for name in ("conv1", "bn1", "pool1", "fc1")] == [
        "Conv2D",
        "BatchNormalization",
        "MaxPooling2D",
        "Dense",
    ]
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
    off = {"enabled": False, "pad": 4, "horizontal_flip": True, "cutout": 0}
    plain = build_alexnet(params, 10, augmentation=off)
    augmented = build_alexnet(params, 10, augmentation={**off, "enabled": True, "pad": 2})
    assert not any(isinstance(layer, RandomCropFlip) for layer in plain.layers)
    [layer] = [layer for layer in augmented.layers if isinstance(layer, RandomCropFlip)]
    assert layer.pad == 2 and layer.flip


def test_augmentation_takes_the_seed() -> None:
    augmentation = {"enabled": True, "pad": 3, "horizontal_flip": False, "cutout": 0}
    model = build_alexnet(TINY_NETWORK, 10, augmentation=augmentation, seed=5)
    layer = model.get_layer("random_crop_flip")
    assert (layer.pad, layer.flip, layer.seed) == (3, False, 5)


def test_every_layer_but_the_softmax_computes_in_the_precision_asked() -> None:
    """Whatever Keras' global policy is: here another mixed one."""
    global_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = build_alexnet(
            {**TINY_NETWORK, "dense_units": [8]},
            10,
            augmentation={"enabled": True, "pad": 1, "horizontal_flip": True, "cutout": 0},
            dtype_policy="mixed_bfloat16",
        )
    finally:
        keras.config.set_dtype_policy(global_policy)
    policies = {layer.name: layer.dtype_policy.name for layer in model.layers[1:]}
    assert policies == {
        "scale_to_unit": "mixed_bfloat16",
        "random_crop_flip": "mixed_bfloat16",
        "conv1": "mixed_bfloat16",
        "bn1": "mixed_bfloat16",
        "pool1": "mixed_bfloat16",
        "flatten": "mixed_bfloat16",
        "fc1": "mixed_bfloat16",
        "dropout1": "mixed_bfloat16",
        "probabilities": "float32",
    }


def _movements(images: np.ndarray, moved: np.ndarray, reach: int = 8) -> list[list[tuple]]:
    """For each image, every (dy, dx, flipped) with |dy|, |dx| <= reach that turns it into
    its moved version: flipped left-right or not, then shifted by whole pixels (pixel (y, x)
    shows what was at (y + dy, x + dx)), zero fill."""
    height, width = images.shape[1:3]
    padded = np.pad(images, ((0, 0), (reach, reach), (reach, reach), (0, 0)))
    found: list[list[tuple]] = [[] for _ in images]
    for flip in (False, True):
        source = padded[:, :, ::-1] if flip else padded
        for dy in range(-reach, reach + 1):
            for dx in range(-reach, reach + 1):
                window = source[
                    :, reach + dy : reach + dy + height, reach + dx : reach + dx + width
                ]
                for index in np.flatnonzero(np.isclose(window, moved).all(axis=(1, 2, 3))):
                    found[index].append((dy, dx, flip))
    return found


def _augment(layer: RandomCropFlip, images: np.ndarray, **kwargs: object) -> np.ndarray:
    return keras.ops.convert_to_numpy(layer(images, **kwargs))


def _random_images(count: int, seed: int = 0, shape: tuple[int, int] = (32, 32)) -> np.ndarray:
    # Distinct values everywhere: one movement, and one only, explains each output.
    return np.random.default_rng(seed).random((count, *shape, 3)).astype(np.float32) + 0.5


def test_random_crop_flip_is_the_identity_at_inference() -> None:
    images = _random_images(8)
    layer = RandomCropFlip(pad=4, flip=True, seed=1)
    np.testing.assert_array_equal(_augment(layer, images, training=False), images)
    np.testing.assert_array_equal(_augment(layer, images), images)


def test_random_crop_flip_translates_within_pad_and_flips_in_training() -> None:
    images = _random_images(64)
    found = _movements(
        images, _augment(RandomCropFlip(pad=4, flip=True, seed=1), images, training=True)
    )
    assert all(len(options) == 1 for options in found), "each output is one movement"
    moves = [options[0] for options in found]
    rows, cols, flips = (set(values) for values in zip(*moves, strict=True))
    # Every shift of the range is drawn for 64 images, and none beyond it.
    assert rows == cols == set(range(-4, 5))
    assert flips == {False, True}
    # Rows and columns move independently: 64 draws of 81 pairs give some 44 distinct ones,
    # where one shared shift would give at most 9 (18 with the flips).
    assert len({(dy, dx) for dy, dx, _ in moves}) > 30


def test_random_crop_flip_flips_half_the_images() -> None:
    images = _random_images(400, shape=(4, 4))
    moved = _augment(RandomCropFlip(pad=0, flip=True, seed=2), images, training=True)
    flipped = np.isclose(moved, images[:, :, ::-1]).all(axis=(1, 2, 3))
    assert (flipped | np.isclose(moved, images).all(axis=(1, 2, 3))).all()
    # Binomial(400, 1/2): 0.5 +- 0.025, the seed fixes the draw.
    assert 0.42 < flipped.mean() < 0.58


def test_random_crop_flip_draws_the_same_movements_for_the_same_seed() -> None:
    images = _random_images(16, shape=(8, 8))
    first, again, other = (
        _augment(RandomCropFlip(pad=2, flip=True, seed=seed), images, training=True)
        for seed in (7, 7, 8)
    )
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_random_crop_flip_keeps_the_compute_precision() -> None:
    layer = RandomCropFlip(pad=1, seed=0, dtype="mixed_bfloat16")
    moved = layer(_random_images(2, shape=(4, 4)), training=True)
    assert keras.backend.standardize_dtype(moved.dtype) == "bfloat16"


def test_random_crop_flip_is_rebuilt_from_its_config() -> None:
    layer = RandomCropFlip(pad=3, flip=False, seed=11, name="augment")
    rebuilt = RandomCropFlip.from_config(layer.get_config())
    assert (rebuilt.pad, rebuilt.flip, rebuilt.seed, rebuilt.name) == (3, False, 11, "augment")


def test_random_crop_flip_without_flip_only_translates_and_pad_0_is_the_identity() -> None:
    images = _random_images(32)
    layer = RandomCropFlip(pad=2, flip=False, seed=3)
    found = _movements(images, _augment(layer, images, training=True))
    assert all(len(options) == 1 for options in found)
    moves = [options[0] for options in found]
    assert not any(flipped for _, _, flipped in moves)
    assert any((dy, dx) != (0, 0) for dy, dx, _ in moves), "it moves images"
    still = RandomCropFlip(pad=0, flip=False, seed=3)
    np.testing.assert_array_equal(_augment(still, images, training=True), images)


@settings(max_examples=12, deadline=None)
@given(
    pad=st.integers(min_value=0, max_value=5),
    flip=st.booleans(),
    seed=st.integers(min_value=0, max_value=2**16),
    shape=st.tuples(st.integers(min_value=8, max_value=14), st.integers(min_value=8, max_value=14)),
)
def test_every_augmented_image_is_one_movement_within_pad(
    pad: int, flip: bool, seed: int, shape: tuple[int, int]
) -> None:
    images = _random_images(6, seed, shape)
    layer = RandomCropFlip(pad=pad, flip=flip, seed=seed)
    for options in _movements(images, _augment(layer, images, training=True), reach=pad + 2):
        [(dy, dx, flipped)] = options
        assert abs(dy) <= pad and abs(dx) <= pad
        assert flip or not flipped


def test_cutout_zeroes_one_square_of_at_most_its_size_per_image() -> None:
    images = _random_images(64, shape=(12, 12))
    layer = RandomCropFlip(pad=0, flip=False, seed=4, cutout=4)
    cut = _augment(layer, images, training=True)
    zero = (cut == 0).all(axis=-1)
    np.testing.assert_array_equal(cut[~zero], images[~zero])  # the rest is untouched
    sizes = []
    for mask in zero:
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        assert mask.sum() == len(rows) * len(cols), "one rectangle"
        assert len(rows) <= 4 and len(cols) <= 4
        assert np.ptp(rows) == len(rows) - 1 and np.ptp(cols) == len(cols) - 1, "contiguous"
        sizes.append(mask.sum())
    # A centre anywhere: most squares lie whole inside, some are cut by an edge.
    assert max(sizes) == 16 and min(sizes) < 16
    np.testing.assert_array_equal(_augment(layer, images, training=False), images)


def test_cutout_draws_the_same_squares_for_the_same_seed_and_is_in_the_config() -> None:
    images = _random_images(8, shape=(10, 10))
    first, again, other = (
        _augment(RandomCropFlip(pad=1, seed=seed, cutout=3), images, training=True)
        for seed in (5, 5, 6)
    )
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    layer = RandomCropFlip(pad=1, seed=5, cutout=3)
    assert RandomCropFlip.from_config(layer.get_config()).cutout == 3


def test_a_network_with_cutout_trains_a_compiled_step() -> None:
    augmentation = {"enabled": True, "pad": 2, "horizontal_flip": True, "cutout": 8}
    model = build_alexnet(TINY_NETWORK, 10, augmentation=augmentation, seed=1)
    model.compile(optimizer="adam", loss="categorical_crossentropy", jit_compile=True)
    images = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    loss = model.train_on_batch(images, np.eye(10, dtype=np.float32)[[0, 1, 2, 3]])
    assert np.isfinite(loss)
