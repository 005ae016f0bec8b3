"""The project's hooks, called as Kedro calls them, on small catalogs."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.io.core import VERSION_FORMAT, Version, generate_timestamp
from kedro.pipeline import Node, Pipeline

from alexnet_cifar10 import hooks
from alexnet_cifar10.datasets import JSONDataset, KerasModelDataset, NpzDataset
from alexnet_cifar10.hooks import (
    GracefulStopHook,
    PreflightHook,
    QuietBackendHook,
    RunVersionsHook,
    SingleWriterHook,
    _sections_used,
    claim_save_version,
    run_env,
)
from alexnet_cifar10.pipeline_registry import producers
from alexnet_cifar10.pipelines import data_processing, evaluate, features, predict, training
from alexnet_cifar10.validation import SECTIONS

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
    assert _sections_used(training.create_pipeline()) == {
        "training",
        "seed",
        "class_names",
        "run_label",
    }
    assert _sections_used(evaluate.create_pipeline()) == {"class_names", "evaluate"}
    assert _sections_used(predict.create_pipeline()) == {"class_names", "predict"}
    assert _sections_used(features.create_pipeline()) == {"class_names", "features", "seed"}


def test_a_node_that_reads_all_parameters_uses_every_section() -> None:
    pipeline = Pipeline([Node(len, "parameters", None, name="count_parameters")])
    assert _sections_used(pipeline) == set(SECTIONS)


def test_a_run_without_env_runs_in_the_default_environment() -> None:
    # Kedro passes env None when `kedro run` has no --env.
    assert run_env({"env": None}) == "local"
    assert run_env({"env": "test"}) == "test"


def test_producers_name_the_pipeline_that_makes_each_dataset() -> None:
    made_by = producers()
    assert made_by["model"] == made_by["untrained_model"] == "training"
    assert made_by["model_input_test"] == "data_processing"
    assert made_by["test_metrics"] == "evaluate"
    assert made_by["user_predictions"] == made_by["contact_sheet"] == "predict"
    assert made_by["embeddings"] == made_by["linear_probe_metrics"] == "features"
    assert "cifar10_raw" not in made_by and "user_images" not in made_by


def test_preflight_stops_bad_parameters_with_one_line_each(
    base_params: dict, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    catalog = DataCatalog(
        datasets={"parameters": MemoryDataset({**base_params, "seed": "x", "run_label": 3})}
    )
    with caplog.at_level(logging.ERROR), pytest.raises(SystemExit) as stop:
        PreflightHook().before_pipeline_run(
            _run_params(tmp_path), training.create_pipeline(), catalog
        )
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
        PreflightHook().before_pipeline_run(
            _run_params(tmp_path), evaluate.create_pipeline(), catalog
        )
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        f"Run stopped: Input '{name}' was never produced: no saved version under "
        f"'{tmp_path / name}'. Make it with `kedro run --pipelines training` (or `kedro run` "
        "for everything)."
        for name in ("model", "training_history", "training_run")
    ]


def test_preflight_names_a_load_version_that_is_not_there(
    base_params: dict, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """--load-versions names a missing folder; an input the catalog does not declare is
    named by itself."""
    _save(JSONDataset, tmp_path / "model", NEWER, {"v": 1})
    catalog = DataCatalog(
        datasets={
            "parameters": MemoryDataset(base_params),
            # As Kedro builds it for --load-versions model:<OLDER>.
            "model": JSONDataset(filepath=str(tmp_path / "model"), version=Version(OLDER, None)),
        }
    )
    for name in ("training_run", "training_history"):
        _save(JSONDataset, tmp_path / name, NEWER, {"v": 1})
        catalog[name] = JSONDataset(filepath=str(tmp_path / name), version=Version(None, None))
    run_params = _run_params(tmp_path, load_versions={"model": OLDER})
    with caplog.at_level(logging.ERROR), pytest.raises(SystemExit):
        PreflightHook().before_pipeline_run(run_params, evaluate.create_pipeline(), catalog)
    assert caplog.messages == [
        f"Run stopped: Input 'model' has no version '{OLDER}' under '{tmp_path / 'model'}': "
        "pick one of the folders there in --load-versions.",
        "Run stopped: Input 'model_input_test' was never produced: no saved version under "
        "'model_input_test'. Make it with `kedro run --pipelines data_processing` (or "
        "`kedro run` for everything).",
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
    RunVersionsHook().before_pipeline_run(_run_params(tmp_path), evaluate.create_pipeline(), newest)
    assert newest.load("training_run") == {"model_version": NEWER}
    older = catalog({"model": OLDER})
    RunVersionsHook().before_pipeline_run(
        _run_params(tmp_path, load_versions={"model": OLDER}), evaluate.create_pipeline(), older
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
    RunVersionsHook().before_pipeline_run(_run_params(tmp_path), pipeline, catalog)
    dataset = catalog.get("model_input_test")
    assert dataset.resolve_load_version() == THIS_RUN
    assert catalog.load("run_context") == {"kedro_env": "unit", "save_version": THIS_RUN}


def test_a_run_reads_its_own_model_when_an_overlapping_run_saves_a_newer_one(
    tmp_path: Path,
) -> None:
    """Runs A and B train together; B saves its model after A saved its own, before A's
    evaluate reads it. A evaluates its own model, which without the hook it would not."""
    later = "2026-03-01T00.00.05.000Z"
    pipeline = training.create_pipeline() + evaluate.create_pipeline()

    def catalog_of_run(run_id: str) -> DataCatalog:
        # As Kedro builds it for a run: every versioned dataset saves as the run's version.
        datasets = {
            name: NpzDataset(filepath=str(tmp_path / name), version=Version(None, run_id))
            for name in ("model", "training_run")
        }
        return DataCatalog(datasets={**datasets, "run_context": MemoryDataset()})

    run_a, unpinned = catalog_of_run(THIS_RUN), catalog_of_run(THIS_RUN)
    RunVersionsHook().before_pipeline_run(_run_params(tmp_path), pipeline, run_a)
    run_a.save("model", {"trained_by": np.array(["A"])})
    run_a.save("training_run", {"trained_by": np.array(["A"])})
    run_b = catalog_of_run(later)
    run_b.save("model", {"trained_by": np.array(["B"])})
    run_b.save("training_run", {"trained_by": np.array(["B"])})
    assert run_a.load("model")["trained_by"].tolist() == ["A"]
    assert run_a.load("training_run")["trained_by"].tolist() == ["A"]
    assert unpinned.load("model")["trained_by"].tolist() == ["B"], "the race is real"


def test_a_save_version_is_claimed_once(tmp_path: Path) -> None:
    first = claim_save_version(tmp_path, THIS_RUN)
    second = claim_save_version(tmp_path, THIS_RUN)
    assert first == THIS_RUN
    assert second > THIS_RUN
    assert sorted(p.name for p in tmp_path.iterdir()) == [first, second]


def test_a_taken_version_gives_way_to_the_time_of_the_claim(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    claim_save_version(tmp_path, THIS_RUN)
    waits: list[float] = []
    monkeypatch.setattr(hooks.time, "sleep", waits.append)
    before = generate_timestamp()
    later = claim_save_version(tmp_path, THIS_RUN)
    # One millisecond's wait: a run that collided starts a moment later, not seconds.
    assert waits == [0.001]
    assert before <= later <= generate_timestamp()
    datetime.strptime(later, VERSION_FORMAT)  # a version Kedro itself could have drawn


def test_a_claimed_version_never_sorts_before_the_one_wanted(tmp_path: Path) -> None:
    """Kedro loads the newest version: a run must not take a version older than the one
    it drew, even when that one is taken while the clock has not reached it yet."""
    ahead = (datetime.now(tz=timezone.utc) + timedelta(milliseconds=50)).strftime(VERSION_FORMAT)
    wanted = ahead[:-4] + "Z"  # milliseconds, as Kedro's versions
    claim_save_version(tmp_path, wanted)
    assert claim_save_version(tmp_path, wanted) > wanted


def test_runs_that_draw_the_same_version_save_under_different_ones(tmp_path: Path) -> None:
    """Two runs started in the same millisecond: the second saves all its outputs, and
    names its run, under a version of its own."""
    pipeline = data_processing.create_pipeline()
    runs = []
    for label in ("A", "B"):
        catalog = DataCatalog(
            datasets={
                name: NpzDataset(filepath=str(tmp_path / name), version=Version(None, THIS_RUN))
                for name in ("model_input_train", "model_input_test")
            }
        )
        run_params = _run_params(tmp_path)
        RunVersionsHook().before_pipeline_run(run_params, pipeline, catalog)
        catalog.save("model_input_test", {"run": np.array([label])})
        catalog.save("model_input_train", {"run": np.array([label])})
        runs.append((run_params["run_id"], catalog))
    (version_a, run_a), (version_b, run_b) = runs
    assert version_a == THIS_RUN != version_b
    for name in ("model_input_train", "model_input_test"):
        assert sorted(p.name for p in (tmp_path / name).iterdir()) == [version_a, version_b]
        assert run_a.load(name)["run"].tolist() == ["A"]
        assert run_b.load(name)["run"].tolist() == ["B"]


def test_load_versions_win_over_the_runs_own_versions(tmp_path: Path) -> None:
    for version in (OLDER, THIS_RUN):
        _save(NpzDataset, tmp_path / "model_input_test", version, {"v": np.array([version])})
    _save(NpzDataset, tmp_path / "model", OLDER, {"v": np.array([OLDER])})
    catalog = DataCatalog(
        datasets={
            name: NpzDataset(filepath=str(tmp_path / name), version=Version(OLDER, THIS_RUN))
            for name in ("model_input_test", "model")
        }
    )
    pipeline = data_processing.create_pipeline() + evaluate.create_pipeline()
    run_params = _run_params(tmp_path, load_versions={"model_input_test": OLDER})
    RunVersionsHook().before_pipeline_run(run_params, pipeline, catalog)
    assert catalog.load("model_input_test")["v"].tolist() == [OLDER]


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
        hook.before_pipeline_run()
        with pytest.raises(SystemExit) as stop:
            os.kill(os.getpid(), signum)
            time.sleep(5)  # the handler runs before this sleep ends
        hook.after_pipeline_run()
        assert signal.getsignal(signum) is _unhandled, "the previous handler is back"
    finally:
        signal.signal(signum, original)
    assert stop.value.code == status
    assert capfd.readouterr().err == (
        f"Stopped by {signal.Signals(signum).name}: no partial version was published; run "
        "again to continue (training resumes when training.resume.enabled).\n"
    )


def test_the_stop_handlers_are_the_runs_own_and_only_the_main_thread_owns_them() -> None:
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    hook = GracefulStopHook()
    thread = threading.Thread(target=hook.before_pipeline_run)
    thread.start()
    thread.join()
    assert {signum: signal.getsignal(signum) for signum in before} == before
    hook.before_pipeline_run()
    assert all(signal.getsignal(signum) == GracefulStopHook._stop for signum in before)
    hook.on_pipeline_error()
    assert {signum: signal.getsignal(signum) for signum in before} == before
    hook.after_pipeline_run()
    assert {signum: signal.getsignal(signum) for signum in before} == before
