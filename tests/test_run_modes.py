"""`kedro run` with the flags a Kedro user types every day, in the `test` environment:
every output names the model that produced it, whichever version Kedro loads, whichever
nodes run and whichever runner runs them; a mistyped name is one line."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from kedro.io.core import Version
from kedro_cli import ENV, kedro, kedro_here, make_project, versions
from synthetic_cifar import release_files, write_archive

from alexnet_cifar10.datasets import NpzDataset, TrainedModelDataset
from alexnet_cifar10.provenance import LABELS

pytestmark = pytest.mark.slow

# Every versioned output of the recipe that names a model, and how: a table's rows or a
# JSON file's keys.
LABELLED_TABLES = {
    "07_model_output": ["test_predictions.csv", "training_history.csv"],
}
LABELLED_FILES = {"08_reporting": ["test_metrics.json"]}


def _file(project: Path, layer: str, name: str, version: str) -> Path:
    return project / "data" / "test" / layer / name / version / name


def _model(project: Path, version: str):
    dataset = TrainedModelDataset(
        filepath=str(project / "data/test/06_models/alexnet.keras"), version=Version(version, None)
    )
    return dataset.load()


def _test_images(project: Path, run: str) -> dict[str, np.ndarray]:
    """The test split a run read: the newest saved by then."""
    version = max(
        v for v in versions(project, "05_model_input", "model_input_test.npz") if v <= run
    )
    path = project / "data/test/05_model_input/model_input_test.npz"
    return NpzDataset(filepath=str(path), version=Version(version, None)).load()


def _named_model(table: pd.DataFrame) -> str:
    [(version,)] = table[["model_version"]].drop_duplicates().itertuples(index=False)
    return version


def assert_outputs_name_their_model(project: Path, run: str) -> dict[str, str]:
    """Every output the run `run` saved names one model, with that model's own labels; the
    predictions are that model's probabilities and the history its own. Returns the model
    each output names."""
    named = {}
    for layer, names in LABELLED_TABLES.items():
        for name in names:
            if run in versions(project, layer, name):
                table = pd.read_csv(_file(project, layer, name, run))
                named[name] = _named_model(table)
                model = _model(project, named[name])
                labels = table[list(LABELS)].drop_duplicates().to_dict("records")
                assert labels == [model.labels], name
                if name == "training_history.csv":
                    pd.testing.assert_frame_equal(table.drop(columns=list(LABELS)), model.history)
                else:
                    test = _test_images(project, run)
                    images = test["images"]
                    np.testing.assert_array_equal(table["test_batch_index"], test["index"])
                    expected = model.network.predict(images, verbose=0)
                    np.testing.assert_allclose(table.filter(like="p_"), expected, atol=1e-5)
    for layer, names in LABELLED_FILES.items():
        for name in names:
            if run in versions(project, layer, name):
                saved = json.loads(_file(project, layer, name, run).read_text())
                named[name] = saved["model_version"]
                labels = {key: saved[key] for key in LABELS}
                assert labels == _model(project, named[name]).labels, name
    return named


def _last_run(project: Path) -> str:
    """The save version of the project's latest run: the newest version folder in data/test/."""
    return max(
        folder.name
        for folder in (project / "data" / "test").glob("*/*/*")
        if re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d\.\d\d\.\d\d\.\d{3}Z", folder.name)
    )


