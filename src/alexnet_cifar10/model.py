"""AlexNet adapted to CIFAR-10, in backend-agnostic Keras 3 (layers and ``keras.ops``).

The network takes uint8 images as stored in the catalog and scales them to [0, 1] in its
first layer, so model inputs stay uint8 on disk. Its default parameters
(``conf/base/parameters_training.yml``) are the published recipe: five 'same' convolutions
with ReLU then BatchNorm, overlapping 3x3/stride-2 max pooling after the 1st, 2nd and 5th,
two dropout-regularised dense layers and a float32 softmax.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras
from keras import layers, ops

from alexnet_cifar10.validation import is_int, is_number, require_param

INPUT_SHAPE = (32, 32, 3)


@keras.saving.register_keras_serializable(package="alexnet_cifar10")
class RandomCropFlip(layers.Layer):
    """Random translation by up to ``pad`` pixels (zero fill) and horizontal flip.

    Both are expressed as two batched one-hot matrix products, so they run as plain
    matmuls on any accelerator and backend, with no per-image loop or interpolation.
    Identity at inference.
    """

    def __init__(self, pad: int = 4, flip: bool = True, seed: int | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.pad = pad
        self.flip = flip
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images: Any, training: bool | None = None) -> Any:
        if not training:
            return images
        batch = ops.shape(images)[0]
        height, width = images.shape[1], images.shape[2]
        shift = keras.random.randint((2, batch), -self.pad, self.pad + 1, seed=self.seed_generator)
        rows = ops.arange(height)[None, :] + shift[0][:, None]
        cols = ops.arange(width)[None, :]
        if self.flip:
            flips = keras.random.randint((batch,), 0, 2, seed=self.seed_generator)
            cols = ops.where(flips[:, None] == 1, width - 1 - cols, cols)
        cols = cols + shift[1][:, None]
        # One-hot rows/cols that point outside the image are all zero: zero padding.
        select_rows = ops.one_hot(rows, height, dtype=images.dtype)
        select_cols = ops.one_hot(cols, width, dtype=images.dtype)
        return ops.einsum("bij,bjkc,blk->bilc", select_rows, images, select_cols)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "pad": self.pad, "flip": self.flip, "seed": self.seed}


def validate_model_params(params: Mapping[str, Any], prefix: str = "training.model") -> None:
    """Reject a network description that cannot be built, naming the parameter."""
    convs = params.get("conv_layers")
    require_param(
        isinstance(convs, list) and len(convs) > 0,
        f"{prefix}.conv_layers",
        "a non-empty list of {filters, kernel_size, strides, pool}",
        convs,
    )
    pool_size, pool_strides = params.get("pool_size"), params.get("pool_strides")
    require_param(is_int(pool_size, 1), f"{prefix}.pool_size", "an integer >= 1", pool_size)
    require_param(
        is_int(pool_strides, 1), f"{prefix}.pool_strides", "an integer >= 1", pool_strides
    )
    size = INPUT_SHAPE[0]
    for index, conv in enumerate(convs):
        key = f"{prefix}.conv_layers[{index}]"
        for field in ("filters", "kernel_size", "strides"):
            require_param(
                is_int(conv.get(field), 1), f"{key}.{field}", "an integer >= 1", conv.get(field)
            )
        require_param(
            isinstance(conv.get("pool", False), bool),
            f"{key}.pool",
            "true or false",
            conv.get("pool"),
        )
        size = -(-size // conv["strides"])
        if conv.get("pool", False):
            require_param(
                size >= pool_size,
                f"{key}.pool",
                f"false here: the feature map is {size}x{size} at this point, smaller "
                f"than the {pool_size}x{pool_size} pooling window (fewer pools, or "
                "smaller strides or pool_size, keep the image at least 1x1)",
                True,
            )
            size = (size - pool_size) // pool_strides + 1
    units = params.get("dense_units")
    require_param(
        isinstance(units, list) and all(is_int(u, 1) for u in units),
        f"{prefix}.dense_units",
        "a list of integers >= 1",
        units,
    )
    dropout = params.get("dropout")
    require_param(
        isinstance(dropout, int | float) and not isinstance(dropout, bool) and 0 <= dropout < 1,
        f"{prefix}.dropout",
        "a number in [0, 1)",
        dropout,
    )
    momentum = params.get("batch_norm_momentum", 0.99)
    require_param(
        is_number(momentum) and 0 <= momentum < 1,
        f"{prefix}.batch_norm_momentum",
        "a number in [0, 1)",
        momentum,
    )
    require_param(
        isinstance(params.get("batch_norm", True), bool),
        f"{prefix}.batch_norm",
        "true or false",
        params.get("batch_norm"),
    )


def build_alexnet(
    params: Mapping[str, Any],
    num_classes: int,
    augmentation: Mapping[str, Any] | None = None,
    dtype_policy: str = "float32",
    seed: int | None = None,
) -> keras.Model:
    """Build the network described by ``params`` (see ``parameters_training.yml``)."""
    validate_model_params(params)
    inputs = keras.Input(shape=INPUT_SHAPE, dtype="uint8", name="image")
    x = layers.Rescaling(1.0 / 255, dtype=dtype_policy, name="scale_to_unit")(inputs)
    if augmentation and augmentation.get("enabled", False):
        x = RandomCropFlip(
            pad=augmentation.get("pad", 4),
            flip=augmentation.get("horizontal_flip", True),
            seed=seed,
            dtype=dtype_policy,
            name="random_crop_flip",
        )(x)
    for index, conv in enumerate(params["conv_layers"], start=1):
        x = layers.Conv2D(
            conv["filters"],
            conv["kernel_size"],
            strides=conv["strides"],
            padding="same",
            activation="relu",
            dtype=dtype_policy,
            name=f"conv{index}",
        )(x)
        if params.get("batch_norm", True):
            x = layers.BatchNormalization(
                momentum=params.get("batch_norm_momentum", 0.99),
                dtype=dtype_policy,
                name=f"bn{index}",
            )(x)
        if conv.get("pool", False):
            x = layers.MaxPooling2D(
                pool_size=params["pool_size"],
                strides=params["pool_strides"],
                dtype=dtype_policy,
                name=f"pool{index}",
            )(x)
    x = layers.Flatten(dtype=dtype_policy, name="flatten")(x)
    for index, units in enumerate(params["dense_units"], start=1):
        x = layers.Dense(units, activation="relu", dtype=dtype_policy, name=f"fc{index}")(x)
        x = layers.Dropout(params["dropout"], dtype=dtype_policy, name=f"dropout{index}")(x)
    # Softmax in float32 even under mixed precision, for a numerically safe loss.
    outputs = layers.Dense(
        num_classes, activation="softmax", dtype="float32", name="probabilities"
    )(x)
    return keras.Model(inputs, outputs, name="alexnet_cifar10")
