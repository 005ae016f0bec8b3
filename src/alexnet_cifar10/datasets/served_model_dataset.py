"""The served model, logged into the run's MLflow run and registered."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError

import alexnet_cifar10

# What the served model's code imports (its requirements, pinned to the versions here;
# given, since MLflow's own inference of them loads the model in a new process). Its
# code is the project's package, carried in the model (MLflow's ``code_paths``), of which
# it imports only the modules without Kedro or a deep-learning backend (``pictures``).
_SERVING = ("mlflow", "cloudpickle", "onnxruntime", "numpy", "pandas", "pillow")


class ServedModelDataset(AbstractDataset[Any, list[dict[str, str]]]):
    """Logs a ``serving.ServedModel`` as an ``mlflow.pyfunc`` model into the MLflow run
    ``run_id`` (set by the project's tracking hook, so that it logs from whichever thread
    or process saves it), with the model's input example, from which MLflow infers its
    signature; registered as a new version of ``registered_model_name``, tagged with the
    model's labels. It carries its code and installs from the public package index, so
    it loads and serves where the project is not installed. Where the run is not tracked
    it logs nothing. Loading gives the registered versions and their labels (the models
    themselves load from the registry, as ``kedro serve`` does).

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

    def load(self) -> list[dict[str, str]]:
        """Every registered version, newest first: ``version`` and the model's labels."""
        return registered_versions(self._registered)

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
            code_paths=[str(Path(alexnet_cifar10.__file__).parent)],
            pip_requirements=[f"{name}=={version(name)}" for name in _SERVING],
        )
        if info.registered_model_version is not None:
            client = mlflow.MlflowClient()
            for key, value in data.labels.items():
                client.set_model_version_tag(
                    self._registered, info.registered_model_version, key, str(value)
                )


def registered_versions(name: str) -> list[dict[str, str]]:
    """The versions of registered model ``name``, newest first: each its ``version``, its
    tags (the model's labels, the promotion's figures) and its ``aliases``."""
    import mlflow

    client = mlflow.MlflowClient()
    try:
        found = client.search_model_versions(f"name = '{name}'")
        # The search leaves each version's aliases empty; the registered model has them.
        aliases = client.get_registered_model(name).aliases if found else {}
    except mlflow.MlflowException as error:
        raise DatasetError(f"The model registry could not be read: {error.message}") from error
    versions = sorted(found, key=lambda version: -int(version.version))
    return [
        {
            **version.tags,
            "version": str(version.version),
            "aliases": sorted(a for a, v in aliases.items() if str(v) == str(version.version)),
        }
        for version in versions
    ]


class ModelAliasDataset(AbstractDataset[dict[str, Any], dict[str, Any]]):
    """The alias (``champion``) of a registered model, set by a promotion report.

    Saving a promotion report (``pipelines.promote``) whose gates all passed points its
    ``alias`` at its ``registered_version`` and tags that version with the report's
    figures; a report that failed changes nothing. Write-only: the versions and their
    aliases load from ``ServedModelDataset``.

    Example catalog entry::

        champion:
          type: alexnet_cifar10.datasets.ModelAliasDataset
          registered_model_name: alexnet_cifar10
    """

    def __init__(self, *, registered_model_name: str, metadata: dict[str, Any] | None = None):
        """Creates the dataset of registered model ``registered_model_name``."""
        self._registered = registered_model_name
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"registered_model_name": self._registered}

    def load(self) -> None:
        raise DatasetError(
            f"{type(self).__name__} is write-only: the versions of {self._registered} and "
            "their aliases load from the served_model dataset."
        )

    def save(self, data: dict[str, Any]) -> None:
        import mlflow

        if not data["promoted"]:
            return
        client, version = mlflow.MlflowClient(), data["registered_version"]
        for key, value in data["figures"].items():
            client.set_model_version_tag(self._registered, version, key, str(value))
        client.set_registered_model_alias(self._registered, data["alias"], version)