def _ok(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, (
        result.stdout[-3000:] + result.stderr[-3000:] + result.log[-3000:]
    )
    assert "Traceback" not in result.stdout + result.stderr
    # kedro-viz's note on partial runs and other runners, at every one (conf/logging.yml).
    assert "Workflow tracking is disabled" not in result.stdout + result.stderr + getattr(
        result, "log", ""
    )


def test_a_full_run_that_evaluates_an_older_model_names_that_model(
    finished_project: Path,
) -> None:
    """`kedro run --load-versions model:<older>` trains a new model and evaluates the
    older one: every evaluation output, and the MLflow run, say which."""
    project = finished_project
    [older] = versions(project, "06_models", "alexnet.keras")
    _ok(
        kedro_here(
            project,
            "run",
            "--env",
            "test",
            "--params",
            "seed=1",
            "--load-versions",
            f"model:{older}",
        )
    )
    newer = versions(project, "06_models", "alexnet.keras")[-1]
    assert newer != older
    named = assert_outputs_name_their_model(project, newer)
    assert set(named.values()) == {older}
    assert set(named) == {"test_predictions.csv", "training_history.csv", "test_metrics.json"}
    # The new model answers otherwise: the probabilities above are the older one's.
    images = _test_images(project, newer)["images"]
    apart = _model(project, newer).network.predict(images, verbose=0)
    assert np.abs(apart - _model(project, older).network.predict(images, verbose=0)).max() > 1e-3


def test_partial_runs_label_what_they_recompute_by_what_they_read(finished_project: Path) -> None:
    project = finished_project
    [older] = versions(project, "06_models", "alexnet.keras")
    _ok(
        kedro_here(project, "run", "--env", "test", "--pipelines", "training", "--params", "seed=1")
    )
    newer = versions(project, "06_models", "alexnet.keras")[-1]
    evaluate = ("run", "--env", "test", "--pipelines", "evaluate")
    runs = {
        "older model": (*evaluate, "--load-versions", f"model:{older}"),
        "--nodes": ("run", "--env", "test", "--nodes", "compute_test_metrics"),
        "--from-inputs": ("run", "--env", "test", "--from-inputs", "test_predictions"),
        "--to-nodes": (*evaluate, "--to-nodes", "predict_test_set"),
        "--from-nodes": (*evaluate, "--from-nodes", "extract_training_history"),
    }
    named = {}
    for what, command in runs.items():
        _ok(kedro_here(project, *command))
        named[what] = assert_outputs_name_their_model(project, _last_run(project))
    assert named["older model"] == dict.fromkeys(
        ["test_predictions.csv", "training_history.csv", "test_metrics.json"], older
    )
    # The metrics of the older model's predictions, recomputed alone, are the older model's.
    assert named["--nodes"] == {"test_metrics.json": older}
    assert named["--from-inputs"] == {"test_metrics.json": older}
    # Predicting again reads the newest model; its history, too.
    assert named["--to-nodes"] == {"test_predictions.csv": newer}
    assert named["--from-nodes"] == {"training_history.csv": newer}


def _ran(result: subprocess.CompletedProcess) -> list[str]:
    """The nodes a run ran, in order."""
    return [
        line.split("Running node: ")[1].split(":")[0]
        for line in result.log.splitlines()
        if "Running node: " in line
    ]


def test_only_missing_outputs_reruns_only_what_is_missing(finished_project: Path) -> None:
    project = finished_project
    before = {path for path in (project / "data").rglob("*") if "01_raw" not in path.parts}
    result = kedro_here(project, "run", "--env", "test", "--only-missing-outputs")
    _ok(result)
    # The metric histories belong to the run's new MLflow run, and the registry's alias is
    # no file: their nodes run again, and the gates write a new report.
    assert sorted(_ran(result)) == ["check_gates", "tracked_scores", "training_curves"]
    after = {path for path in (project / "data").rglob("*") if "01_raw" not in path.parts}
    assert all("promotion_report.json" in path.parts for path in after - before)

    [run] = versions(project, "08_reporting", "test_metrics.json")
    shutil.rmtree(project / "data/test/08_reporting/test_metrics.json" / run)
    result = kedro_here(project, "run", "--env", "test", "--only-missing-outputs")
    _ok(result)
    assert sorted(_ran(result)) == [
        "check_gates",
        "compute_test_metrics",
        "tracked_scores",
        "training_curves",
    ]
    assert versions(project, "06_models", "alexnet.keras") == [run], "never retrains"
    [again] = versions(project, "08_reporting", "test_metrics.json")
    assert assert_outputs_name_their_model(project, again) == {"test_metrics.json": run}


@pytest.mark.parametrize(
    "flags",
    [("--runner", "ThreadRunner"), ("--runner", "ParallelRunner"), ("--async",)],
    ids=["ThreadRunner", "ParallelRunner", "async"],
)
def test_every_runner_saves_what_the_default_runner_saves(
    finished_project: Path, tmp_path: Path, flags: tuple[str, ...]
) -> None:
    """Training is seeded and deterministic on this CPU: the same run under another runner
    saves the same model, predictions, metrics and reports."""
    project = make_project(tmp_path / "other")
    _ok(kedro_here(project, "run", "--env", "test", *flags))
    [run] = versions(project, "06_models", "alexnet.keras")
    [reference] = versions(finished_project, "06_models", "alexnet.keras")
    named = assert_outputs_name_their_model(project, run)
    assert set(named.values()) == {run}

    def read(root: Path, version: str, layer: str, name: str) -> pd.DataFrame:
        table = pd.read_csv(_file(root, layer, name, version))
        return table.drop(columns=["model_version", "epoch_seconds"], errors="ignore")

    for name in ("test_predictions.csv", "training_history.csv"):
        pd.testing.assert_frame_equal(
            read(project, run, "07_model_output", name),
            read(finished_project, reference, "07_model_output", name),
        )
    for layer, name in (
        ("08_reporting", "test_metrics.json"),
        ("08_reporting", "dataset_report.json"),
    ):
        ours = json.loads(_file(project, layer, name, run).read_text())
        theirs = json.loads(_file(finished_project, layer, name, reference).read_text())
        ours.pop("model_version", None), theirs.pop("model_version", None)
        assert ours == theirs, name

    # MLflow records the same parameters, tags and metric names under every runner.
    mlflow = pytest.importorskip("mlflow", reason="MLflow is a dependency of the project")
    [ours] = mlflow.MlflowClient(f"sqlite:///{project / 'mlflow.db'}").search_runs(["1"])
    [theirs] = mlflow.MlflowClient(f"sqlite:///{finished_project / 'mlflow.db'}").search_runs(["1"])
    if "ParallelRunner" in flags:
        # Kedro 1.7 starts its worker processes without the project's settings (a worker
        # reads PACKAGE_NAME, None there), and kedro-mlflow's hook there logs each
        # parameter a node reads whole, unflattened: the same parameters, fewer keys.
        def covered(keys: set[str], by: set[str]) -> bool:
            return all(any(k == b or k.startswith(f"{b}.") for b in by) for k in keys)

        assert covered(set(theirs.data.params), set(ours.data.params))
        assert all(any(t.startswith(o) for t in theirs.data.params) for o in ours.data.params)
    else:
        assert ours.data.params.keys() == theirs.data.params.keys()
        # Every artifact in the one run, whichever thread saved it.
        ours_client = mlflow.MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
        listed = {artifact.path for artifact in ours_client.list_artifacts(ours.info.run_id)}
        assert len(listed) == 10, listed
    assert ours.data.metrics.keys() == theirs.data.metrics.keys()
    assert ours.data.tags["model_version"] == run and ours.info.status == "FINISHED"


def test_the_packaged_project_runs_from_an_empty_folder(
    finished_project: Path, tmp_path: Path
) -> None:
    """`kedro package`, the wheel installed, `python -m alexnet_cifar10` from a folder that
    holds nothing: without the data it stops before its first node, with it it runs."""
    _ok(kedro(finished_project, "package"))
    site = tmp_path / "site"
    wheel = next((finished_project / "dist").glob("*.whl"))
    install = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site)]
    subprocess.run([*install, str(wheel)], check=True, capture_output=True)
    conf = finished_project / "dist" / "conf-alexnet_cifar10.tar.gz"
    empty = tmp_path / "empty"
    empty.mkdir()

    def packaged() -> subprocess.CompletedProcess:
        command = [
            sys.executable,
            "-m",
            "alexnet_cifar10",
            f"--conf-source={conf}",
            "--env",
            "test",
        ]
        env = {**ENV, "PYTHONPATH": str(site)}
        return subprocess.run(
            command, cwd=empty, env=env, capture_output=True, text=True, timeout=600, check=False
        )

    result = packaged()
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-3000:]
    assert "Run stopped: CIFAR-10 not found (downloading is off)" in output
    assert "Traceback" not in output and "Running node" not in output
    assert not (empty / "data").exists(), "nothing written"

    write_archive(empty / "data" / "01_raw", release_files(per_batch=20))
    result = packaged()
    _ok(result)
    [run] = versions(empty, "06_models", "alexnet.keras")
    assert set(assert_outputs_name_their_model(empty, run).values()) == {run}


