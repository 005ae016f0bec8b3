"""The project's hooks, called as Kedro calls them, on small catalogs."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.io.core import Version
from kedro.pipeline import Node, Pipeline

from alexnet_cifar10 import hooks
from alexnet_cifar10.datasets import CIFAR10Dataset, JSONDataset, NpzDataset
from alexnet_cifar10.hooks import (
    GracefulStopHook,
    MissingInputError,
    PreflightHook,
    keep_outputs_in_memory,
    publish_run_context,
    sections_used,
)
from alexnet_cifar10.pipeline_registry import producers
from alexnet_cifar10.pipelines import data_processing, evaluate, features, predict, training
from alexnet_cifar10.pipelines.export import pipeline as export
from alexnet_cifar10.validation import SECTIONS, ParameterError

OLDER, NEWER, THIS_RUN = (
    "2026-01-01T00.00.00.000Z",
    "2026-02-01T00.00.00.000Z",
    "2026-03-01T00.00.00.000Z",
)


def _save(dataset_type: type, path: Path, version: str, data: object) -> None:
    dataset_type(filepath=str(path), version=Version(None, version)).save(data)


def _run_params(project: Path, **extra: object) -> dict:
    return {
        "run_id": THIS_RUN,
        "env": "unit",
        "load_versions": {},
        "project_path": str(project),
        **extra,
    }


def test_sections_used_are_the_top_level_keys_the_nodes_read() -> None:
    assert sections_used(training.create_pipeline()) == {
        "training",
        "seed",
        "class_names",
        "run_label",
    }
    assert sections_used(export.serving_pipeline()) == {"predict", "serve"}
    assert sections_used(evaluate.create_pipeline()) == {"class_names", "evaluate"}
    assert sections_used(predict.create_pipeline()) == {"predict"}
    assert sections_used(features.create_pipeline()) == {"class_names", "features", "seed"}


def test_a_node_that_reads_all_parameters_uses_every_section() -> None:
    pipeline = Pipeline([Node(len, "parameters", None, name="count_parameters")])
    assert sections_used(pipeline) == set(SECTIONS)


def test_the_run_context_names_the_runs_environment() -> None:
    catalog = DataCatalog(datasets={"run_context": MemoryDataset()})
    publish_run_context({"env": "test"}, catalog)
    assert catalog.load("run_context") == {"kedro_env": "test"}
    # Kedro passes env None when `kedro run` has no --env: the default environment.
    publish_run_context({"env": None}, catalog)
    assert catalog.load("run_context") == {"kedro_env": "local"}


def test_producers_name_the_pipeline_that_makes_each_dataset() -> None:
    made_by = producers()
    assert made_by["model"] == made_by["untrained_model"] == "training"
    assert made_by["model_input_test"] == "data_processing"
    assert made_by["test_metrics"] == "evaluate"
    assert made_by["user_predictions"] == made_by["contact_sheet"] == "predict"
    assert made_by["embeddings"] == made_by["linear_probe_metrics"] == "features"
    assert "raw_images" not in made_by and "user_images" not in made_by


def test_preflight_stops_bad_parameters_with_one_line_each(
    base_params: dict, tmp_path: Path
) -> None:
    catalog = DataCatalog(
        datasets={"parameters": MemoryDataset({**base_params, "seed": "x", "run_label": 3})}
    )
    with pytest.raises(ParameterError) as stop:
        PreflightHook().before_pipeline_run(
            _run_params(tmp_path), training.create_pipeline(), catalog
        )
    assert str(stop.value).splitlines() == [
        "Parameter 'run_label' must be a valid string; got 3.",
        "Parameter 'seed' must be a valid integer; got 'x'.",
    ]


def test_preflight_names_inputs_no_run_has_saved(base_params: dict, tmp_path: Path) -> None:
    catalog = DataCatalog(
        datasets={
            "parameters": MemoryDataset(base_params),
            "model_input_test": NpzDataset(
                filepath=str(tmp_path / "test.npz"), version=Version(None, None)
            ),
            "model_input_validation": NpzDataset(
                filepath=str(tmp_path / "validation.npz"), version=Version(None, None)
            ),
            "model_input_train": NpzDataset(
                filepath=str(tmp_path / "train.npz"), version=Version(None, None)
            ),
        }
    )
    for split in ("test", "validation", "train"):
        _save(NpzDataset, tmp_path / f"{split}.npz", OLDER, {"a": np.zeros(1)})
    catalog["model"] = JSONDataset(filepath=str(tmp_path / "model"), version=Version(None, None))
    with pytest.raises(MissingInputError) as stop:
        PreflightHook().before_pipeline_run(
            _run_params(tmp_path), evaluate.create_pipeline(), catalog
        )
    assert str(stop.value) == (
        f"Input 'model' was never produced: no saved version under '{tmp_path / 'model'}'. "
        "Make it with `kedro run --pipelines training` (or `kedro run` for everything)."
    )


def test_in_an_empty_project_predict_names_the_model_and_every_pipeline_it_needs(
    base_params: dict, tmp_path: Path
) -> None:
    """The hint makes the model from nothing; the temperature, which predict reads only
    with predict.temperature_scaling on, is not asked for while it is off."""

    def catalog() -> DataCatalog:
        datasets = {
            name: JSONDataset(
                filepath=str(tmp_path / name), version=Version(None, None), metadata=metadata
            )
            for name, metadata in (
                ("model", None),
                ("user_model_input", None),
                ("temperature", {"needed_when": "predict.temperature_scaling"}),
                *((f"model_input_{split}", None) for split in ("train", "validation")),
            )
        }
        datasets["parameters"] = MemoryDataset(base_params)
        return DataCatalog(datasets=datasets)

    pipeline = predict.create_pipeline().from_nodes("predict_images")
    with pytest.raises(MissingInputError) as stop:
        PreflightHook().before_pipeline_run(_run_params(tmp_path), pipeline, catalog())
    assert str(stop.value).splitlines() == [
        f"Input 'model' was never produced: no saved version under '{tmp_path / 'model'}'. "
        "Make it with `kedro run --pipelines data_processing,training` (or `kedro run` for "
        "everything).",
        f"Input 'user_model_input' was never produced: no saved version under "
        f"'{tmp_path / 'user_model_input'}'. Make it with `kedro run --pipelines predict` (or "
        "`kedro run` for everything).",
    ]
    base_params["predict"]["temperature_scaling"] = True
    with pytest.raises(MissingInputError) as stop:
        PreflightHook().before_pipeline_run(_run_params(tmp_path), pipeline, catalog())
    assert "Input 'temperature' was never produced" in str(stop.value)


def test_preflight_names_a_load_version_that_is_not_there(
    base_params: dict, tmp_path: Path
) -> None:
    """--load-versions names a missing folder, and the newest that are there, also for a
    dataset that the run makes before it reads it; an input the catalog does not declare
    is named by itself."""
    for version in (OLDER, NEWER):
        _save(JSONDataset, tmp_path / "model", version, {"v": 1})
    missing = "2025-01-01T00.00.00.000Z"

    def catalog() -> DataCatalog:
        # As Kedro builds it for --load-versions model:<missing>.
        model = JSONDataset(filepath=str(tmp_path / "model"), version=Version(missing, None))
        return DataCatalog(datasets={"parameters": MemoryDataset(base_params), "model": model})

    run_params = _run_params(tmp_path, load_versions={"model": missing})
    no_version = (
        f"Input 'model' has no version '{missing}' under '{tmp_path / 'model'}'; the newest "
        f"there: {NEWER}, {OLDER}."
    )
    with pytest.raises(MissingInputError) as stop:
        PreflightHook().before_pipeline_run(run_params, evaluate.create_pipeline(), catalog())
    assert str(stop.value).splitlines() == [
        no_version,
        *(
            f"Input '{name}' was never produced: no saved version under '{name}'. Make it "
            "with `kedro run --pipelines data_processing` (or `kedro run` for everything)."
            for name in ("model_input_test", "model_input_validation")
        ),
    ]
    # A full run trains a model, then evaluates the one --load-versions names.
    recipe = training.create_pipeline() + evaluate.create_pipeline()
    with pytest.raises(MissingInputError) as stop:
        PreflightHook().before_pipeline_run(run_params, recipe, catalog())
    assert no_version in str(stop.value).splitlines()


def test_preflight_fetches_the_raw_data_or_says_where_to_put_it(
    base_params: dict, tmp_path: Path
) -> None:
    catalog = DataCatalog(
        datasets={
            "parameters": MemoryDataset(base_params),
            "raw_images": CIFAR10Dataset(path=str(tmp_path / "raw"), download=False),
        }
    )
    with pytest.raises(MissingInputError) as stop:
        PreflightHook().before_pipeline_run(
            _run_params(tmp_path), data_processing.create_pipeline(), catalog
        )
    assert str(stop.value).startswith("CIFAR-10 not found (downloading is off).")
    assert not (tmp_path / "raw").exists()


def _training_catalog(tmp_path: Path, base_params: dict, training: dict) -> DataCatalog:
    datasets = {
        "parameters": MemoryDataset({**base_params, "training": training}),
        "params:training": MemoryDataset(training),
        "run_context": MemoryDataset(),
    }
    for name in ("model_input_train", "model_input_validation"):
        if not (tmp_path / name).exists():
            _save(NpzDataset, tmp_path / name, OLDER, {"a": np.zeros(1)})
        datasets[name] = NpzDataset(filepath=str(tmp_path / name), version=Version(None, None))
    return DataCatalog(datasets=datasets)


def test_a_batch_the_devices_cannot_split_stops_the_run_before_any_node(
    base_params: dict, recipe_training: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hooks, "start_quietly", lambda: ["gpu:0", "gpu:1", "gpu:2"])
    recipe_training["distribution"] = "data_parallel"
    catalog = _training_catalog(tmp_path, base_params, recipe_training)
    with pytest.raises(ParameterError) as stop:
        PreflightHook().before_pipeline_run(
            _run_params(tmp_path), training.create_pipeline(), catalog
        )
    assert str(stop.value) == (
        "Parameter 'training.batch_size' must be a multiple of the 3 devices that "
        "data_parallel splits every batch over (say 63 or 66); got 64."
    )
    recipe_training["batch_size"] = 66
    catalog = _training_catalog(tmp_path, base_params, recipe_training)
    PreflightHook().before_pipeline_run(_run_params(tmp_path), training.create_pipeline(), catalog)
    assert catalog.load("run_context") == {"kedro_env": "unit"}


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
                for name in ("untrained_model", "model")
            }
            | {"run_context": MemoryDataset({"kedro_env": "unit"})}
        )

    _cluster_process(monkeypatch, 0)
    first = catalog()
    keep_outputs_in_memory(pipeline, first)
    assert isinstance(first.get("model"), JSONDataset)

    _cluster_process(monkeypatch, 1)
    second = catalog()
    with caplog.at_level(logging.INFO, logger="alexnet_cifar10"):
        keep_outputs_in_memory(pipeline, second)
    for name in ("untrained_model", "model"):
        assert isinstance(second.get(name), MemoryDataset), name
    assert second.load("run_context") == {"kedro_env": "unit"}
    assert [r.getMessage() for r in caplog.records if r.name == hooks.__name__] == [
        "Process 1 of 2 saves nothing: process 0 saves this run's 2 outputs."
    ]
    second.save("model", {"weights": [1]})
    assert second.load("model") == {"weights": [1]}
    assert list(tmp_path.iterdir()) == []


def _start(hook: GracefulStopHook, pipeline: Pipeline | None = None, catalog=None) -> None:
    """The hook's start, as Kedro calls it."""
    hook.before_pipeline_run(
        run_params={"run_id": THIS_RUN},
        pipeline=pipeline or Pipeline([]),
        catalog=catalog or DataCatalog(),
    )


