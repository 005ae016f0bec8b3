"""Nodes of the training pipeline: build, compile and fit the network."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import platform
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd

from alexnet_cifar10.model import build_alexnet, validate_model_params
from alexnet_cifar10.pipelines.training.callbacks import EpochLog, ResumePoint
from alexnet_cifar10.validation import is_int, is_number, require_param

logger = logging.getLogger(__name__)

OPTIMIZERS = {
    "adam": keras.optimizers.Adam,
    "adamw": keras.optimizers.AdamW,
    "sgd": keras.optimizers.SGD,
    "rmsprop": keras.optimizers.RMSprop,
}
LOSSES = {
    "categorical_crossentropy": keras.losses.CategoricalCrossentropy,
    "categorical_focal_crossentropy": keras.losses.CategoricalFocalCrossentropy,
}
SCHEDULES = ("constant", "warmup_cosine")
PRECISIONS = ("float32", "mixed_bfloat16")
JIT_CHOICES = ("auto", True, False)
_BACKEND_PACKAGES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; no model is saved from such a run."""


def validate_training_params(params: dict[str, Any]) -> None:
    """Reject unusable training parameters, naming the parameter and its allowed values."""
    validate_model_params(params["model"])
    require_param(
        is_int(params["epochs"], 1), "training.epochs", "an integer >= 1", params["epochs"]
    )
    require_param(
        is_int(params["batch_size"], 1),
        "training.batch_size",
        "an integer >= 1",
        params["batch_size"],
    )
    opt = params["optimizer"]
    require_param(
        opt.get("name") in OPTIMIZERS,
        "training.optimizer.name",
        f"one of {sorted(OPTIMIZERS)}",
        opt.get("name"),
    )
    require_param(
        is_number(opt.get("learning_rate")) and opt["learning_rate"] > 0,
        "training.optimizer.learning_rate",
        "a number > 0",
        opt.get("learning_rate"),
    )
    decay = opt.get("weight_decay")
    require_param(
        decay is None or (is_number(decay) and decay >= 0),
        "training.optimizer.weight_decay",
        "null or a number >= 0",
        decay,
    )
    require_param(
        decay is None or opt["name"] in ("adamw", "sgd"),
        "training.optimizer.weight_decay",
        "null unless training.optimizer.name is adamw or sgd",
        decay,
    )
    schedule = params["lr_schedule"]
    require_param(
        schedule.get("name") in SCHEDULES,
        "training.lr_schedule.name",
        f"one of {list(SCHEDULES)}",
        schedule.get("name"),
    )
    warmup = schedule.get("warmup_epochs", 0)
    require_param(
        is_number(warmup) and 0 <= warmup < params["epochs"],
        "training.lr_schedule.warmup_epochs",
        "a number >= 0 and below training.epochs",
        warmup,
    )
    require_param(
        params["loss"] in LOSSES, "training.loss", f"one of {sorted(LOSSES)}", params["loss"]
    )
    smoothing = params["label_smoothing"]
    require_param(
        is_number(smoothing) and 0 <= smoothing < 1,
        "training.label_smoothing",
        "a number in [0, 1)",
        smoothing,
    )
    require_param(
        params["precision"] in PRECISIONS,
        "training.precision",
        f"one of {list(PRECISIONS)}",
        params["precision"],
    )
    require_param(
        params["jit_compile"] in JIT_CHOICES,
        "training.jit_compile",
        "one of auto, true, false",
        params["jit_compile"],
    )
    resume = params["resume"]
    require_param(
        isinstance(resume.get("enabled"), bool),
        "training.resume.enabled",
        "true or false",
        resume.get("enabled"),
    )
    require_param(
        isinstance(resume.get("backup_dir"), str) and resume["backup_dir"] != "",
        "training.resume.backup_dir",
        "a folder path",
        resume.get("backup_dir"),
    )
    augmentation = params["augmentation"]
    require_param(
        isinstance(augmentation.get("enabled"), bool),
        "training.augmentation.enabled",
        "true or false",
        augmentation.get("enabled"),
    )
    pad = augmentation.get("pad")
    require_param(
        isinstance(pad, int) and not isinstance(pad, bool) and 0 <= pad < 32,  # noqa: PLR2004
        "training.augmentation.pad",
        "an integer in [0, 32)",
        pad,
    )


def _learning_rate(params: dict[str, Any], steps_per_epoch: int) -> Any:
    rate = params["optimizer"]["learning_rate"]
    schedule = params["lr_schedule"]
    if schedule["name"] == "constant":
        return rate
    total = params["epochs"] * steps_per_epoch
    warmup = round(schedule.get("warmup_epochs", 0) * steps_per_epoch)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup else rate,
        decay_steps=max(total - warmup, 1),
        warmup_target=rate if warmup else None,
        warmup_steps=warmup,
    )


