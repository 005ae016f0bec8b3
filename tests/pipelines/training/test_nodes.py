"""Unit tests of the training nodes: build, describe, compile and fit."""

from __future__ import annotations

import json
import platform
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
import pytest
from synthetic_cifar import CLASS_NAMES, make_split

from alexnet_cifar10.distribution import ENGINES, placement
from alexnet_cifar10.model import compile_model, learning_rate
from alexnet_cifar10.pipelines.training.callbacks import (
    EpochBackup,
    HistoryBackup,
    fit_callbacks,
    resume_dir,
)
from alexnet_cifar10.pipelines.training.fine_tuning import Phase
from alexnet_cifar10.pipelines.training.nodes import (
    TrainingDivergedError,
    _fit,
    _package_version,
    _run_facts,
    build_model,
    summarise_model,
    train_model,
    training_curves,
)
from alexnet_cifar10.provenance import TrainedModel

CONTEXT = {"kedro_env": "unit"}


def _fit_model(*args: Any, **kwargs: Any) -> tuple[keras.Model, pd.DataFrame, dict]:
    """``train_model`` with the project's class names: the network, its history, its card."""
    model, train, validation, params, seed, run_label, context = args
    trained = train_model(
        model, train, validation, params, seed, CLASS_NAMES, run_label, context, **kwargs
    )
    return trained.network, trained.history, trained.card


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
    model = _build(tiny_training, seed=9)
    assert model.get_layer("conv1").dtype_policy.name == "mixed_bfloat16"
    assert model.get_layer("probabilities").dtype_policy.name == "float32"
    augmentation = model.get_layer("random_crop_flip")
    assert (augmentation.pad, augmentation.seed) == (tiny_training["augmentation"]["pad"], 9)


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
    assert summary.index.tolist() == list(range(len(model.layers) + 1))
    assert summary.iloc[-1].to_dict() == {
        "layer": "total",
        "type": "",
        "output_shape": "",
        "parameters": model.count_params(),
        "multiply_adds": summary["multiply_adds"][:-1].sum(),
    }
    assert summary["parameters"][:-1].sum() == model.count_params()
    assert summary["multiply_adds"].iloc[-1] > 0
    # Whole numbers: the summary is saved as CSV, where a float column would read "1234.0".
    assert summary[["parameters", "multiply_adds"]].dtypes.map(pd.api.types.is_integer_dtype).all()


def _rate(schedule: Any, step: int) -> float:
    return float(keras.ops.convert_to_numpy(schedule(step)))


def test_a_constant_learning_rate_is_the_optimizers(tiny_training: dict) -> None:
    assert learning_rate(tiny_training, 10) == tiny_training["optimizer"]["learning_rate"]


def test_the_learning_rate_warms_up_linearly_then_decays_along_a_cosine(
    tiny_training: dict,
) -> None:
    tiny_training.update(epochs=4, lr_schedule={"name": "warmup_cosine", "warmup_epochs": 1})
    tiny_training["optimizer"]["learning_rate"] = 0.1
    schedule = learning_rate(tiny_training, 10)
    # 10 steps of warmup from 0, then half a cosine over the 30 steps left.
    steps = (0, 5, 10, 25, 40)
    assert [_rate(schedule, step) for step in steps] == pytest.approx(
        [0.0, 0.05, 0.1, 0.05, 0.0], abs=1e-7
    )


@pytest.mark.parametrize(
    ("epochs", "steps_per_epoch", "rates"),
    # step: rate, over 2 epochs of 10 steps; and a fit of a single step, which ends at 0 too.
    [(2, 10, {0: 0.1, 10: 0.05, 20: 0.0}), (1, 1, {0: 0.1, 1: 0.0})],
)
def test_without_warmup_epochs_the_cosine_starts_at_the_rate(
    tiny_training: dict, epochs: int, steps_per_epoch: int, rates: dict[int, float]
) -> None:
    tiny_training.update(epochs=epochs, lr_schedule={"name": "warmup_cosine", "warmup_epochs": 0})
    tiny_training["optimizer"]["learning_rate"] = 0.1
    schedule = learning_rate(tiny_training, steps_per_epoch)
    assert {step: _rate(schedule, step) for step in rates} == pytest.approx(rates, abs=1e-7)


def test_compile_takes_the_optimizer_loss_and_xla_asked(tiny_training: dict) -> None:
    model = _build(tiny_training)
    tiny_training.update(
        optimizer={
            **tiny_training["optimizer"],
            "name": "adamw",
            "learning_rate": 0.002,
            "weight_decay": 0.05,
        },
        loss="categorical_focal_crossentropy",
        label_smoothing=0.1,
        jit_compile=False,
    )
    compile_model(model, tiny_training, steps_per_epoch=10)
    assert type(model.optimizer) is keras.optimizers.AdamW
    assert model.optimizer.weight_decay == 0.05
    assert keras.ops.convert_to_numpy(model.optimizer.learning_rate) == pytest.approx(0.002)
    assert type(model.loss) is keras.losses.CategoricalFocalCrossentropy
    assert model.loss.label_smoothing == 0.1
    assert model.jit_compile is False