class _Unhandled(AssertionError):
    """The signal reached the handler that was there before the hook's."""


def _unhandled(signum: int, frame: object) -> None:
    raise _Unhandled(f"signal {signum} was not handled by the hook")


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_and_sigterm_during_a_run_end_it_with_one_line(
    signum: int, status: int, capfd: pytest.CaptureFixture
) -> None:
    original = signal.signal(signum, _unhandled)  # a failing test, not a killed process
    hook = GracefulStopHook()
    try:
        _start(hook)
        with pytest.raises(SystemExit) as stop:
            os.kill(os.getpid(), signum)
            time.sleep(5)  # the handler runs before this sleep ends
        hook.after_pipeline_run()
        assert signal.getsignal(signum) is _unhandled, "the previous handler is back"
    finally:
        signal.signal(signum, original)
    assert stop.value.code == status
    assert capfd.readouterr().err == (
        f"Stopped by {signal.Signals(signum).name}: no partial version was published. No "
        "node had published an output yet. A rerun starts over; with training.resume.enabled "
        "it continues after the last finished epoch.\n"
    )


def test_a_stopped_or_failed_run_names_what_its_finished_nodes_published(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Read from the catalog: the outputs holding the run's own version, whichever runner
    saved them; an older version of an output that the run had not reached does not count."""
    catalog = DataCatalog(
        datasets={
            name: JSONDataset(filepath=str(tmp_path / name), version=Version(None, None))
            for name in ("model_summary", "model")
        }
    )
    _save(JSONDataset, tmp_path / "model_summary", THIS_RUN, {"rows": 1})
    _save(JSONDataset, tmp_path / "model", OLDER, {"weights": 1})
    hook = GracefulStopHook()
    _start(hook, training.create_pipeline(), catalog)
    assert hook.published() == (
        f"Published by the nodes that finished, as version {THIS_RUN}: model_summary."
    )
    with caplog.at_level(logging.WARNING, logger=hooks.__name__):
        hook.on_pipeline_error()
    assert caplog.messages[-1] == f"The run failed. {hook.published()}"


def test_the_stop_handlers_are_the_runs_own_and_only_the_main_thread_owns_them() -> None:
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    hook = GracefulStopHook()
    thread = threading.Thread(target=_start, args=(hook,))
    thread.start()
    thread.join()
    assert {signum: signal.getsignal(signum) for signum in before} == before
    _start(hook)
    assert all(signal.getsignal(signum) != before[signum] for signum in before)
    hook.on_pipeline_error()
    assert {signum: signal.getsignal(signum) for signum in before} == before
    hook.after_pipeline_run()
    assert {signum: signal.getsignal(signum) for signum in before} == before
