"""Unit tests of the training nodes: build, describe, compile and fit."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from synthetic_cifar import CLASS_NAMES, make_split

from alexnet_cifar10.distribution import ENGINES
from alexnet_cifar10.pipelines.training.nodes import (
    TrainingDivergedError,
    build_model,
    summarise_model,
    train_model,
)

CONTEXT = {"kedro_env": "unit", "save_version": "2026-01-01T00.00.00.000Z"}


def _build(training: dict, seed: int = 0) -> keras.Model:
    return build_model(
        training["model"], training["augmentation"], training["precision"], seed, CLASS_NAMES
    )


def test_build_model_is_seeded_and_has_one_output_per_class(tiny_training: dict) -> None:
    first, again, other = (
        _build(tiny_training, 3),
        _build(tiny_training, 3),
        _build(tiny_training, 4),
    )
    assert first.output.shape[-1] == len(CLASS_NAMES)
    for a, b in zip(first.get_weights(), again.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first.get_weights()[0], other.get_weights()[0])
    assert not first.compiled, "train_model compiles it, build_model does not"


def test_build_model_applies_precision_and_augmentation(tiny_training: dict) -> None:
    tiny_training["precision"] = "mixed_bfloat16"
    tiny_training["augmentation"]["enabled"] = True
    model = _build(tiny_training)
    assert model.get_layer("conv1").dtype_policy.name == "mixed_bfloat16"
    assert model.get_layer("probabilities").dtype_policy.name == "float32"
    assert model.get_layer("random_crop_flip").pad == tiny_training["augmentation"]["pad"]


def test_model_summary_lists_every_layer_then_totals(tiny_training: dict) -> None:
    model = _build(tiny_training)
    summary = summarise_model(model)
    assert summary["layer"].tolist() == [layer.name for layer in model.layers] + ["total"]
    assert list(summary.columns) == [
        "layer",
        "type",
        "output_shape",
        "parameters",
        "multiply_adds",
    ]
    total = summary.iloc[-1]
    assert total["parameters"] == model.count_params() == summary["parameters"][:-1].sum()
    assert total["multiply_adds"] == summary["multiply_adds"][:-1].sum() > 0


def test_train_model_returns_model_history_and_facts(tiny_training: dict) -> None:
    model, history, facts = train_model(
        _build(tiny_training), make_split(64), make_split(32, 1), tiny_training, 0, "t", CONTEXT
    )
    assert list(history.columns[:1]) == ["epoch"]
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "epoch_seconds"} <= set(history)
    assert len(history) == 1
    assert history["learning_rate"].tolist() == pytest.approx([0.001])
    assert facts["backend"] == keras.backend.backend()
    assert facts["device"].lower().startswith(("cpu", "gpu"))
    assert facts["train_images"] == 64 and facts["epochs_run"] == 1
    assert facts["run_label"] == "t"
    assert facts["kedro_env"] == "unit"
    assert facts["model_version"] == CONTEXT["save_version"]
    assert facts["parameters"]["epochs"] == 1 and facts["parameters"]["seed"] == 0
    assert facts["distribution"] == {
        "strategy": "one_device",
        "engine": None,
        "devices": [facts["device"]],
        "processes": 1,
        "global_batch": 16,
        "per_device_batch": 16,
    }
    probabilities = model.predict(make_split(4)["images"], verbose=0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_the_history_follows_the_learning_rate_schedule(tiny_training: dict) -> None:
    tiny_training.update(epochs=2, lr_schedule={"name": "warmup_cosine", "warmup_epochs": 1})
    _, history, _ = train_model(
        _build(tiny_training), make_split(32), make_split(16, 1), tiny_training, 0, "t", CONTEXT
    )
    # The rate after each epoch's last step: warmed up to the target, then decayed to 0.
    assert history["learning_rate"].tolist() == pytest.approx([0.001, 0.0], abs=1e-6)


def test_train_model_is_seeded(tiny_training: dict) -> None:
    runs = [
        train_model(
            _build(tiny_training), make_split(32), make_split(16, 1), tiny_training, 7, "t", CONTEXT
        )[1]
        for _ in range(2)
    ]
    np.testing.assert_allclose(runs[0]["loss"], runs[1]["loss"], rtol=1e-5)


def test_data_parallel_on_this_process_trains_what_one_device_trains(
    tiny_training: dict, caplog: pytest.LogCaptureFixture
) -> None:
    """Through the engine (one device here: TensorFlow, see tests/test_data_parallel.py for
    two) and back to a plain model, with nearly the weights of the one-device fit."""
    tiny_training["augmentation"]["enabled"] = True
    fits = {}
    for strategy in ("one_device", "data_parallel"):
        params = {**tiny_training, "distribution": strategy}
        with caplog.at_level("INFO"):
            fits[strategy] = train_model(
                _build(tiny_training), make_split(32), make_split(16, 1), params, 0, "t", CONTEXT
            )
    (one, _, _), (parallel, _, facts) = fits.values()
    assert facts["distribution"]["strategy"] == "data_parallel"
    assert facts["distribution"]["engine"] == ENGINES[keras.backend.backend()]
    assert f"data_parallel with {ENGINES[keras.backend.backend()]}, 1 process" in caplog.text
    # Apart by a share of how far training moved them: the engine's step is another program
    # (BatchNorm statistics from summed replicas, say), and Adam's first steps enlarge its
    # rounding differences. Measured: 0.0032.
    start, ours, reference = (m.get_weights() for m in (_build(tiny_training), parallel, one))
    apart = sum(((a - b) ** 2).sum() for a, b in zip(ours, reference, strict=True))
    moved = sum(((b - s) ** 2).sum() for b, s in zip(reference, start, strict=True))
    assert (apart / moved) ** 0.5 < 0.02
    plain = _build(tiny_training)
    assert [type(v.value) for v in parallel.variables] == [type(v.value) for v in plain.variables]
    assert keras.ops.convert_to_numpy(parallel.optimizer.iterations) == 2
    assert not parallel.get_layer("bn1").synchronized


def test_train_model_logs_that_it_trains_on_the_cpu(
    tiny_training: dict, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("INFO"):
        train_model(
            _build(tiny_training), make_split(32), make_split(16), tiny_training, 0, "t", CONTEXT
        )
    assert "No GPU found: training on the CPU" in caplog.text
    assert "make quick" in caplog.text
    assert "Estimated training time:" in caplog.text


def test_divergence_stops_with_a_clear_error(tiny_training: dict) -> None:
    train = make_split(32)
    train["labels"][:] = np.nan
    with pytest.raises(TrainingDivergedError, match="loss became NaN or infinite in epoch 1"):
        train_model(_build(tiny_training), train, make_split(16, 1), tiny_training, 0, "t", CONTEXT)