def test_compile_takes_nesterov_momentum_and_weight_averaging(tiny_training: dict) -> None:
    model = _build(tiny_training)
    tiny_training["optimizer"].update(
        name="sgd", learning_rate=0.05, momentum=0.9, nesterov=True,
        ema={"enabled": True, "momentum": 0.95},
    )  # fmt: skip
    compile_model(model, tiny_training, steps_per_epoch=10)
    optimizer = model.optimizer
    assert type(optimizer) is keras.optimizers.SGD
    assert (optimizer.momentum, optimizer.nesterov) == (0.9, True)
    assert (optimizer.use_ema, optimizer.ema_momentum) == (True, 0.95)


def test_compile_without_weight_decay_with_a_warmup_schedule(tiny_training: dict) -> None:
    model = _build(tiny_training)
    tiny_training.update(
        optimizer={**tiny_training["optimizer"], "name": "sgd", "learning_rate": 0.01},
        lr_schedule={"name": "warmup_cosine", "warmup_epochs": 1},
        epochs=2,
        jit_compile=True,
    )
    compile_model(model, tiny_training, steps_per_epoch=10)
    assert type(model.optimizer) is keras.optimizers.SGD
    assert model.optimizer.weight_decay is None
    assert keras.ops.convert_to_numpy(model.optimizer.learning_rate) == 0.0, "warming up"
    assert type(model.loss) is keras.losses.CategoricalCrossentropy
    assert model.get_compile_config()["metrics"] == ["accuracy"]
    assert model.jit_compile is True


def test_package_versions_of_missing_packages_are_none() -> None:
    assert _package_version("numpy") == np.__version__
    assert _package_version("no-such-package-for-alexnet") is None


def test_the_fit_callbacks_count_steps_of_each_batch(tiny_training: dict, tmp_path: Path) -> None:
    tiny_training.update(
        epochs=4,
        batch_size=16,
        progress_seconds=5.0,
        resume={"enabled": True, "backup_dir": str(tmp_path)},
    )
    train, validation = make_split(70), make_split(20, 1)
    epoch_log, (progress, log, history, backup) = fit_callbacks(tiny_training, 3, train, validation)
    assert log is epoch_log and epoch_log.epochs == 4
    # 70 images: 4 batches of 16 and one of 6; 20 validation images: 2 batches.
    assert (progress.epochs, progress.steps_per_epoch, progress.validation_steps) == (4, 5, 2)
    assert (progress.batch_size, progress.every_seconds) == (16, 5.0)
    assert isinstance(history, HistoryBackup) and history.epoch_log is epoch_log
    assert isinstance(backup, EpochBackup)
    assert history.path.parent == resume_dir(tiny_training, 3, train)
    assert backup.backup_dir == str(history.path.parent)
    tiny_training["resume"]["enabled"] = False
    assert len(fit_callbacks(tiny_training, 3, train, validation)[1]) == 2


class _RecordingModel:
    """Records what it is asked to fit."""

    def __init__(self) -> None:
        self.fits: list[tuple[tuple, dict]] = []

    def fit(self, *args: Any, **kwargs: Any) -> None:
        self.fits.append((args, kwargs))


def test_the_fit_shuffles_batches_quietly_with_the_callbacks(tiny_training: dict) -> None:
    """Quiet: the node's own callbacks report progress, in a terminal or not."""
    train, validation = make_split(32), make_split(16, 1)
    model, callbacks = _RecordingModel(), [keras.callbacks.Callback()]
    phase = Phase("all", tiny_training["epochs"], tiny_training)
    _fit(model, placement("one_device"), train, validation, phase, 0, callbacks)
    [((images, labels), kwargs)] = model.fits
    np.testing.assert_array_equal(images, train["images"])
    np.testing.assert_array_equal(labels, train["labels"])
    validation_images, validation_labels = kwargs.pop("validation_data")
    np.testing.assert_array_equal(validation_images, validation["images"])
    np.testing.assert_array_equal(validation_labels, validation["labels"])
    assert kwargs == {
        "initial_epoch": 0,
        "epochs": 1,
        "batch_size": 16,
        "class_weight": None,
        "shuffle": True,
        "callbacks": callbacks,
        "verbose": 0,
    }


