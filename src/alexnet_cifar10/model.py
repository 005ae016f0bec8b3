"""AlexNet adapted to CIFAR-10, in backend-agnostic Keras 3 (layers and ``keras.ops``).

The network takes uint8 images as stored in the catalog and scales them to [0, 1] in its
first layer, so model inputs stay uint8 on disk. Its default parameters
(``conf/base/parameters_training.yml``) are the published recipe: five 'same'
convolutions with ReLU, each followed by BatchNorm (``batch_norm`` per convolution),
overlapping 3x3/stride-2 max pooling after the 1st, 2nd and 5th, two dropout-regularised
dense layers and a float32 softmax.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras
from keras import layers, ops

from alexnet_cifar10.pictures import IMAGE_SHAPE


@keras.saving.register_keras_serializable(package="alexnet_cifar10")
class RandomCropFlip(layers.Layer):
    """Random translation by up to ``pad`` pixels (zero fill), horizontal flip and cutout
    (a ``cutout`` x ``cutout`` square set to zero at a random centre; DeVries & Taylor).

    Translation and flip are two batched one-hot matrix products, cutout an elementwise
    mask, so they run on any accelerator and backend, compiled with the train step, with
    no per-image loop or interpolation. Identity at inference.
    """

    # Keras reads the parameters of a layer's __init__ to record its config: a mutation
    # run's wrapper would hide them, so this one is left as written.
    # cutout=0: archives saved before the layer had it load as they were trained.
    def __init__(
        self,
        pad: int = 4,
        flip: bool = True,
        seed: int | None = None,
        cutout: int = 0,
        **kwargs: Any,
    ):  # pragma: no mutate block
        super().__init__(**kwargs)
        self.pad = pad
        self.flip = flip
        self.seed = seed
        self.cutout = cutout
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
        images = ops.einsum("bij,bjkc,blk->bilc", select_rows, images, select_cols)
        return self._cut_out(images, batch, height, width) if self.cutout else images

    def _cut_out(self, images: Any, batch: Any, height: int, width: int) -> Any:
        # The square's top-left corner: its centre anywhere in the image, so a square
        # near an edge is partly outside it.
        half = self.cutout // 2
        top = keras.random.randint((batch, 1), 0, height, seed=self.seed_generator) - half
        left = keras.random.randint((batch, 1), 0, width, seed=self.seed_generator) - half
        rows = ops.arange(height)[None, :] - top
        cols = ops.arange(width)[None, :] - left
        in_rows = ops.logical_and(rows >= 0, rows < self.cutout)
        in_cols = ops.logical_and(cols >= 0, cols < self.cutout)
        square = ops.logical_and(in_rows[:, :, None], in_cols[:, None, :])
        return images * ops.cast(ops.logical_not(square), images.dtype)[..., None]

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        own = {"pad": self.pad, "flip": self.flip, "seed": self.seed, "cutout": self.cutout}
        return {**super().get_config(), **own}


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
    side = params["input_size"]
    inputs = keras.Input(shape=(side, side, IMAGE_SHAPE[2]), dtype="uint8", name="image")
    x = layers.Rescaling(1.0 / 255, dtype=dtype_policy, name="scale_to_unit")(inputs)
    if augmentation and augmentation["enabled"]:
        x = RandomCropFlip(
            pad=augmentation["pad"],
            flip=augmentation["horizontal_flip"],
            cutout=augmentation["cutout"],
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
        if conv["batch_norm"]:
            x = layers.BatchNormalization(
                momentum=params["batch_norm_momentum"],
                dtype=dtype_policy,
                name=f"bn{index}",
            )(x)
        if conv["pool"]:
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


# The base that fine-tuning carries over from a trained model: the convolutions and their
# BatchNorm. The dense layers and the softmax are the head, built new for the new classes.
BASE_LAYERS = (layers.Conv2D, layers.BatchNormalization)


def carry_base(source: keras.Model, target: keras.Model) -> list[str]:
    """Copy the base layers' weights of ``source`` into ``target``'s layers of the same
    names; return their names. ``ValueError`` (saying which) where a layer is missing or
    its weights differ in shape."""
    carried = []
    for layer in target.layers:
        if not isinstance(layer, BASE_LAYERS):
            continue
        found = {other.name: other for other in source.layers}.get(layer.name)
        shapes = [tuple(w.shape) for w in layer.weights]
        theirs = [tuple(w.shape) for w in found.weights] if found is not None else None
        if theirs != shapes:
            raise ValueError(
                f"layer '{layer.name}' has weights {shapes} here, "
                f"{theirs or 'no such layer'} in the trained model"
            )
        layer.set_weights(found.get_weights())
        carried.append(layer.name)
    return carried


def set_phase(model: keras.Model, phase: str) -> None:
    """Fine-tuning's phases: ``head``, the base frozen; ``all``, every layer trained but
    BatchNorm, kept frozen so that it stays in inference mode (its moving statistics from
    the trained model, as the keras-io transfer-learning guide does)."""
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.trainable = False
        elif isinstance(layer, BASE_LAYERS):
            layer.trainable = phase == "all"


OPTIMIZERS = {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD", "rmsprop": "RMSprop"}
LOSSES = {
    "categorical_crossentropy": "CategoricalCrossentropy",
    "categorical_focal_crossentropy": "CategoricalFocalCrossentropy",
}


def learning_rate(params: Mapping[str, Any], steps_per_epoch: int) -> Any:
    """The constant rate, or a cosine decay after a linear warm-up, per optimizer step."""
    rate = params["optimizer"]["learning_rate"]
    schedule = params["lr_schedule"]
    if schedule["name"] == "constant":
        return rate
    total = params["epochs"] * steps_per_epoch
    warmup = round(schedule["warmup_epochs"] * steps_per_epoch)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup else rate,
        decay_steps=max(total - warmup, 1),
        warmup_target=rate if warmup else None,
        warmup_steps=warmup,
    )


def compile_model(model: keras.Model, params: Mapping[str, Any], steps_per_epoch: int) -> None:
    """Compile with the optimizer, schedule, loss and XLA setting of ``params`` (training)."""
    opt = params["optimizer"]
    kwargs: dict[str, Any] = {
        "learning_rate": learning_rate(params, steps_per_epoch),
        "use_ema": opt["ema"]["enabled"],
        "ema_momentum": opt["ema"]["momentum"],
    }
    if opt["weight_decay"] is not None:
        kwargs["weight_decay"] = opt["weight_decay"]
    if opt["name"] in ("sgd", "rmsprop"):
        kwargs["momentum"] = opt["momentum"]
    if opt["name"] == "sgd":
        kwargs["nesterov"] = opt["nesterov"]
    loss = getattr(keras.losses, LOSSES[params["loss"]])
    model.compile(
        optimizer=getattr(keras.optimizers, OPTIMIZERS[opt["name"]])(**kwargs),
        loss=loss(label_smoothing=params["label_smoothing"]),
        metrics=["accuracy"],
        jit_compile=params["jit_compile"],
    )


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