# --- one line for every mistyped name -------------------------------------------------------

NODES = (
    "build_model, build_model_inputs, calibration_report, check_gates, compute_test_metrics, "
    "export_onnx, extract_training_history, fit_temperature, onnx_parity, "
    "package_served_model, plot_accuracy, plot_confusion_matrix, plot_loss, plot_reliability, "
    "plot_sample_images, predict_test_set, summarise_dataset, summarise_model, "
    "tracked_scores, train_model, training_curves"
)
DATASETS = (
    "accuracy_plot, calibration_metrics, champion, confusion_matrix_plot, "
    "dataset_report, export_parity, loss_plot, model, model_input_test, model_input_train, "
    "model_input_validation, model_summary, onnx_model, promotion_report, raw_images, "
    "raw_inventory, reliability_diagram, run_context, sample_images, served_model, temperature, "
    "test_metrics, test_predictions, test_scores, training_curves, training_history, "
    "untrained_model"
)
PIPELINES = (
    "__default__, data_processing, evaluate, export, features, predict, promote, robustness, "
    "training, tune"
)
MISTYPED = [
    (["--nodes", "trian_model"], f"No node named 'trian_model'; the nodes are: {NODES}."),
    (["--from-nodes", "trian_model"], f"No node named 'trian_model'; the nodes are: {NODES}."),
    (["--to-nodes", "trian_model"], f"No node named 'trian_model'; the nodes are: {NODES}."),
    (["--to-outputs", "modle"], f"No dataset named 'modle'; the datasets are: {DATASETS}."),
    (["--from-inputs", "modle"], f"No dataset named 'modle'; the datasets are: {DATASETS}."),
    (["--tags", "training"], "No tag named 'training'; the tags are: (none)."),
    (["--namespaces", "training"], "No namespace named 'training'; the namespaces are: (none)."),
    (
        ["--runner", "ParalelRunner"],
        "No runner named 'ParalelRunner'; the runners are: ParallelRunner, SequentialRunner, "
        "ThreadRunner, or the dotted path of a runner class of your own.",
    ),
    (
        ["--load-versions", "model"],
        "Expected the form of 'load_versions' to be 'dataset_name:YYYY-MM-DDThh.mm.ss.sssZ',"
        "found model instead",
    ),
    (
        ["--pipelines", "evalute"],
        f"No pipeline named 'evalute'; the pipelines are: {PIPELINES}.",
    ),
]


