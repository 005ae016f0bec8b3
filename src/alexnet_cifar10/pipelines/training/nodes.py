"""Nodes of the training pipeline: build the network, describe it, compile and fit it."""

from __future__ import annotations

import logging
import math
import platform
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np
import pandas as pd

from alexnet_cifar10.distribution import Placement, placement
from alexnet_cifar10.keras_types import KerasCallback, KerasModel
from alexnet_cifar10.pipelines.training import fine_tuning
from alexnet_cifar10.pipelines.training.fine_tuning import Phase
from alexnet_cifar10.provenance import TrainedModel
from alexnet_cifar10.validation import ParameterError

logger = logging.getLogger(__name__)

_BACKEND_PACKAGES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; no model is saved from such a run."""


def build_model(
    model_params: dict[str, Any],
    augmentation: dict[str, Any],
    precision: str,
    seed: int,
    class_names: list[str],
) -> KerasModel:
    """The untrained network of the recipe, seeded, one softmax output per class."""
    import keras

    from alexnet_cifar10 import model as network

    keras.utils.set_random_seed(seed)
    model = network.build_alexnet(
        model_params,
        num_classes=len(class_names),
        augmentation=augmentation,
        dtype_policy=precision,
        seed=seed,
    )
    logger.info("Built %s: %s parameters", model.name, f"{model.count_params():,}")
    return model


def summarise_model(model: KerasModel) -> pd.DataFrame:
    """Each layer's output shape, parameters and multiply-adds per image, then totals."""
    from alexnet_cifar10 import model as network

    layers = pd.DataFrame(network.layer_costs(model))
    total = {"layer": "total", "type": "", "output_shape": ""}
    total |= layers[["parameters", "multiply_adds"]].sum().astype(int).to_dict()
    return pd.concat([layers, pd.DataFrame([total])], ignore_index=True)


def _package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _announce(where: Placement, train: dict, validation: dict, params: dict[str, Any]) -> None:
    import keras

    logger.info(
        "Training on %s (Keras %s, %s backend; %s): %d train / %d validation images, "
        "%d epochs of batch %d",
        ", ".join(where.devices),
        keras.__version__,
        keras.backend.backend(),
        where.describe(params["batch_size"]),
        len(train["images"]),
        len(validation["images"]),
        params["epochs"],
        params["batch_size"],
    )
    if where.devices[0].lower().startswith("cpu"):
        logger.warning(
            "No GPU found: training on the CPU, where the full recipe is slow; the time "
            "this run will take is logged after its first steps."
        )


def _run_facts(  # noqa: PLR0913
    where: Placement,
    batch: int,
    fit_seconds: float,
    history: pd.DataFrame,
    train: dict,
    validation: dict,
) -> dict[str, Any]:
    import keras

    backend = keras.backend.backend()
    return {
        "device": where.devices[0],
        "devices": keras.distribution.list_devices(),
        "distribution": where.facts(batch),
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
    }


def class_weights(labels: np.ndarray, rule: str) -> dict[int, float] | None:
    """Keras' ``class_weight`` for one-hot ``labels``: ``balanced`` weighs each class by
    images / (classes x its images), so every class counts alike; ``none``, no weights."""
    if rule == "none":
        return None
    counts = labels.sum(axis=0)
    return {c: float(labels.shape[0] / (len(counts) * n)) for c, n in enumerate(counts) if n}


def _compile(model: KerasModel, phase: Phase, train_images: int) -> None:
    """Compile for one phase: its trainable layers (when fine-tuning), its learning rate."""
    from alexnet_cifar10 import model as network

    params = phase.params
    if params["fine_tune"]["from"] is not None:
        network.set_phase(model, phase.name)
    network.compile_model(model, params, math.ceil(train_images / params["batch_size"]))


def _fit(  # noqa: PLR0913
    model: KerasModel,
    where: Placement,
    train: dict,
    validation: dict,
    phase: Phase,
    first_epoch: int,
    callbacks: list[KerasCallback],
) -> None:
    """Fit one phase on this process's share of each split, in batches of its share of
    each batch, its epochs numbered on from ``first_epoch``."""
    params = phase.params
    weights = class_weights(train["labels"], params["class_weight"])  # of the whole split
    train, validation = where.local(train), where.local(validation)
    model.fit(
        train["images"],
        train["labels"],
        validation_data=(validation["images"], validation["labels"]),
        initial_epoch=first_epoch,
        epochs=first_epoch + phase.epochs,
        batch_size=where.local_batch(params["batch_size"]),
        class_weight=weights,
        shuffle=True,
        callbacks=callbacks,
        verbose=0,
    )


