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

INPUT_SHAPE = (32, 32, 3)


@keras.saving.register_keras_serializable(package="alexnet_cifar10")
class RandomCropFlip(layers.Layer):
    """Random translation by up to ``pad`` pixels (zero fill) and horizontal flip.

    Both are expressed as two batched one-hot matrix products, so they run as plain
    matmuls on any accelerator and backend, with no per-image loop or interpolation.
    Identity at inference.
    """

    # Keras reads the parameters of a layer's __init__ to record its config: a mutation
    # run's wrapper would hide them, so this one is left as written.
    def __init__(
        self, pad: int = 4, flip: bool = True, seed: int | None = None, **kwargs: Any
    ):  # pragma: no mutate block
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


# Passed to keras.saving.load_model so that safe-mode loading rebuilds the custom layer.
CUSTOM_OBJECTS = {keras.saving.get_registered_name(RandomCropFlip): RandomCropFlip}


def build_alexnet(
    params: Mapping[str, Any],
    num_classes: int,
    augmentation: Mapping[str, Any] | None = None,
    dtype_policy: str = "float32",
    seed: int | None = None,
) -> keras.Model:
    """Build the network described by ``params`` (see ``parameters_training.yml``;
    ``alexnet_cifar10.validation.Network`` says what they may hold)."""
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
        # A seed of its own: a loaded model's dropout masks then depend on the run's seed
        # alone, not on what the process drew before it loaded the model.
        x = layers.Dropout(
            params["dropout"],
            seed=None if seed is None else seed + index,
            dtype=dtype_policy,
            name=f"dropout{index}",
        )(x)
    # Softmax in float32 even under mixed precision, for a numerically safe loss.
    outputs = layers.Dense(
        num_classes, activation="softmax", dtype="float32", name="probabilities"
    )(x)
    return keras.Model(inputs, outputs, name="alexnet_cifar10")


def _multiply_adds(layer: layers.Layer) -> int:
    """Multiply-adds per image of a convolution or dense layer; 0 for the others
    (scaling, BatchNorm and pooling are elementwise or comparisons, and cost little)."""
    if isinstance(layer, layers.Conv2D):
        kernel_h, kernel_w, channels_in, channels_out = layer.kernel.shape
        out_h, out_w = layer.output.shape[1:3]
        return int(out_h * out_w * channels_out * kernel_h * kernel_w * channels_in)
    if isinstance(layer, layers.Dense):
        units_in, units_out = layer.kernel.shape
        return int(units_in * units_out)
    return 0


def layer_costs(model: keras.Model) -> list[dict[str, Any]]:
    """Each layer's type, output shape, parameter count and multiply-adds per image."""
    return [
        {
            "layer": layer.name,
            "type": type(layer).__name__,
            "output_shape": "x".join(str(size) for size in layer.output.shape[1:]),
            "parameters": int(layer.count_params()),
            "multiply_adds": _multiply_adds(layer),
        }
        for layer in model.layers
    ]
