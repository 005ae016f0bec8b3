"""Check RandomCropFlip's output, then time it against RandomTranslation + RandomFlip.

    python benchmarks/augmentation_cost.py [--batch 512] [--steps 10] [--alexnet-batch 0]
    KERAS_BACKEND=jax python benchmarks/augmentation_cost.py ...

1. Correctness of ``RandomCropFlip`` (the project's augmentation): identity with pad=0 and
   no flip and at inference; every output is its input moved by whole pixels within
   [-pad, pad] with zero fill, mirrored or not; all shifts and both flips occur.
2. Whether Keras compiles (XLA / ``jax.jit``) a model holding each augmentation:
   ``RandomTranslation`` sets ``supports_jit = False``, which turns ``jit_compile`` off for
   the whole model, so on JAX the train step runs op by op.
3. Cost per batch, in a train step: ``Rescaling -> augmentation -> pooling -> Dense`` timed
   with ``train_on_batch``; the augmentation's cost is the step time minus that of the same
   model without it. A diagnostic row forces ``supports_jit`` on for the Keras layers, to
   tell the layers' own cost from that of the un-compiled step they cause.
   ``--alexnet-batch N`` also times the project's network with each.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
from keras import layers

from alexnet_cifar10.model import RandomCropFlip, build_alexnet
from result_file import write_result

SIDE = 32
RECIPE_MODEL: dict[str, Any] = {
    "conv_layers": [
        {"filters": 96, "kernel_size": 3, "strides": 1, "pool": True, "batch_norm": True},
        {"filters": 256, "kernel_size": 5, "strides": 1, "pool": True, "batch_norm": True},
        {"filters": 384, "kernel_size": 3, "strides": 1, "pool": False, "batch_norm": True},
        {"filters": 384, "kernel_size": 3, "strides": 1, "pool": False, "batch_norm": True},
        {"filters": 256, "kernel_size": 3, "strides": 1, "pool": True, "batch_norm": True},
    ],
    "pool_size": 3,
    "pool_strides": 2,
    "batch_norm_momentum": 0.99,
    "dense_units": [1024, 1024],
    "dropout": 0.5,
}


def _shift(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``out[i, j] = image[i + dy, j + dx]``, zero where that falls outside."""
    out = np.zeros_like(image)
    h, w = image.shape[:2]
    out[max(0, -dy) : min(h, h - dy), max(0, -dx) : min(w, w - dx)] = image[
        max(0, dy) : min(h, h + dy), max(0, dx) : min(w, w + dx)
    ]
    return out


def _match(source: np.ndarray, output: np.ndarray, pad: int) -> tuple[int, int, bool] | None:
    """The (dy, dx, flipped) that turns ``source`` into ``output`` exactly, if any."""
    for flipped in (False, True):
        base = source[:, ::-1] if flipped else source
        for dy in range(-pad, pad + 1):
            for dx in range(-pad, pad + 1):
                if np.array_equal(_shift(base, dy, dx), output):
                    return dy, dx, flipped
    return None


def check_random_crop_flip(seed: int = 0) -> None:
    """Assert RandomCropFlip moves whole pixels with zero fill and flips; raise if not."""
    rng = np.random.default_rng(seed)
    # Integer pixels >= 1 are exact in float32, so any blending, mis-routing or a fill
    # other than zero shows up as a mismatch.
    images = rng.integers(1, 256, size=(1024, SIDE, SIDE, 3)).astype("float32")

    identity = RandomCropFlip(pad=0, flip=False, seed=seed)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(identity(images, training=True)), images
    )
    layer = RandomCropFlip(pad=4, flip=True, seed=seed)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(images, training=False)), images)

    for pad, flip in ((4, False), (0, True), (4, True)):
        layer = RandomCropFlip(pad=pad, flip=flip, seed=seed)
        first = keras.ops.convert_to_numpy(layer(images, training=True))
        second = keras.ops.convert_to_numpy(layer(images, training=True))
        assert not np.array_equal(first, second), "two calls drew the same augmentation"
        found = [_match(src, out, pad) for src, out in zip(images, first, strict=True)]
        assert all(f is not None for f in found), f"pad={pad} flip={flip}: not a shift/flip"
        shifts = {(f[0], f[1]) for f in found if f is not None}
        flips = [f[2] for f in found if f is not None]
        expected_shifts = (2 * pad + 1) ** 2
        # 1024 draws miss one of 81 shifts with probability < 81 * (80/81)^1024 ~ 3e-4.
        assert len(shifts) == expected_shifts, f"only {len(shifts)} of {expected_shifts} shifts"
        if flip:
            share = float(np.mean(flips))
            assert 0.35 < share < 0.65, f"flip share {share:.2f}"  # noqa: PLR2004
        else:
            assert not any(flips), "flipped although flip=False"
    print("RandomCropFlip output: ok (identity at pad=0/no flip and at inference; whole-pixel")
    print("  shifts within [-pad, pad] with zero fill; every shift drawn; ~half flipped)")


def _keras_translation_flip(pad: int, seed: int) -> list[layers.Layer]:
    factor = pad / SIDE
    return [
        layers.RandomTranslation(factor, factor, fill_mode="constant", seed=seed),
        layers.RandomFlip("horizontal", seed=seed),
    ]


