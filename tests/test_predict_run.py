"""End to end: `kedro run --pipelines predict` on a folder a person filled, as they type it."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from kedro_cli import kedro, versions
from user_images import ACCEPTED, BAD, GOOD, VANISHING, status_is_right, write_user_images

pytestmark = pytest.mark.slow

FOLDER = Path("data") / "01_raw" / "user_images"

# Removes one picture after the folder was listed, before its turn to be read: a file
# that a person deletes (or a sync tool moves) while the run goes on.
VANISH = textwrap.dedent(
    f"""
    from pathlib import Path
    from kedro_datasets.partitions import partitioned_dataset

    list_folder = partitioned_dataset.PartitionedDataset.load

    def load(self):
        partitions = list_folder(self)
        Path(self._path, "{VANISHING}").unlink(missing_ok=True)
        return partitions

    partitioned_dataset.PartitionedDataset.load = load
    """
)


def _latest(project: Path, layer: str, name: str) -> Path:
    return project / "data" / "test" / layer / name / versions(project, layer, name)[-1] / name


def test_every_bad_kind_of_file_gets_a_row_and_the_rest_are_predicted(
    finished_project: Path, tmp_path: Path
) -> None:
    project = finished_project
    [model_version] = versions(project, "06_models", "alexnet.keras")
    write_user_images(project / FOLDER, {**BAD, **GOOD})
    (tmp_path / "vanish").mkdir()
    (tmp_path / "vanish" / "sitecustomize.py").write_text(VANISH)
    result = kedro(
        project, "run", "--env", "test", "--pipelines", "predict",
        env={"PYTHONPATH": str(tmp_path / "vanish")},
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "Traceback" not in output

    predictions = pd.read_csv(_latest(project, "07_model_output", "user_predictions.csv"))
    assert sorted(predictions["file"]) == sorted({**BAD, **GOOD})
    wrong = {
        row.file: row.status
        for row in predictions.itertuples()
        if not status_is_right(row.file, row.status)
    }
    assert wrong == {}
    assert set(predictions["model_version"]) == {model_version}
    refused = predictions["status"].str.startswith("refused")
    assert predictions.loc[~refused, "top1_class"].notna().all()
    assert predictions.loc[refused, "top1_class"].isna().all()

    statuses = [status for _, status in {**BAD, **GOOD}.values()]
    n_refused = sum(status.startswith("refused") for status in statuses)
    n_converted = sum(status.startswith("converted") for status in statuses)
    summary = (
        f"Predict summary: {len(statuses) - n_refused} predicted ({n_converted} of them "
        f"converted), {n_refused} refused, of {len(statuses)} files; model {model_version}"
    )
    messages = [line.split(" - ", 3)[-1] for line in result.log.splitlines()]
    assert summary in messages
    # The summary is the last thing the project says; only Kedro's closing lines follow.
    after = messages[messages.index(summary) + 1 :]
    assert all(not line.startswith(("Predict", "Running node")) for line in after)
    report = json.loads(_latest(project, "08_reporting", "prediction_summary.json").read_text())
    assert (report["refused"], report["converted"]) == (n_refused, n_converted)
    assert _latest(project, "08_reporting", "contact_sheet.png").stat().st_size > 10_000


def test_an_empty_or_missing_folder_is_one_line_saying_where_pictures_go(
    finished_project: Path,
) -> None:
    project = finished_project
    for state in ("does not exist", "is empty"):
        if state == "is empty":
            (project / FOLDER).mkdir(parents=True)
            (project / FOLDER / ".DS_Store").write_bytes(b"\x00")
        result = kedro(project, "run", "--env", "test", "--pipelines", "predict")
        output = result.stdout + result.stderr
        assert result.returncode == 1
        assert "Traceback" not in output
        stopped = [line for line in result.log.splitlines() if "Run stopped:" in line]
        assert [line.split("Run stopped: ", 1)[1] for line in stopped] == [
            f"user_images: No pictures: the folder '{project / FOLDER}' {state}. "
            f"Put the pictures there ({ACCEPTED}; any size, sub-folders too), or point the "
            "catalog entry's `path` at the folder that holds them."
        ]
    assert versions(project, "07_model_output", "user_predictions.csv") == []


def test_load_versions_picks_the_model_and_its_version_is_in_every_row(
    finished_project: Path,
) -> None:
    project = finished_project
    [older] = versions(project, "06_models", "alexnet.keras")
    result = kedro(project, "run", "--env", "test", "--pipelines", "training")
    assert result.returncode == 0, result.stderr[-4000:]
    newer = versions(project, "06_models", "alexnet.keras")[-1]
    write_user_images(project / FOLDER, {name: GOOD[name] for name in ("photo.jpg", "grey.bmp")})
    for load_versions, expected in (([], newer), (["--load-versions", f"model:{older}"], older)):
        result = kedro(project, "run", "--env", "test", "--pipelines", "predict", *load_versions)
        assert result.returncode == 0, result.stderr[-4000:]
        predictions = pd.read_csv(_latest(project, "07_model_output", "user_predictions.csv"))
        assert set(predictions["model_version"]) == {expected}
        assert f"model {expected}" in result.log


def test_predict_right_after_training_needs_no_temperature(project: Path) -> None:
    """With predict.temperature_scaling off (the default), a model trained by the training
    pipeline alone predicts: no evaluate run has fitted a temperature yet."""
    trained = kedro(project, "run", "--env", "test", "--pipelines", "data_processing,training")
    assert trained.returncode == 0, trained.stderr[-3000:]
    write_user_images(project / FOLDER, {name: GOOD[name] for name in sorted(GOOD)[:2]})
    result = kedro(project, "run", "--env", "test", "--pipelines", "predict")
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    predictions = pd.read_csv(_latest(project, "07_model_output", "user_predictions.csv"))
    assert (predictions["temperature"] == 1.0).all()
    assert not (project / "data/test/07_model_output/temperature.json").exists()
