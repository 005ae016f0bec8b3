"""kedro-mlflow's datasets, as the project's runs need them (not imported by the package:
a machine without MLflow never loads this module; see untracked.py)."""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

from kedro.io import Version
from kedro_mlflow.io.artifacts import MlflowArtifactDataset
from kedro_mlflow.io.metrics import MlflowMetricsHistoryDataset
from kedro_mlflow.io.models import MlflowModelTrackingDataset
from mlflow import MlflowClient
from mlflow.models import Model

from alexnet_cifar10.serving import example_request

# What the served model imports besides the project (its requirements, pinned as here;
# given, since MLflow's own inference of them loads the model in a new process).
_SERVING = [
    f"{name}=={version(name)}" for name in ("mlflow", "onnxruntime", "numpy", "pandas", "pillow")
]


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


class MlflowServedModelDataset(MlflowModelTrackingDataset):
    """kedro-mlflow's ``MlflowModelTrackingDataset`` for the served model: logged into the
    run the tracking hook names (``run_id``), from whichever thread or process saves it
    (MLflow's fluent ``log_model`` would take the calling thread's active run), with the
    model's input example, from which MLflow infers its signature; a registered version
    is tagged with the model's labels. Ephemeral, as the run it belongs to (see
    ``MlflowRunMetricsDataset``).

    Example catalog entry::

        served_model:
          type: alexnet_cifar10.datasets.tracked.MlflowServedModelDataset
          flavor: mlflow.pyfunc
          pyfunc_workflow: python_model
          save_args:
            name: served_model
            registered_model_name: alexnet_cifar10
    """

    _EPHEMERAL = True
    run_id: str | None = None

    def _save(self, model: Any) -> None:
        if not self._logging_activated:
            return
        self.model_info = Model.log(
            artifact_path=None,
            flavor=self._mlflow_model_module,
            run_id=self.run_id,
            python_model=model,
            input_example=example_request(),
            pip_requirements=[f"alexnet_cifar10=={version('alexnet_cifar10')}", *_SERVING],
            **self._save_args,
        )
        self._last_saved_model_uri = self.model_info.model_uri
        registered = self.model_info.registered_model_version
        if registered is not None:  # the version says which model it serves, in the UI too
            client = MlflowClient()
            for key, value in model.labels.items():
                client.set_model_version_tag(
                    self._save_args["registered_model_name"], registered, key, str(value)
                )
