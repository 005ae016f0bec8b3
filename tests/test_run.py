"""End to end: `kedro run` as a user types it, in the `test` environment."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path, PurePosixPath

import pandas as pd
import pytest
from kedro.config import OmegaConfigLoader
from kedro_cli import REPO, kedro, versions
from test_validation import WRONG_TOP_LEVEL

from alexnet_cifar10.settings import CONFIG_LOADER_ARGS

pytestmark = pytest.mark.slow

VERSIONED = {
    "05_model_input": [
        "model_input_train.npz",
        "model_input_validation.npz",
        "model_input_test.npz",
    ],
    "06_models": ["alexnet_untrained.keras", "alexnet.keras"],
    "07_model_output": ["training_history.csv", "test_predictions.csv"],
    "08_reporting": [
        "dataset_report.json",
        "sample_images.png",
        "model_summary.csv",
        "test_metrics.json",
        "accuracy_plot.png",
        "loss_plot.png",
        "confusion_matrix_plot.png",
    ],
}
# What a user must never see on a plain run's console.
NOISE = (
    "I0000",
    "oneDNN",
    "cuInit",
    "absl::",
    "cuda drivers",
    "Traceback",
    "Deprecat",
    "type hints",
)


def snapshot(project: Path) -> dict[str, str]:
    """Hash of every file under data/ except the raw input and the sessions' record of the
    last save version they claimed."""
    return {
        str(p.relative_to(project)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((project / "data").rglob("*"))
        if p.is_file() and "01_raw" not in p.parts and not p.name.startswith(".last_save")
    }


def read(project: Path, layer: str, name: str, version: str) -> Path:
    """The file of one version of a dataset."""
    return project / "data" / "test" / layer / name / version / name


def test_run_then_evaluate_alone_then_again(finished_project: Path) -> None:
    project = finished_project
    for layer, names in VERSIONED.items():
        for name in names:
            assert len(versions(project, layer, name)) == 1, f"{layer}/{name}"
    [model_version] = versions(project, "06_models", "alexnet.keras")
    first = json.loads(
        read(project, "08_reporting", "test_metrics.json", model_version).read_text()
    )
    assert first["run_label"].startswith("TEST RUN")
    assert (first["kedro_env"], first["model_version"]) == ("test", model_version)
    assert first["test_images"] == 50
    history = read(project, "07_model_output", "training_history.csv", model_version)
    assert history.read_text().splitlines()[0].startswith("epoch,")
    summary = pd.read_csv(read(project, "08_reporting", "model_summary.csv", model_version))
    assert summary["layer"].iloc[-1] == "total"
    before = snapshot(project)

    # Re-evaluate the latest model without retraining, with both spellings of the flag.
    for flag in ("--pipeline", "--pipelines"):
        result = kedro(project, "run", "--env", "test", flag, "evaluate")
        assert result.returncode == 0, result.stderr[-4000:]
    assert versions(project, "06_models", "alexnet.keras") == [model_version]
    assert len(versions(project, "08_reporting", "test_metrics.json")) == 3

    # A second data_processing run adds versions and leaves the first run's files untouched.
    result = kedro(project, "run", "--env", "test", "--pipelines", "data_processing")
    assert result.returncode == 0, result.stderr[-4000:]
    assert len(versions(project, "05_model_input", "model_input_train.npz")) == 2
    after = snapshot(project)
    assert {path: after[path] for path in before} == before


def test_a_plain_run_prints_no_backend_noise_nor_deprecations(project: Path) -> None:
    result = kedro(project, "run", "--env", "test")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    output = result.stdout + result.stderr
    assert [word for word in NOISE if word in output] == []
    assert "Training on cpu:0" in output
    [version] = versions(project, "06_models", "alexnet.keras")
    tracked = f"Tracking this run in MLflow: run '{version}' of experiment 'alexnet_cifar10' in"
    assert tracked in result.log, result.log[-2000:]


def test_results_are_labelled_by_the_model_not_by_the_command(finished_project: Path) -> None:
    """A model trained in `test`, evaluated by a command in another environment, keeps its
    own label; `--load-versions model:<older>` evaluates that older model, with its own
    history and facts."""
    project = finished_project
    [older] = versions(project, "06_models", "alexnet.keras")
    other = project / "conf" / "other"
    shutil.copytree(project / "conf" / "test", other)
    (other / "parameters.yml").write_text(
        (other / "parameters.yml").read_text().replace("TEST RUN: synthetic data", "OTHER RUN")
        + "\nseed: 7\n"
    )
    result = kedro(project, "run", "--env", "other", "--pipelines", "training")
    assert result.returncode == 0, result.stderr[-4000:]
    newer = versions(project, "06_models", "alexnet.keras")[-1]

    result = kedro(project, "run", "--env", "other", "--pipelines", "evaluate")
    assert result.returncode == 0, result.stderr[-4000:]
    result = kedro(
        project, "run", "--env", "other", "--pipelines", "evaluate",
        "--load-versions", f"model:{older}",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    *_, on_newer, on_older = versions(project, "08_reporting", "test_metrics.json")
    metrics = {
        version: json.loads(read(project, "08_reporting", "test_metrics.json", version).read_text())
        for version in (on_newer, on_older)
    }
    assert (metrics[on_newer]["run_label"], metrics[on_newer]["kedro_env"]) == (
        "OTHER RUN",
        "other",
    )
    assert metrics[on_newer]["model_version"] == newer
    assert (metrics[on_older]["run_label"], metrics[on_older]["kedro_env"]) == (
        "TEST RUN: synthetic data",
        "test",
    )
    assert metrics[on_older]["model_version"] == older
    predictions = pd.read_csv(read(project, "07_model_output", "test_predictions.csv", on_older))
    assert set(predictions["model_version"]) == {older}
    first = pd.read_csv(read(project, "07_model_output", "test_predictions.csv", older))
    pd.testing.assert_frame_equal(predictions, first)
    # Which is the older model's own answer, not the newer one's (seeded otherwise).
    on_newer_predictions = read(project, "07_model_output", "test_predictions.csv", on_newer)
    newer_answers = pd.read_csv(on_newer_predictions).filter(like="p_").to_numpy()
    assert abs(newer_answers - predictions.filter(like="p_").to_numpy()).max() > 1e-3


@pytest.mark.parametrize(("key", "value", "line"), WRONG_TOP_LEVEL)
def test_a_wrong_type_on_the_command_line_stops_the_run_before_any_node(
    project: Path, key: str, value: object, line: str
) -> None:
    given = json.dumps(value) if not isinstance(value, str) else value
    result = kedro(project, "run", "--env", "test", "--params", f"{key}={given}")
    output = result.stdout + result.stderr
    assert result.returncode == 1
    assert f"Run stopped: {line}\n" in result.log or f"Error: {line}" in output, output[-3000:]
    assert "Traceback" not in output
    assert not (project / "data" / "test" / "05_model_input" / "model_input_train.npz").exists()


def test_evaluate_on_a_fresh_clone_says_which_command_makes_its_inputs(project: Path) -> None:
    result = kedro(project, "run", "--env", "test", "--pipelines", "evaluate")
    output = result.stdout + result.stderr
    assert result.returncode == 1
    assert "Traceback" not in output and "Did not find any versions" not in output
    assert (
        "Run stopped: Input 'model' was never produced: no saved version under "
        f"'{project}/data/test/06_models/alexnet.keras'. Make it with `kedro run --pipelines "
        "data_processing,training` (or `kedro run` for everything).\n"
    ) in result.log
    assert (
        "Run stopped: Input 'model_input_test' was never produced: no saved version under "
        f"'{project}/data/test/05_model_input/model_input_test.npz'. Make it with `kedro run "
        "--pipelines data_processing` (or `kedro run` for everything).\n"
    ) in result.log


def test_an_unknown_model_version_is_named(finished_project: Path) -> None:
    result = kedro(
        finished_project, "run", "--env", "test", "--pipelines", "evaluate",
        "--load-versions", "model:2000-01-01T00.00.00.000Z",
    )  # fmt: skip
    assert result.returncode == 1
    assert "Input 'model' has no version '2000-01-01T00.00.00.000Z' under" in result.log


def test_a_mistyped_pipeline_name_lists_the_pipelines(project: Path) -> None:
    result = kedro(project, "run", "--env", "test", "--pipelines", "evalute")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Error: No pipeline named 'evalute'; the pipelines are: __default__, data_processing, "
        "evaluate, export, features, predict, promote, robustness, training, tune."
    ]


def test_one_environments_outputs_never_stand_in_for_anothers(finished_project: Path) -> None:
    """After a run in `test`, the base environment has no model of its own: its evaluate
    asks for one instead of reading the test run's, and its --only-missing-outputs would
    run every node (each environment's outputs live under its own `outputs` folder)."""
    result = kedro(finished_project, "run", "--pipelines", "evaluate")
    assert result.returncode == 1
    assert (
        "Run stopped: Input 'model' was never produced: no saved version under "
        f"'{finished_project}/data/06_models/alexnet.keras'."
    ) in result.log
    roots = {}
    for env in ("base", "quick", "tuned", "test"):
        loader = OmegaConfigLoader(
            str(REPO / "conf"), env=None if env == "base" else env, **CONFIG_LOADER_ARGS
        )
        paths = [
            entry["filepath"]
            for entry in loader["catalog"].values()
            if isinstance(entry, dict) and "filepath" in entry
        ]
        roots[env] = {PurePosixPath(path).parent.parent for path in paths}
    assert roots == {
        "base": {PurePosixPath("data")},
        **{env: {PurePosixPath("data") / env} for env in ("quick", "tuned", "test")},
    }