def _check_converged(epoch_log: Any, params: dict[str, Any]) -> None:
    if epoch_log.diverged_at is not None:
        raise TrainingDivergedError(
            f"Training diverged: the loss became NaN or infinite in epoch "
            f"{epoch_log.diverged_at}. No model was saved. Lower training.optimizer.learning_rate "
            f"(now {params['optimizer']['learning_rate']}) or check the inputs."
        )


def _start_from(
    model: KerasModel, params: dict[str, Any]
) -> tuple[TrainedModel | None, list[str], list[Phase]]:
    """The trained model fine-tuning starts from (its base copied into ``model``), the
    layers carried, and the run's fits."""
    from alexnet_cifar10 import model as network

    source = params["fine_tune"]["from"]
    if source is None:
        return None, [], fine_tuning.phases(params)
    started_from = fine_tuning.load_source(source)
    try:
        carried = network.carry_base(started_from.network, model)
    except ValueError as error:
        raise ParameterError(
            f"Parameter 'training.fine_tune.from' names a model whose base does not fit this "
            f"network: {error} (training.model must match its convolutions)."
        ) from error
    logger.info(
        "Fine-tuning from %s (%s, classes %s): %d base layers carried over, a new "
        "head for %d classes",
        source, started_from.card.get("model_version"), started_from.card.get("class_names"),
        len(carried), model.output_shape[-1],
    )  # fmt: skip
    return started_from, carried, fine_tuning.phases(params)


def train_model(  # noqa: PLR0913
    model: KerasModel,
    train: dict[str, np.ndarray],
    validation: dict[str, np.ndarray],
    params: dict[str, Any],
    seed: int,
    class_names: list[str],
    run_label: str,
    run_context: dict[str, Any],
    *,
    callbacks: list[KerasCallback] | None = None,
) -> TrainedModel:
    """Compile and fit the network; return it with its model card and history.

    ``callbacks`` (not a pipeline input) are added after the node's own, for benchmarks
    that watch the fit, e.g. to evaluate the test set per epoch outside the pipeline.
    """
    import keras

    from alexnet_cifar10.pipelines.training.callbacks import fit_callbacks

    keras.utils.set_random_seed(seed)
    where = placement(params["distribution"])
    train, validation = where.trimmed(train, "train"), where.trimmed(validation, "validation")
    started_from, carried, fits = _start_from(model, params)
    run = {**params, "epochs": sum(phase.epochs for phase in fits)}  # every phase's
    _announce(where, train, validation, run)
    epoch_log, own_callbacks = fit_callbacks(run, seed, train, validation)
    with where.placed(model) as placed:
        start, first = time.perf_counter(), 0
        for phase in fits:
            _compile(placed, phase, len(train["images"]))
            _fit(placed, where, train, validation, phase, first, own_callbacks + (callbacks or []))
            first += phase.epochs
        fit_seconds = time.perf_counter() - start
    _check_converged(epoch_log, params)
    history = pd.DataFrame(epoch_log.rows)
    if len(fits) > 1:
        history.insert(1, "phase", np.where(history["epoch"] <= fits[0].epochs, "head", "all"))
    devices = ", ".join(where.devices)
    logger.info("Trained %d epochs in %.1f s on %s", len(history), fit_seconds, devices)
    card = {
        "model_version": None,  # TrainedModelDataset writes the version it saves under
        "run_label": run_label,
        "kedro_env": run_context["kedro_env"],
        "class_names": list(class_names),
        "fine_tuned_from": None
        if started_from is None
        else fine_tuning.provenance(params["fine_tune"]["from"], started_from, carried),
        "parameters": {"seed": seed, "training": params},
        "run": _run_facts(where, params["batch_size"], fit_seconds, history, train, validation),
    }
    return TrainedModel(where.gathered(placed), card, history)


def training_curves(model: TrainedModel) -> dict[str, list[dict[str, float]]]:
    """The model's history as metric histories: one point per epoch and metric."""
    history = model.history.set_index("epoch").select_dtypes("number")
    return {
        name: [
            {"step": int(epoch), "value": float(value)} for epoch, value in column.dropna().items()
        ]
        for name, column in history.items()
    }
