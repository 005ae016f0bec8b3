"""The project's hooks, called as Kedro calls them, on small catalogs."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.io.core import Version

from alexnet_cifar10 import hooks
from alexnet_cifar10.datasets import JSONDataset, KerasModelDataset, NpzDataset
from alexnet_cifar10.hooks import (
    PreflightHook,
    QuietBackendHook,
    RunVersionsHook,
    SingleWriterHook,
    _sections_used,
)
from alexnet_cifar10.pipeline_registry import producers
from alexnet_cifar10.pipelines import data_processing, evaluate, features, predict, training

OLDER, NEWER, THIS_RUN = (
    "2026-01-01T00.00.00.000Z",
    "2026-02-01T00.00.00.000Z",
    "2026-03-01T00.00.00.000Z",
)


def _save(dataset_type: type, path: Path, version: str, data: object) -> None:
    dataset_type(filepath=str(path), version=Version(None, version)).save(data)


def _run_params(**extra: object) -> dict:
    return {"run_id": THIS_RUN, "env": "unit", "load_versions": {}, **extra}


def test_sections_used_are_the_top_level_keys_the_nodes_read() -> None:
    assert _sections_used(training.create_pipeline()) == {
        "training",
        "seed",
        "class_names",
        "run_label",
    }
    assert _sections_used(evaluate.create_pipeline()) == {"class_names", "evaluate"}
    assert _sections_used(predict.create_pipeline()) == {"class_names", "predict"}
    assert _sections_used(features.create_pipeline()) == {"class_names", "features", "seed"}


def test_producers_name_the_pipeline_that_makes_each_dataset() -> None:
    made_by = producers()
    assert made_by["model"] == made_by["untrained_model"] == "training"
    assert made_by["model_input_test"] == "data_processing"
    assert made_by["test_metrics"] == "evaluate"
    assert made_by["user_predictions"] == made_by["contact_sheet"] == "predict"
    assert made_by["embeddings"] == made_by["linear_probe_metrics"] == "features"
    assert "cifar10_raw" not in made_by and "user_images" not in made_by


def test_preflight_stops_bad_parameters_with_one_line_each(
    base_params: dict, caplog: pytest.LogCaptureFixture
) -> None:
    catalog = DataCatalog(
        datasets={"parameters": MemoryDataset({**base_params, "seed": "x", "run_label": 3})}
    )
    with caplog.at_level(logging.ERROR), pytest.raises(SystemExit) as stop:
        PreflightHook().before_pipeline_run(_run_params(), training.create_pipeline(), catalog)
    assert stop.value.code == 1
    assert [r.getMessage() for r in caplog.records] == [
        "Run stopped: Parameter 'run_label' must be a valid string; got 3.",
        "Run stopped: Parameter 'seed' must be a valid integer; got 'x'.",
    ]


def test_preflight_names_inputs_no_run_has_saved(
    base_params: dict, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    catalog = DataCatalog(
        datasets={
            "parameters": MemoryDataset(base_params),
            "model_input_test": NpzDataset(
                filepath=str(tmp_path / "test.npz"), version=Version(None, None)
            ),
        }
    )
    _save(NpzDataset, tmp_path / "test.npz", OLDER, {"a": np.zeros(1)})
    for name in ("model", "training_run", "training_history"):
        catalog[name] = JSONDataset(filepath=str(tmp_path / name), version=Version(None, None))
    with caplog.at_level(logging.ERROR), pytest.raises(SystemExit):
        PreflightHook().before_pipeline_run(_run_params(), evaluate.create_pipeline(), catalog)
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        f"Run stopped: Input '{name}' was never produced: no saved version under "
        f"'{tmp_path / name}'. Make it with `kedro run --pipelines training` (or `kedro run` "
        "for everything)."
        for name in ("model", "training_history", "training_run")
    ]


def test_an_evaluated_model_is_read_with_its_own_run_facts(tmp_path: Path) -> None:
    for version in (OLDER, NEWER):
        _save(NpzDataset, tmp_path / "model", version, {"version": np.array([version])})
        _save(JSONDataset, tmp_path / "training_run", version, {"model_version": version})
    # A newer training_run of a model whose save failed must not be taken for the newest.
    _save(JSONDataset, tmp_path / "training_run", THIS_RUN, {"model_version": "orphan"})

    def catalog(load_versions: dict[str, str]) -> DataCatalog:
        """As Kedro builds it: --load-versions fixes the model's load version."""
        return DataCatalog(
            datasets={
                name: dataset_type(
                    filepath=str(tmp_path / name), version=Version(load_versions.get(name), None)
                )
                for name, dataset_type in (("model", NpzDataset), ("training_run", JSONDataset))
            }
        )

    newest = catalog({})
    RunVersionsHook().before_pipeline_run(_run_params(), evaluate.create_pipeline(), newest)
    assert newest.load("training_run") == {"model_version": NEWER}
    older = catalog({"model": OLDER})
    RunVersionsHook().before_pipeline_run(
        _run_params(load_versions={"model": OLDER}), evaluate.create_pipeline(), older
    )
    assert older.load("training_run") == {"model_version": OLDER}