def test_the_run_facts_name_the_software_the_data_and_the_last_epoch() -> None:
    where = placement("one_device")
    history = pd.DataFrame({"epoch": [1, 2, 3], "loss": [0.5, 0.25, 0.125]})
    facts = _run_facts(where, 16, 1.23456, history, make_split(48), make_split(16, 1))
    backend = keras.backend.backend()
    assert facts == {
        "device": where.devices[0],
        "devices": keras.distribution.list_devices(),
        "distribution": where.facts(16),
        "backend": backend,
        "backend_version": version(backend),
        "keras_version": keras.__version__,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "fit_seconds": 1.235,
        "epochs_run": 3,
        "train_images": 48,
        "validation_images": 16,
        "final": {"epoch": 3, "loss": 0.125},
    }
    nothing = _run_facts(where, 16, 0.0, pd.DataFrame(), make_split(48), make_split(16, 1))
    assert (nothing["epochs_run"], nothing["final"]) == (0, {})


def test_train_model_returns_model_history_and_facts(tiny_training: dict) -> None:
    start = time.perf_counter()
    model, history, card = _fit_model(
        _build(tiny_training), make_split(64), make_split(32, 1), tiny_training, 0, "t", CONTEXT
    )
    elapsed = time.perf_counter() - start
    facts = card["run"]
    # The fit's wall time: its epochs' and no more than the node's.
    assert history["epoch_seconds"].sum() - 0.01 <= facts["fit_seconds"] <= elapsed
    assert facts["final"] == history.iloc[-1].to_dict()
    assert list(history.columns[:1]) == ["epoch"]
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "epoch_seconds"} <= set(history)
    assert len(history) == 1
    assert history["learning_rate"].tolist() == pytest.approx([0.001])
    assert facts["backend"] == keras.backend.backend()
    assert facts["device"].lower().startswith(("cpu", "gpu"))
    assert facts["train_images"] == 64 and facts["epochs_run"] == 1
    assert (card["run_label"], card["kedro_env"], card["model_version"]) == ("t", "unit", None)
    assert card["class_names"] == CLASS_NAMES
    assert card["parameters"] == {"seed": 0, "training": tiny_training}
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
    _, history, _ = _fit_model(
        _build(tiny_training), make_split(32), make_split(16, 1), tiny_training, 0, "t", CONTEXT
    )
    # The rate after each epoch's last step: warmed up to the target, then decayed to 0.
    assert history["learning_rate"].tolist() == pytest.approx([0.001, 0.0], abs=1e-6)


