"""Fine-tuning: the trained model that ``training.fine_tune.from`` names, and the phases.

The source is a parameter, not a catalog entry, because a person names it on the command
line (``--params training.fine_tune.from=...``): a ``.keras`` archive that train_model saved
(the file, or its versioned folder for the newest version), or an MLflow artifact URI of
one (``runs:/<run id>/alexnet.keras``, as every tracked training run logs it). It is read
by the project's own ``TrainedModelDataset``, so its card comes with it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlparse

from kedro.io import DatasetError
from kedro.io.core import Version

from alexnet_cifar10.datasets import TrainedModelDataset
from alexnet_cifar10.provenance import TrainedModel


class Phase(NamedTuple):
    """One fit of a run: its name, epochs and the training parameters it compiles with."""

    name: str
    epochs: int
    params: dict[str, Any]


def phases(params: dict[str, Any]) -> list[Phase]:
    """The fits of a run: one (``all``) from scratch; the head, then all layers (at their
    own epochs and learning rates) when fine-tuning."""
    tune = params["fine_tune"]
    if tune["from"] is None:
        return [Phase("all", params["epochs"], params)]
    return [
        Phase(name, tune[key]["epochs"], {
            **params,
            "epochs": tune[key]["epochs"],
            "optimizer": {**params["optimizer"], "learning_rate": tune[key]["learning_rate"]},
        })
        for name, key in (("head", "head"), ("all", "all_layers"))
    ]  # fmt: skip


def _local(source: str, folder: str) -> Path:
    """A local path to the source archive (an MLflow URI downloaded into ``folder``)."""
    if urlparse(source).scheme in ("", "file") or Path(source).exists():
        return Path(urlparse(source).path if source.startswith("file:") else source)
    import mlflow

    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=folder))
    except mlflow.MlflowException as error:
        raise DatasetError(
            f"training.fine_tune.from: {source} could not be read from MLflow: "
            f"{str(error).splitlines()[0]}"
        ) from error
    archives = sorted(local.rglob("*.keras")) if local.is_dir() else [local]
    if len(archives) != 1:
        raise DatasetError(
            f"training.fine_tune.from: {source} holds {len(archives)} .keras "
            "archives; name one (runs:/<run id>/alexnet.keras)."
        )
    return archives[0]


def load_source(source: str) -> TrainedModel:
    """The trained model to start from, with its card."""
    with tempfile.TemporaryDirectory() as folder:
        path = _local(source, folder)
        if not path.exists():
            raise DatasetError(
                f"training.fine_tune.from: no trained model at '{source}' (a .keras archive "
                "that `kedro run` saved, its versioned folder, or runs:/<run id>/alexnet.keras)."
            )
        # A versioned folder (data/06_models/alexnet.keras/): its newest version.
        version = Version(None, None) if path.is_dir() else None
        return TrainedModelDataset(filepath=str(path), version=version).load()


def provenance(source: str, model: TrainedModel, carried: list[str]) -> dict[str, Any]:
    """The card's record of the model a fine-tuned one started from."""
    return {
        "source": source,
        **{key: model.card.get(key) for key in ("model_version", "run_label", "kedro_env")},
        "class_names": model.card.get("class_names"),
        "layers_carried": carried,
    }
