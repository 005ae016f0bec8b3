"""Unit tests of the predict nodes: every bad kind of file, the resize policy, the outputs."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgba
from PIL import Image
from user_images import (
    BAD,
    GOOD,
    VANISHING,
    animated_gif,
    status_is_right,
    write_user_images,
)

from alexnet_cifar10.datasets import (
    ImageFolderDataset,
    ImageRefusedError,
    NpzDataset,
    UserImageDataset,
)
from alexnet_cifar10.pipelines.predict.nodes import (
    plot_contact_sheet,
    predict_images,
    prepare_images,
    summarise_predictions,
)
from alexnet_cifar10.provenance import MixedModelsError, TrainedModel, labelled
from alexnet_cifar10.validation import ParameterError

NO_TTA = {"horizontal_flip": False, "shift": 0}
RESIZE = {"fit": "crop", "resample": "lanczos", "background": [255, 255, 255]}
CLASSES = ["a", "b", "c", "d"]
LABELS = {
    "model_version": "2026-01-02T03.04.05.678Z",
    "run_label": "unit",
    "kedro_env": "test",
}


# No temperature scaling: the temperature's content is then never read.
UNSCALED = ({}, False)


def _trained(network: Any) -> TrainedModel:
    return TrainedModel(network, {**LABELS, "class_names": CLASSES}, pd.DataFrame())


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    """The folder of every kind of file through prepare_images; one file vanishes after
    the folder was listed, before its turn."""
    folder = tmp_path_factory.mktemp("user_images")
    write_user_images(folder, {**BAD, **GOOD})
    partitions = ImageFolderDataset(path=str(folder)).load()
    (folder / VANISHING).unlink()
    return prepare_images(partitions, RESIZE)


@pytest.mark.parametrize("name", sorted({**BAD, **GOOD}))
def test_each_kind_of_file_gets_its_status(prepared: dict, name: str) -> None:
    [row] = np.flatnonzero(prepared["file_name"] == name)
    assert status_is_right(name, str(prepared["status"][row])), prepared["status"][row]
    assert prepared["accepted"][row] == (not prepared["status"][row].startswith("refused"))


def test_accepted_files_become_32x32_rgb_in_file_order(prepared: dict) -> None:
    assert list(prepared["file_name"]) == sorted(prepared["file_name"])
    assert prepared["images"].shape == (prepared["accepted"].sum(), 32, 32, 3)
    assert prepared["images"].dtype == np.uint8
    pixels = dict(zip(prepared["file_name"][prepared["accepted"]], prepared["images"], strict=True))
    assert (pixels["cmyk.jpg"][..., 0] > 200).all() and (pixels["cmyk.jpg"][..., 1:] < 60).all()
    # Index 0 was transparent: flattened onto white around the red square.
    assert pixels["palette_transparent.png"][0, 0].tolist() == [255, 255, 255]
    assert pixels["palette_transparent.png"][16, 16].tolist() == [255, 0, 0]
    assert pixels["animated.gif"][5, 5].tolist() == [255, 0, 0], "the first frame"
    row = np.flatnonzero(prepared["file_name"] == "rotated.jpg")[0]
    assert (prepared["format"][row], prepared["original_size"][row]) == ("JPEG", "60x40")


def test_the_prepared_pictures_round_trip_through_their_catalog_dataset(
    prepared: dict, tmp_path: Path
) -> None:
    dataset = NpzDataset(filepath=str(tmp_path / "user_model_input.npz"))
    dataset.save(prepared)
    loaded = dataset.load()
    assert loaded.keys() == prepared.keys()
    for key, value in prepared.items():
        np.testing.assert_array_equal(loaded[key], value)


def test_a_picture_of_two_frames_is_read_at_its_first(tmp_path: Path) -> None:
    (tmp_path / "two.gif").write_bytes(animated_gif(frames=2))
    load = UserImageDataset(filepath=str(tmp_path / "two.gif")).load
    prepared = prepare_images({"two.gif": load}, RESIZE)
    assert prepared["status"].tolist() == ["converted: first of 2 frames; palette (P) to RGB"]


class _FixedModel:
    input_shape = (None, 32, 32, 3)

    def __init__(self, answer: tuple[float, ...] = (0.1, 0.2, 0.4, 0.3)) -> None:
        self.seen, self.asked, self.answer = 0, [], np.array(answer, np.float32)

    def predict(self, images: np.ndarray, batch_size: int, verbose: int) -> np.ndarray:
        self.seen += len(images)
        # Keras draws a progress bar unless verbose is 0 or None.
        self.asked.append((batch_size, verbose not in (0, None)))
        return np.tile(self.answer, (len(images), 1))


def _prepared_table() -> dict[str, np.ndarray]:
    return {
        "file_name": np.array(["a.png", "b.txt", "c.jpg"]),
        "status": np.array(["ok", "refused: empty file (0 bytes)", "converted: CMYK to RGB"]),
        "format": np.array(["PNG", "", "JPEG"]),
        "original_size": np.array(["32x32", "", "64x48"]),
        "original_mode": np.array(["RGB", "", "CMYK"]),
        "accepted": np.array([True, False, True]),
        "images": np.zeros((2, 32, 32, 3), np.uint8),
    }


def test_predictions_have_top_3_every_probability_and_the_model_version() -> None:
    model = _FixedModel()
    frame = predict_images(_trained(model), _prepared_table(), 8, NO_TTA, *UNSCALED)
    assert model.seen == 2, "refused files never reach the model"
    assert model.asked == [(8, False)], "in the configured batches, without a progress bar"
    assert list(frame.columns) == [
        "file", "status",
        "top1_class", "top1_probability", "top2_class", "top2_probability",
        "top3_class", "top3_probability",
        "model_version", "run_label", "kedro_env", "temperature",
        "format", "original_size", "original_mode",
        "p_a", "p_b", "p_c", "p_d",
    ]  # fmt: skip
    assert (frame[["p_a", "p_b", "p_c", "p_d"]].dtypes == np.float32).all(), "as the model gave"
    assert frame["file"].tolist() == ["a.png", "b.txt", "c.jpg"]
    assert frame.loc[0, ["top1_class", "top2_class", "top3_class"]].tolist() == ["c", "d", "b"]
    assert frame.loc[0, "top1_probability"] == pytest.approx(0.4)
    assert frame.loc[1, ["top1_class", "top1_probability"]].isna().all()
    assert frame.loc[1, "status"] == "refused: empty file (0 bytes)"
    assert frame[list(LABELS)].drop_duplicates().to_dict("records") == [LABELS]
    assert list(frame.columns[-4:]) == ["p_a", "p_b", "p_c", "p_d"]
    assert frame.loc[2, "original_mode"] == "CMYK"


def test_temperature_scaling_softens_the_probabilities_of_the_model_it_was_fitted_for() -> None:
    fitted = {**LABELS, "temperature": 2.0}
    frame = predict_images(_trained(_FixedModel()), _prepared_table(), 8, NO_TTA, fitted, True)
    logits = np.log([0.1, 0.2, 0.4, 0.3]) / 2
    expected = np.exp(logits) / np.exp(logits).sum()
    np.testing.assert_allclose(frame.loc[0, ["p_a", "p_b", "p_c", "p_d"]], expected, rtol=1e-6)
    assert frame.loc[0, "top1_class"] == "c" and frame["temperature"].eq(2.0).all()
    other = {**fitted, "model_version": "2020-01-01T00.00.00.000Z"}
    with pytest.raises(MixedModelsError, match="fitted for model 2020-01-01T00.00.00.000Z"):
        predict_images(_trained(_FixedModel()), _prepared_table(), 8, NO_TTA, other, True)
    off = predict_images(_trained(_FixedModel()), _prepared_table(), 8, NO_TTA, other, False)
    assert off.loc[0, "p_c"] == np.float32(0.4) and off["temperature"].eq(1.0).all()


def test_equal_probabilities_rank_in_the_order_of_the_classes() -> None:
    model = _FixedModel((0.2, 0.2, 0.3, 0.3))
    frame = predict_images(_trained(model), _prepared_table(), 8, NO_TTA, *UNSCALED)
    assert frame.loc[0, ["top1_class", "top2_class", "top3_class"]].tolist() == ["c", "d", "a"]


def test_a_folder_of_refused_files_still_gets_its_table() -> None:
    table = {key: value[1:2] for key, value in _prepared_table().items() if key != "images"}
    table["images"] = np.zeros((0, 32, 32, 3), np.uint8)
    model = _FixedModel()
    frame = predict_images(_trained(model), table, 8, NO_TTA, *UNSCALED)
    assert model.seen == 0 and frame["top1_class"].isna().all()


def test_contact_sheet_has_a_tile_per_file_saying_what_was_seen() -> None:
    prepared = _prepared_table()
    frame = predict_images(_trained(_FixedModel()), prepared, 8, NO_TTA, *UNSCALED)
    figure = plot_contact_sheet(prepared, frame, {"columns": 2, "max_images": 3})
    axes = figure.get_axes()
    assert len(axes) == 4 and not axes[3].axison
    assert axes[0].get_title() == "a.png\nc 0.40" and len(axes[0].images) == 1
    assert axes[1].get_title() == "b.txt\nrefused" and len(axes[1].images) == 1
    assert "empty file" in axes[1].texts[0].get_text()
    assert LABELS["model_version"] in figure.get_suptitle()


def test_contact_sheet_tiles_show_their_own_pixels_and_a_refusal_in_full() -> None:
    reason = "not an image in an accepted format (BMP, GIF, JPEG, PNG, TIFF, WEBP): it holds text"
    prepared = {
        **_prepared_table(),
        "file_name": np.array(["a_long_holiday_picture_name.png", "b.txt", "c.jpg"]),
        "status": np.array(["ok", f"refused: {reason}", "converted: CMYK to RGB"]),
        "images": np.stack(
            [np.full((32, 32, 3), 10, np.uint8), np.full((32, 32, 3), 20, np.uint8)]
        ),
    }
    frame = predict_images(_trained(_FixedModel()), prepared, 8, NO_TTA, *UNSCALED)
    figure = plot_contact_sheet(prepared, frame, {"columns": 3, "max_images": 2})
    accepted, refused = figure.get_axes()
    # A name over 22 characters keeps its last 19, after an ellipsis.
    assert accepted.get_title() == "...ay_picture_name.png\nc 0.40"
    [image] = accepted.get_images()
    assert image.get_interpolation() == "nearest"
    np.testing.assert_array_equal(image.get_array(), prepared["images"][0])
    [text] = refused.texts
    assert text.get_text().split("\n") == [
        "not an image in an",
        "accepted format (BMP,",
        "GIF, JPEG, PNG, TIFF,",
        "WEBP): it holds text",
    ]
    assert text.get_position() == (0.5, 0.5) and text.get_transform() == refused.transAxes
    assert (text.get_ha(), text.get_va()) == ("center", "center")
    assert to_rgba(refused.title.get_color()) == to_rgba("firebrick")
    # The refused tile is a grey 32x32 picture: as large as the others, its text legible.
    [grey] = refused.get_images()
    np.testing.assert_array_equal(grey.get_array(), np.full((32, 32, 3), 224, np.uint8))
    assert text.get_fontsize() >= 6
    # Two tiles make a narrow sheet: the title wraps to stay inside it.
    assert " ".join(figure.get_suptitle().split("\n")) == (
        "What the network saw: 2 of 3 pictures at 32x32, top class and confidence "
        "unit · model 2026-01-02T03.04.05.678Z (env test)"
    )
    figure.canvas.draw()
    box = figure.texts[0].get_window_extent()
    assert figure.texts[0].get_text() == figure.get_suptitle()
    assert 0 <= box.x0 and box.x1 <= figure.bbox.width, "the title fits the figure"
    sizes = {tuple(axis.get_window_extent().size.round(1)) for axis in (accepted, refused)}
    assert len(sizes) == 1, sizes


def test_a_long_refusal_is_cut_to_five_lines_of_24_and_a_short_name_kept_whole() -> None:
    prepared = {
        **{key: value[1:2] for key, value in _prepared_table().items()},
        "file_name": np.array(["exactly_22_chars_n.png"]),
        "status": np.array(["refused: " + " ".join(["twelvelength"] * 7)]),
        "images": np.zeros((0, 32, 32, 3), np.uint8),
    }
    frame = predict_images(_trained(_FixedModel()), prepared, 8, NO_TTA, *UNSCALED)
    [tile] = plot_contact_sheet(prepared, frame, {"columns": 4, "max_images": 9}).get_axes()
    # Two of these words with their space are 25 characters: one word a line.
    assert tile.texts[0].get_text().split("\n") == ["twelvelength"] * 5
    assert tile.get_title() == "exactly_22_chars_n.png\nrefused"


def test_summary_counts_and_logs_one_line(caplog: pytest.LogCaptureFixture) -> None:
    frame = pd.DataFrame(
        {"file": ["a", "b", "c"], "status": ["ok", "refused: x", "converted: CMYK to RGB"]}
    )
    with caplog.at_level(logging.INFO):
        summary = summarise_predictions(labelled(frame, LABELS))
    assert summary == {
        "run_label": "unit",
        "kedro_env": "test",
        "model_version": "2026-01-02T03.04.05.678Z",
        "files": 3,
        "predicted": 2,
        "converted": 1,
        "refused": 1,
        "refused_files": {"b": "refused: x"},
    }
    assert [r.getMessage() for r in caplog.records] == [
        "Predict summary: 2 predicted (1 of them converted), 1 refused, of 3 files; "
        "model 2026-01-02T03.04.05.678Z"
    ]


def _unreadable() -> None:
    raise ImageRefusedError("unreadable")


def test_progress_is_logged_for_a_large_folder(caplog: pytest.LogCaptureFixture) -> None:
    partitions = {f"{i:03d}.png": _unreadable for i in range(100)}
    with caplog.at_level(logging.INFO):
        prepare_images(partitions, RESIZE)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "Prepared 10 of 100 pictures (10 refused so far)"
    assert lines[-1] == "Prepared 100 of 100 pictures (100 refused so far)"


def test_progress_is_logged_every_tenth_of_the_folder_and_at_its_end(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    """105 files, every other one a picture: the refused count is the others'."""
    Image.new("RGB", (32, 32)).save(tmp_path / "black.png")
    picture = UserImageDataset(filepath=str(tmp_path / "black.png")).load
    partitions = {f"{i:03d}.png": picture if i % 2 else _unreadable for i in range(105)}
    with caplog.at_level(logging.INFO):
        prepare_images(partitions, RESIZE)
    assert [r.getMessage() for r in caplog.records] == [
        f"Prepared {done} of 105 pictures ({(done + 1) // 2} refused so far)"
        for done in (10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 105)
    ]


def test_a_folder_of_refused_files_gives_an_empty_batch_of_pictures() -> None:
    prepared = prepare_images({"a.png": _unreadable}, RESIZE)
    assert prepared["images"].shape == (0, 32, 32, 3) and prepared["images"].dtype == np.uint8
    # A refused file has no format, size or mode to tell.
    assert [prepared[key].tolist() for key in ("format", "original_size", "original_mode")] == [
        [""],
        [""],
        [""],
    ]


def test_a_model_of_another_input_size_is_refused_in_one_line() -> None:
    model = _FixedModel()
    model.input_shape = (None, 64, 64, 3)
    trained = _trained(model)
    with pytest.raises(ParameterError) as raised:
        predict_images(trained, _prepared_table(), 8, NO_TTA, *UNSCALED)
    assert str(raised.value) == (
        f"Model {trained.card['model_version']} takes 64x64 pictures; predict brings pictures "
        "to 32x32 (train at training.model.input_size 32 to predict, serve and export)."
    )