def test_train_model_is_seeded(tiny_training: dict) -> None:
    runs = [
        _fit_model(
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
            fits[strategy] = _fit_model(
                _build(tiny_training), make_split(32), make_split(16, 1), params, 0, "t", CONTEXT
            )
    (one, _, _), (parallel, _, card) = fits.values()
    facts = card["run"]
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
        _fit_model(
            _build(tiny_training), make_split(32), make_split(16), tiny_training, 0, "t", CONTEXT
        )
    assert "No GPU found: training on the CPU" in caplog.text
    assert "Estimated training time:" in caplog.text
    assert "make quick" not in caplog.text, "a run of seconds is not pointed at the smoke run"


def test_divergence_stops_with_a_clear_error(tiny_training: dict) -> None:
    train = make_split(32)
    train["labels"][:] = np.nan
    with pytest.raises(TrainingDivergedError) as error:
        _fit_model(_build(tiny_training), train, make_split(16, 1), tiny_training, 0, "t", CONTEXT)
    assert str(error.value) == (
        "Training diverged: the loss became NaN or infinite in epoch 1. No model was saved. "
        "Lower training.optimizer.learning_rate (now 0.001) or check the inputs."
    )


class _Crash(RuntimeError):
    """What stops a fit half-way in these tests."""


class _CrashAfterFirstEpoch(keras.callbacks.Callback):
    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        raise _Crash


def test_a_fit_stopped_after_epoch_1_resumes_at_epoch_2(
    tiny_training: dict, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tiny_training.update(epochs=3, resume={"enabled": True, "backup_dir": str(tmp_path)})
    train, validation = make_split(32), make_split(16, 1)
    # The node's own callbacks run first: epoch 1's resume point is saved, then the crash.
    with pytest.raises(_Crash):
        _fit_model(
            _build(tiny_training), train, validation, tiny_training, 0, "t", CONTEXT,
            callbacks=[_CrashAfterFirstEpoch()],
        )  # fmt: skip
    [folder] = tmp_path.iterdir()
    assert folder == resume_dir(tiny_training, 0, train)
    saved = json.loads((folder / "history.json").read_text())
    assert [row["epoch"] for row in saved] == [1]
    with caplog.at_level("INFO"):
        _, history, facts = _fit_model(
            _build(tiny_training), train, validation, tiny_training, 0, "t", CONTEXT
        )
    assert "Resuming training at epoch 2 of 3" in caplog.text
    assert history["epoch"].tolist() == [1, 2, 3] and facts["run"]["epochs_run"] == 3
    assert history.iloc[0].to_dict() == saved[0], "epoch 1 is the first fit's own"
    assert not folder.exists(), "a finished fit removes its resume point"


def test_each_fit_resumes_from_its_own_folder(tiny_training: dict, tmp_path: Path) -> None:
    """Parameters, seed and training data name the folder; where the fit runs does not."""
    params = {**tiny_training, "resume": {"enabled": True, "backup_dir": str(tmp_path)}}
    train = make_split(64)
    folder = resume_dir(params, 0, train)
    assert folder.parent == tmp_path and len(folder.name) == 16
    elsewhere = {**params, "progress_seconds": 1, "distribution": "data_parallel"}
    assert resume_dir(elsewhere, 0, train) == folder
    relabelled = {**train, "labels": train["labels"][::-1].copy()}
    repainted = {**train, "images": train["images"].copy()}
    repainted["images"][0] ^= 1
    others = {
        resume_dir(params, 1, train),
        resume_dir({**params, "epochs": 2}, 0, train),
        resume_dir(params, 0, relabelled),
        resume_dir(params, 0, repainted),
    }
    assert folder not in others and len(others) == 4
    # The parameters as another file lists them: the same fit.
    reordered = {key: params[key] for key in reversed(params)}
    reordered["optimizer"] = dict(reversed(params["optimizer"].items()))
    assert resume_dir(reordered, 0, train) == folder


def _repainted(split: dict[str, np.ndarray], index: int) -> dict[str, np.ndarray]:
    images = split["images"].copy()
    images[index] ^= 1
    return {**split, "images": images}


def test_the_resume_folder_reads_every_image_of_a_small_set_and_64_of_a_large_one(
    tiny_training: dict,
) -> None:
    """A fixed-size sample: naming the folder costs no pass over a large training set."""
    small, large = make_split(32), make_split(128)
    assert resume_dir(tiny_training, 0, _repainted(small, 1)) != resume_dir(tiny_training, 0, small)
    # 128 images: every other one, from the first.
    folder = resume_dir(tiny_training, 0, large)
    assert resume_dir(tiny_training, 0, _repainted(large, 126)) != folder
    assert resume_dir(tiny_training, 0, _repainted(large, 127)) == folder


def test_a_diverged_fit_leaves_no_resume_point(tiny_training: dict, tmp_path: Path) -> None:
    tiny_training["resume"] = {"enabled": True, "backup_dir": str(tmp_path)}
    train = make_split(32)
    train["labels"][:] = np.nan
    with pytest.raises(TrainingDivergedError):
        _fit_model(_build(tiny_training), train, make_split(16, 1), tiny_training, 0, "t", CONTEXT)
    assert not any(path.is_file() for path in tmp_path.rglob("*"))


def test_weight_averaging_validates_and_saves_the_averaged_weights(tiny_training: dict) -> None:
    """Every epoch is validated with the averaged weights, and the model that the node
    returns holds them: with a momentum near 1 they stay close to the initial ones."""
    tiny_training.update(epochs=2)
    tiny_training["optimizer"].update(learning_rate=0.01, ema={"enabled": True, "momentum": 0.999})
    untrained = _build(tiny_training)
    start = [weight.copy() for weight in untrained.get_weights()]
    model, history, _ = _fit_model(
        untrained, make_split(64), make_split(32, 1), tiny_training, 0, "t", CONTEXT
    )
    assert len(history) == 2 and history["val_loss"].notna().all()
    kernel = model.get_layer("fc1").kernel
    first = next(w for w in start if w.shape == tuple(kernel.shape))
    moved = np.abs(keras.ops.convert_to_numpy(kernel) - first).max()
    tiny_training["optimizer"]["ema"]["enabled"] = False
    plain, _, _ = _fit_model(
        _build(tiny_training), make_split(64), make_split(32, 1), tiny_training, 0, "t", CONTEXT
    )
    plain_moved = np.abs(keras.ops.convert_to_numpy(plain.get_layer("fc1").kernel) - first).max()
    assert moved < plain_moved / 5


def test_training_curves_are_one_point_per_epoch_and_recorded_value() -> None:
    history = pd.DataFrame({"epoch": [1, 2], "loss": [2.0, 1.5], "learning_rate": [0.001, np.nan]})
    assert training_curves(TrainedModel(None, {}, history)) == {
        "loss": [{"step": 1, "value": 2.0}, {"step": 2, "value": 1.5}],
        "learning_rate": [{"step": 1, "value": 0.001}],
    }
