"""kedro-mlflow's datasets, as the project's runs need them (not imported by the package:
a machine without MLflow never loads this module; see untracked.py)."""

from __future__ import annotations

from typing import Any

from kedro.io import Version
from kedro_mlflow.io.artifacts import MlflowArtifactDataset
from kedro_mlflow.io.metrics import MlflowMetricsHistoryDataset


class MlflowRunMetricsDataset(MlflowMetricsHistoryDataset):
    """kedro-mlflow's ``MlflowMetricsHistoryDataset``, marked ephemeral: its metrics belong
    to the MLflow run being recorded, a new one in every ``kedro run``, so
    ``--only-missing-outputs`` does not take them for a missing output and redo the node
    that makes them. Switched off (``switch_catalog_logging``), it does not touch the
    store at all. (Class names start with ``Mlflow``, as kedro-mlflow's
    ``switch_catalog_logging`` expects.)

    Example catalog entry::

        test_scores:
          type: alexnet_cifar10.datasets.tracked.MlflowRunMetricsDataset
          prefix: test
    """

    _EPHEMERAL = True

    def _save(self, data: dict[str, Any]) -> None:
        # The plugin's save opens the store before it looks at the switch: with tracking
        # switched off after a store error, it would meet the same error again.
        if self._logging_activated:
            super()._save(data)


class MlflowVersionedArtifactDataset(MlflowArtifactDataset):
    """kedro-mlflow's ``MlflowArtifactDataset`` whose wrapped dataset takes the run's
    versions. The plugin reads the wrapped dataset's configuration alone, so a
    ``versioned: true`` there draws a save version of its own, which Kedro's catalog
    refuses (every dataset of a run saves under the run's version), and
    ``--load-versions`` never reaches it. Here ``versioned: true`` goes on the entry
    itself, as for any dataset, and the version Kedro gives it goes to the wrapped one.

    Example catalog entry::

        accuracy_plot:
          type: alexnet_cifar10.datasets.tracked.MlflowVersionedArtifactDataset
          versioned: true
          dataset:
            type: alexnet_cifar10.datasets.MatplotlibDataset
            filepath: data/08_reporting/accuracy_plot.png
    """

    def __new__(cls, *, dataset: dict[str, Any], version: Version | None = None, **kwargs: Any):
        wrapped = MlflowArtifactDataset.__new__(MlflowArtifactDataset, dataset=dataset, **kwargs)
        wrapped._version = version  # noqa: SLF001 - the attribute every versioned dataset reads
        return wrapped