def _keras_translation_flip_jit(pad: int, seed: int) -> list[layers.Layer]:
    """The same two layers with ``supports_jit`` forced on: is the layer slow, or the
    un-compiled step it causes? (A diagnostic only; Keras marks the layer not jittable.)"""
    augmentation = _keras_translation_flip(pad, seed)
    for layer in augmentation:
        layer.supports_jit = True
    return augmentation


AUGMENTATIONS: dict[str, Callable[[int, int], list[layers.Layer]]] = {
    "none": lambda pad, seed: [],
    "RandomCropFlip": lambda pad, seed: [RandomCropFlip(pad=pad, flip=True, seed=seed)],
    # Compiled first: on an accelerator the un-compiled one below may take minutes.
    "RandomTranslation+Flip, jit forced": _keras_translation_flip_jit,
    "RandomTranslation+RandomFlip": _keras_translation_flip,
}


def _probe_model(augmentation: list[layers.Layer]) -> keras.Model:
    inputs = keras.Input((SIDE, SIDE, 3), dtype="uint8")
    x = layers.Rescaling(1 / 255)(inputs)
    for layer in augmentation:
        x = layer(x)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(10, activation="softmax")(x))


def _alexnet(augmentation: list[layers.Layer]) -> keras.Model:
    base = build_alexnet(RECIPE_MODEL, num_classes=10)
    inputs = keras.Input((SIDE, SIDE, 3), dtype="uint8")
    x = base.get_layer("scale_to_unit")(inputs)
    for layer in augmentation:
        x = layer(x)
    # The rest of the project's network, layer by layer, after the augmentation.
    for layer in base.layers[2:]:
        x = layer(x)
    return keras.Model(inputs, x)


def time_train_steps(model: keras.Model, batch: int, steps: int) -> dict[str, Any]:
    """Compile with ``jit_compile='auto'``; time the first and the next ``steps`` steps."""
    model.compile(optimizer="adam", loss="categorical_crossentropy", jit_compile="auto")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(batch, SIDE, SIDE, 3), dtype=np.uint8)
    y = np.eye(10, dtype="float32")[rng.integers(0, 10, size=batch)]
    start = time.perf_counter()
    model.train_on_batch(x, y)  # returns host floats: the step has finished
    first = time.perf_counter() - start
    model.train_on_batch(x, y)
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    per_step = (time.perf_counter() - start) / steps
    return {"jit_compile": model.jit_compile, "first_step_s": first, "step_ms": per_step * 1e3}


def _timed_table(
    title: str,
    make_model: Callable[[list[layers.Layer]], keras.Model],
    pad: int,
    batch: int,
    steps: int,
) -> list[dict[str, Any]]:
    """Time each augmentation in ``make_model``, print its row as soon as it is done and
    return the rows."""
    print(f"\n{title} (batch {batch}, {keras.backend.backend()} backend)")
    print(f"{'augmentation':36s} {'jit':>5s} {'1st step s':>10s} {'ms/step':>9s} {'aug ms':>8s}")
    base = None
    rows = []
    for name, make in AUGMENTATIONS.items():
        row = time_train_steps(make_model(make(pad, 1)), batch, steps)
        base = row["step_ms"] if base is None else base
        rows.append({"augmentation": name, **row, "augmentation_ms": row["step_ms"] - base})
        print(
            f"{name:36s} {row['jit_compile']!s:>5s} {row['first_step_s']:10.2f} "
            f"{row['step_ms']:9.1f} {row['step_ms'] - base:8.1f}",
            flush=True,
        )
    return rows


def main() -> None:
    """Run the checks and the timings; print a table per model."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--pad", type=int, default=4)
    parser.add_argument(
        "--alexnet-batch", type=int, default=0, help="also time the full network (0: skip)"
    )
    parser.add_argument("--alexnet-steps", type=int, default=3)
    parser.add_argument("--out", type=Path, help="also write the tables here as JSON")
    args = parser.parse_args()
    print(f"Keras {keras.__version__}, backend {keras.backend.backend()}")
    check_random_crop_flip()

    warnings.filterwarnings("ignore", message=".*jit_compile.*")
    tables = {}
    tables["augmentation alone"] = _timed_table(
        "Augmentation alone: Rescaling -> aug -> pooling -> Dense",
        _probe_model,
        args.pad,
        args.batch,
        args.steps,
    )
    if args.alexnet_batch:
        tables["the project's network"] = _timed_table(
            "The project's network with each augmentation",
            _alexnet,
            args.pad,
            args.alexnet_batch,
            args.alexnet_steps,
        )
    print(
        "\njit: whether Keras compiles the train step (XLA on TF, jax.jit on JAX); 'False' "
        "for RandomTranslation, whose supports_jit is False. aug ms: step time minus 'none'."
    )
    if args.out:
        figures = {"keras": keras.__version__, "backend": keras.backend.backend()}
        write_result(args.out, {**figures, "batch": args.batch, "steps": args.steps, **tables})


if __name__ == "__main__":
    main()