def test_outputs_read_back_in_the_same_run_are_this_runs_own(tmp_path: Path) -> None:
    _save(NpzDataset, tmp_path / "model_input_test", NEWER, {"a": np.zeros(1)})
    catalog = DataCatalog(
        datasets={
            "model_input_test": NpzDataset(
                filepath=str(tmp_path / "model_input_test"), version=Version(None, THIS_RUN)
            ),
            "run_context": MemoryDataset(),
        }
    )
    pipeline = training.create_pipeline() + evaluate.create_pipeline()
    # data_processing writes model_input_test and evaluate reads it.
    pipeline += data_processing.create_pipeline()
    RunVersionsHook().before_pipeline_run(_run_params(), pipeline, catalog)
    dataset = catalog.get("model_input_test")
    assert dataset.resolve_load_version() == THIS_RUN
    assert catalog.load("run_context") == {"kedro_env": "unit", "save_version": THIS_RUN}


def _training_catalog(tmp_path: Path, training: dict) -> DataCatalog:
    return DataCatalog(
        datasets={
            "params:training": MemoryDataset(training),
            "model": KerasModelDataset(filepath=str(tmp_path / "m.keras")),
        }
    )


def test_a_batch_the_devices_cannot_split_stops_the_run_before_any_node(
    recipe_training: dict,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(hooks, "start_quietly", lambda: ["gpu:0", "gpu:1", "gpu:2"])
    recipe_training["distribution"] = "data_parallel"
    catalog = _training_catalog(tmp_path, recipe_training)
    with caplog.at_level(logging.ERROR), pytest.raises(SystemExit) as stop:
        QuietBackendHook().before_pipeline_run(training.create_pipeline(), catalog)
    assert stop.value.code == 1
    assert caplog.messages == [
        "Run stopped: Parameter 'training.batch_size' must be a multiple of the 3 devices that "
        "data_parallel splits every batch over (say 63 or 66); got 64."
    ]
    recipe_training["batch_size"] = 66
    catalog = _training_catalog(tmp_path, recipe_training)
    QuietBackendHook().before_pipeline_run(training.create_pipeline(), catalog)


def _cluster_process(monkeypatch: pytest.MonkeyPatch, index: int) -> None:
    monkeypatch.setenv("KERAS_DISTRIBUTION_JOB_ADDRESSES", "localhost:1234")
    monkeypatch.setenv("KERAS_DISTRIBUTION_NUM_PROCESSES", "2")
    monkeypatch.setenv("KERAS_DISTRIBUTION_PROCESS_ID", str(index))


def test_only_process_0_writes_the_runs_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    pipeline = training.create_pipeline()

    def catalog() -> DataCatalog:
        return DataCatalog(
            datasets={
                name: JSONDataset(filepath=str(tmp_path / name), version=Version(None, None))
                for name in ("untrained_model", "model", "training_run")
            }
            | {"run_context": MemoryDataset({"kedro_env": "unit", "save_version": THIS_RUN})}
        )

    _cluster_process(monkeypatch, 0)
    first = catalog()
    SingleWriterHook().before_pipeline_run(pipeline, first)
    assert isinstance(first.get("model"), JSONDataset)

    _cluster_process(monkeypatch, 1)
    second = catalog()
    with caplog.at_level(logging.INFO, logger="alexnet_cifar10"):
        SingleWriterHook().before_pipeline_run(pipeline, second)
    for name in ("untrained_model", "model_summary", "model", "training_run", "training_history"):
        assert isinstance(second.get(name), MemoryDataset), name
    assert second.load("run_context")["save_version"] == THIS_RUN
    assert [r.getMessage() for r in caplog.records if r.name == hooks.__name__] == [
        "Process 1 of 2 saves nothing: process 0 saves this run's 5 outputs."
    ]
    second.save("model", {"weights": [1]})
    assert second.load("model") == {"weights": [1]}
    assert list(tmp_path.iterdir()) == []
