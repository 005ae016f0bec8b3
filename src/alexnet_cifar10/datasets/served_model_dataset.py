"""The served model, logged into the run's MLflow run and registered."""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

from kedro.io import AbstractDataset, DatasetError

# What the served model imports besides the project (its requirements, pinned as here;
# given, since MLflow's own inference of them loads the model in a new process).
_SERVING = ("mlflow", "onnxruntime", "numpy", "pandas", "pillow")


class ServedModelDataset(AbstractDataset[Any, None]):
    """Logs a ``serving.ServedModel`` as an ``mlflow.pyfunc`` model into the MLflow run
    ``run_id`` (set by the project's tracking hook, so that it logs from whichever thread
    or process saves it), with the model's input example, from which MLflow infers its
    signature; registered as a new version of ``registered_model_name``, tagged with the
    model's labels. Where the run is not tracked it logs nothing. Write-only: ``kedro
    serve`` loads it from the registry.

    Example catalog entry::

        served_model:
          type: alexnet_cifar10.datasets.ServedModelDataset
          name: served_model
          registered_model_name: alexnet_cifar10
    """

    def __init__(
        self, *, name: str, registered_model_name: str, metadata: dict[str, Any] | None = None
    ) -> None:
        """Creates the dataset: ``name`` of the model in the run, ``registered_model_name``
        in the registry."""
        self._name = name
        self._registered = registered_model_name
        self.metadata = metadata
        self.run_id: str | None = None

    def _describe(self) -> dict[str, Any]:
        return {"name": self._name, "registered_model_name": self._registered}

    def _exists(self) -> bool:
        """Whether the registry holds a version of the model (what `kedro serve` serves)."""
        import mlflow

        try:
            found = mlflow.MlflowClient().search_model_versions(
                f"name = '{self._registered}'", max_results=1
            )
        except mlflow.MlflowException:
            return False
        return bool(found)

    def load(self) -> None:
        raise DatasetError(
            f"{type(self).__name__} is write-only: load the model from MLflow's registry "
            f"(models:/{self._registered}/<version>), as `kedro serve` does."
        )

    def save(self, data: Any) -> None:
        import mlflow

        from alexnet_cifar10.serving import example_request

        if self.run_id is None:
            return
        info = mlflow.models.Model.log(
            artifact_path=None,
            flavor=mlflow.pyfunc,
            run_id=self.run_id,
            name=self._name,
            registered_model_name=self._registered,
            python_model=data,
            input_example=example_request(),
            pip_requirements=[
                f"alexnet_cifar10=={version('alexnet_cifar10')}",
                *(f"{name}=={version(name)}" for name in _SERVING),
            ],
        )
        if info.registered_model_version is not None:
            client = mlflow.MlflowClient()
            for key, value in data.labels.items():
                client.set_model_version_tag(
                    self._registered, info.registered_model_version, key, str(value)
                )