def _optimizer(params: dict[str, Any], steps_per_epoch: int) -> keras.optimizers.Optimizer:
    opt = params["optimizer"]
    kwargs: dict[str, Any] = {"learning_rate": _learning_rate(params, steps_per_epoch)}
    if opt.get("weight_decay") is not None:
        kwargs["weight_decay"] = opt["weight_decay"]
    return OPTIMIZERS[opt["name"]](**kwargs)


def _package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _run_facts(
    device: str,
    fit_seconds: float,
    history: pd.DataFrame,
    train: dict,
    validation: dict,
    params: dict[str, Any],
    run_label: str,
) -> dict[str, Any]:
    backend = keras.backend.backend()
    return {
        "run_label": run_label,
        "device": device,
        "devices": keras.distribution.list_devices(),
        "backend": backend,
        "backend_version": _package_version(_BACKEND_PACKAGES.get(backend, backend)),
        "keras_version": keras.__version__,
        "numpy_version": np.__version__,
        "python_version": sys.version.split()[0],
        "platform": platform.platform(),
        "fit_seconds": round(fit_seconds, 3),
        "epochs_run": len(history),
        "train_images": int(len(train["images"])),
        "validation_images": int(len(validation["images"])),
        "final": history.iloc[-1].to_dict() if len(history) else {},
        "parameters": params,
    }


def _resume_dir(params: dict[str, Any], seed: int, train: dict[str, np.ndarray]) -> Path:
    """One resume folder per (parameters, seed, training data): never resume another run."""
    digest = hashlib.sha256(json.dumps([params, seed], sort_keys=True, default=str).encode())
    digest.update(train["labels"].tobytes())
    digest.update(train["images"][:: max(len(train["images"]) // 64, 1)].tobytes())
    return Path(params["resume"]["backup_dir"]) / digest.hexdigest()[:16]


def train_model(
    train: dict[str, np.ndarray],
    validation: dict[str, np.ndarray],
    params: dict[str, Any],
    seed: int,
    run_label: str,
    *,
    callbacks: list[keras.callbacks.Callback] | None = None,
) -> tuple[keras.Model, pd.DataFrame, dict[str, Any]]:
    """Build, compile and fit the network; return it, its history and the run's facts.

    ``callbacks`` (not a pipeline input) are added after the node's own, for benchmarks
    that watch the fit, e.g. to evaluate the test set per epoch outside the pipeline.
    """
    validate_training_params(params)
    keras.utils.set_random_seed(seed)
    device = keras.distribution.list_devices()[0]
    logger.info(
        "Training on %s (Keras %s, %s backend): %d train / %d validation images, "
        "%d epochs of batch %d",
        device,
        keras.__version__,
        keras.backend.backend(),
        len(train["images"]),
        len(validation["images"]),
        params["epochs"],
        params["batch_size"],
    )
    model = build_alexnet(
        params["model"],
        num_classes=train["labels"].shape[1],
        augmentation=params["augmentation"],
        dtype_policy=params["precision"],
        seed=seed,
    )
    steps_per_epoch = math.ceil(len(train["images"]) / params["batch_size"])
    model.compile(
        optimizer=_optimizer(params, steps_per_epoch),
        loss=LOSSES[params["loss"]](label_smoothing=params["label_smoothing"]),
        metrics=["accuracy"],
        jit_compile=params["jit_compile"],
    )
    epoch_log = EpochLog(params["epochs"])
    fit_callbacks: list[keras.callbacks.Callback] = [epoch_log]
    if params["resume"]["enabled"]:
        fit_callbacks.append(ResumePoint(_resume_dir(params, seed, train), epoch_log))
    fit_callbacks.extend(callbacks or [])
    start = time.perf_counter()
    model.fit(
        train["images"],
        train["labels"],
        validation_data=(validation["images"], validation["labels"]),
        epochs=params["epochs"],
        batch_size=params["batch_size"],
        shuffle=True,
        callbacks=fit_callbacks,
        verbose=1 if sys.stdout.isatty() else 0,
    )
    fit_seconds = time.perf_counter() - start
    if epoch_log.diverged_at is not None:
        raise TrainingDivergedError(
            f"Training diverged: the loss became NaN or infinite in epoch "
            f"{epoch_log.diverged_at}. No model was saved. Lower training.optimizer.learning_rate "
            f"(now {params['optimizer']['learning_rate']}) or check the inputs."
        )
    history = pd.DataFrame(epoch_log.rows)
    logger.info("Trained %d epochs in %.1f s on %s", len(history), fit_seconds, device)
    return (
        model,
        history,
        _run_facts(device, fit_seconds, history, train, validation, params, run_label),
    )
