"""What a trained model is, and the labels every result derived from it carries.

A ``TrainedModel`` is saved as one versioned ``.keras`` archive that holds the network,
its model card and its training history (``datasets.TrainedModelDataset``): whichever
version Kedro loads, and however (the newest, ``--load-versions``, a partial run), its
card comes with it. Results take their labels from what they were computed from:
predictions from the model that made them, metrics and plots from the rows of those
predictions or of the history, never from the command that happens to run.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:  # the backend starts only when a node runs
    import keras


# Characters of a caption line in a plot title before it wraps (a 7-inch figure, 10 pt).
TITLE_WIDTH = 80

# The columns (and keys) that name a result's model: its catalog version, the run label
# of the run that trained it and that run's Kedro environment.
LABELS = ("model_version", "run_label", "kedro_env")


class MixedModelsError(ValueError):
    """Rows that come from more than one model, where one result needs one model."""


@dataclass(frozen=True)
class TrainedModel:
    """A fitted network with its card (``LABELS``, class names, parameters, run facts)
    and its history (one row per epoch)."""

    network: keras.Model
    card: dict[str, Any]
    history: pd.DataFrame

    @property
    def labels(self) -> dict[str, Any]:
        """The model's own ``LABELS``."""
        return {key: self.card[key] for key in LABELS}


def labelled(frame: pd.DataFrame, labels: dict[str, Any]) -> pd.DataFrame:
    """``frame`` with one column per label, the same value on every row."""
    return frame.assign(**{key: labels[key] for key in LABELS})


def origin(frame: pd.DataFrame) -> dict[str, Any]:
    """The labels of the one model that every row of ``frame`` names."""
    found = frame[list(LABELS)].drop_duplicates()
    if len(found) != 1:
        versions = sorted(map(str, found["model_version"]))
        raise MixedModelsError(
            f"The rows come from {len(found)} models ({', '.join(versions) or 'none'}); "
            "a result describes one."
        )
    return found.iloc[0].to_dict()


def caption(labels: dict[str, Any], width: int | None = None) -> str:
    """A line naming a model: its run label, version and environment; wrapped at ``width``
    characters (a plot title's width) when given."""
    version, env = labels["model_version"], labels["kedro_env"]
    if not width:
        return f"{labels['run_label']} · model {version} (env {env})"
    # Non-breaking spaces keep "model <version>" and "(env <env>)" whole on their lines.
    line = f"{labels['run_label']} · model\u00a0{version} (env\u00a0{env})"
    return textwrap.fill(line, width).replace("\u00a0", " ")