@pytest.fixture(scope="module")
def cli_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_project(tmp_path_factory.mktemp("cli") / "project")


@pytest.mark.parametrize(("args", "line"), MISTYPED, ids=[args[0] for args, _ in MISTYPED])
def test_a_mistyped_name_is_one_line_naming_what_exists(
    cli_project: Path, args: list[str], line: str
) -> None:
    result = kedro_here(cli_project, "run", "--env", "test", *args)
    assert result.returncode == 1, result.stdout
    assert result.stdout == f"Error: {line}\n"
    assert not (cli_project / "data" / "test" / "05_model_input").exists()


def test_a_mistyped_load_version_or_conf_source_is_kedros_or_clicks_one_line(
    cli_project: Path,
) -> None:
    unknown = kedro_here(cli_project, "run", "--env", "test", "--load-versions", "modle:2026")
    assert unknown.returncode == 1
    assert unknown.log.splitlines()[-1] == (
        "alexnet_cifar10.cli - ERROR - Run stopped: 'load_versions' keys [modle] are not found "
        "in the catalog."
    )
    missing = kedro_here(cli_project, "run", "--conf-source", "confs")
    assert missing.returncode == 2, missing.stdout
    assert missing.stdout.splitlines()[-1] == (
        "Error: Invalid value for '--conf-source': Path 'confs' does not exist."
    )
    assert "Traceback" not in unknown.stdout + missing.stdout
    assert not (cli_project / "data" / "test" / "05_model_input").exists()


BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{name}: &{name} [{', '.join([f'*{previous}'] * 10)}]\n"
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True)
)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("training: {epochs: [1\n", "Invalid YAML or JSON file"),
        ("seed: !!python/object:os.system 1\n", "could not determine a constructor"),
        (BOMB, "YAML node expansion exceeds the configured limit"),
    ],
    ids=["malformed", "python-tag", "alias-bomb"],
)
def test_a_bad_local_parameters_file_is_one_line(
    cli_project: Path, content: str, problem: str
) -> None:
    local = cli_project / "conf/local/parameters.yml"
    local.write_text(content)
    try:
        result = kedro_here(cli_project, "run", "--pipelines", "data_processing")
    finally:
        local.unlink()
    assert result.returncode == 1
    [line] = [line for line in result.stdout.splitlines() if line.startswith("Error:")]
    assert line.startswith("Error: Configuration refused: ") and problem in line, line
    assert "Traceback" not in result.stdout
    assert not (cli_project / "data" / "05_model_input").exists()


def test_a_mistyped_environment_is_one_line(
    cli_project: Path,
) -> None:
    result = kedro_here(cli_project, "run", "--env", "tset")
    assert result.returncode == 1
    assert result.stdout == (
        f"Error: No environment named 'tset' in '{cli_project / 'conf'}'; the environments "
        "are: base, labelled, local, quick, test, tuned.\n"
    )


def test_a_mistyped_pipeline_to_describe_is_one_line(
    cli_project: Path,
) -> None:
    result = kedro_here(cli_project, "registry", "describe", "evalute")
    assert result.returncode == 1
    assert result.stdout == f"Error: No pipeline named 'evalute'; the pipelines are: {PIPELINES}.\n"
    described = kedro_here(cli_project, "registry", "describe", "evaluate")
    assert described.returncode == 0 and "predict_test_set (predict_test_set)" in described.stdout


def test_a_load_version_that_is_not_there_names_the_newest_that_are(finished_project: Path) -> None:
    [version] = versions(finished_project, "06_models", "alexnet.keras")
    missing = "2026-01-01T00.00.00.000Z"
    result = kedro(finished_project, "run", "--env", "test", "--load-versions", f"model:{missing}")
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    assert result.log.splitlines()[-1].endswith(
        f"ERROR - Run stopped: Input 'model' has no version '{missing}' under "
        f"'{finished_project / 'data/test/06_models/alexnet.keras'}'; the newest there: {version}."
    )
    assert versions(finished_project, "06_models", "alexnet.keras") == [version], "nothing ran"
