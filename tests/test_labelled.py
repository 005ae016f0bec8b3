"""A person's labelled folder: its layouts, its class names, its pictures decoded and split."""

from __future__ import annotations

from pathlib import Path

import pytest
from kedro.io import DatasetError
from labelled_folder import add_broken_files, write_folder

from alexnet_cifar10.datasets import ImageFolderDataset
from alexnet_cifar10.labelled import class_names, decode_folder, image_classes
from alexnet_cifar10.pipelines.data_processing.nodes import build_model_inputs
from alexnet_cifar10.validation import ParameterError


@pytest.fixture(scope="module")
def params(base_params: dict) -> dict:
    """data_processing's parameters, with a quarter each for validation and test."""
    return {**base_params["data_processing"], "validation_fraction": 0.25, "test_fraction": 0.25}


def _pictures(folder: Path) -> dict:
    return ImageFolderDataset(path=str(folder)).load()


def test_class_names_are_the_class_folders_sorted(tmp_path: Path) -> None:
    write_folder(tmp_path, ["zèbre", "Ant", "bee"], 1)
    (tmp_path / ".thumbnails").mkdir()
    (tmp_path / "notes.txt").write_text("not a class")
    assert image_classes(str(tmp_path)) == ["Ant", "bee", "zèbre"]


def test_a_split_folder_takes_its_classes_from_train(tmp_path: Path) -> None:
    write_folder(tmp_path, ["cat", "dog"], 1, splits=("train", "test"))
    assert image_classes(str(tmp_path)) == ["cat", "dog"]


@pytest.mark.parametrize("classes", [[], ["only"]])
def test_fewer_than_two_classes_say_what_to_put_where(tmp_path: Path, classes: list) -> None:
    write_folder(tmp_path, classes, 1)
    with pytest.raises(ParameterError) as raised:
        class_names(str(tmp_path))
    assert str(raised.value) == (
        f"No labelled pictures to learn from: {len(classes)} class folder(s). Put each "
        f"class's pictures in a folder of its own under '{tmp_path}' ({tmp_path}/<class "
        f"name>/<pictures>; or split: {tmp_path}/train/<class name>/..., with validation/ "
        "and test/ beside it), 2 to 1000 classes."
    )


def test_a_missing_folder_is_no_classes(tmp_path: Path) -> None:
    assert image_classes(str(tmp_path / "absent")) == []
    with pytest.raises(ParameterError, match="no such folder"):
        class_names(str(tmp_path / "absent"))


def test_a_flat_folder_decodes_every_picture_and_lists_the_broken_ones(
    tmp_path: Path, params: dict
) -> None:
    write_folder(tmp_path, ["blue", "red"], 6)
    broken = add_broken_files(tmp_path / "red")
    (tmp_path / "red" / ".DS_Store").write_bytes(b"\0")
    (tmp_path / "loose.png").write_bytes(b"")
    data, inventory = decode_folder(_pictures(tmp_path), params["resize"], 32, ["blue", "red"])
    assert data["train_images"].shape == (12, 32, 32, 3) and len(data["test_labels"]) == 0
    assert "validation_images" not in data
    assert data["train_labels"].tolist() == [0] * 6 + [1] * 6
    assert data["train_files"][0] == "blue/000.png"
    # The pictures keep their class colour: red in channel 1 for class 1 (``picture``).
    assert data["train_images"][6:, ..., 1].mean() > data["train_images"][6:, ..., 0].mean()
    assert inventory["classes"] == {
        "blue": {"files": 6, "refused": 0},
        "red": {"files": 6 + len(broken), "refused": len(broken)},
    }
    reasons = {item["file"]: item["reason"] for item in inventory["refused"]}
    assert set(reasons) == {f"red/{name}" for name in broken} | {"loose.png"}
    assert reasons["loose.png"] == "not in a class folder"
    assert reasons["red/empty.png"] == "empty file (0 bytes)"
    assert reasons["red/notes.jpg"].endswith("it holds text")
    assert inventory["formats"] == {"PNG": 4, "JPEG": 4, "WEBP": 2, "BMP": 2}  # decoded ones


def test_a_split_folder_keeps_its_splits(tmp_path: Path, params: dict) -> None:
    write_folder(tmp_path, ["a", "b"], 4, splits=("train", "validation", "test"))
    (tmp_path / "train" / "c").mkdir()  # an empty class folder
    data, inventory = decode_folder(_pictures(tmp_path), params["resize"], 16, ["a", "b"])
    assert inventory["layout"] == "split (train/validation/test folders)"
    for split in ("train", "validation", "test"):
        assert data[f"{split}_images"].shape == (8, 16, 16, 3)
        assert data[f"{split}_files"][0] == f"{split}/a/000.png"


def test_the_split_is_stratified_and_carves_a_test_split_where_there_is_none(
    tmp_path: Path, params: dict
) -> None:
    write_folder(tmp_path, ["a", "b", "c"], 8)
    *splits, inventory = build_model_inputs(_pictures(tmp_path), params, 0, ["a", "b", "c"], 32)
    counts = [split["labels"].sum(axis=0).tolist() for split in splits]
    assert counts == [[4.0] * 3, [2.0] * 3, [2.0] * 3]
    files = [name for split in splits for name in split["file_name"]]
    assert len(files) == len(set(files)) == 24
    again = build_model_inputs(_pictures(tmp_path), params, 0, ["a", "b", "c"], 32)
    assert again[2]["file_name"].tolist() == splits[2]["file_name"].tolist()


def test_a_given_test_split_is_kept_as_it_is(tmp_path: Path, params: dict) -> None:
    write_folder(tmp_path, ["a", "b"], 4, splits=("train", "test"))
    train, validation, test, _ = build_model_inputs(_pictures(tmp_path), params, 0, ["a", "b"], 32)
    suffixes = list(enumerate(["png", "jpg", "webp", "bmp"]))
    expected = [f"test/{c}/{i:03d}.{s}" for c in "ab" for i, s in suffixes]
    assert sorted(test["file_name"]) == sorted(expected)
    assert len(train["images"]) == 6 and len(validation["images"]) == 2


def test_a_class_too_small_to_split_is_named(tmp_path: Path, params: dict) -> None:
    write_folder(tmp_path, ["big", "small"], 8)
    for path in sorted((tmp_path / "small").iterdir())[1:]:
        path.write_bytes(b"")  # broken: one usable picture is left
    with pytest.raises(DatasetError) as raised:
        build_model_inputs(_pictures(tmp_path), params, 0, ["big", "small"], 32)
    assert str(raised.value).startswith("Too few usable pictures to split: 'small' (none in ")


def test_an_empty_folder_says_where_to_put_the_pictures(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=f"the folder '{tmp_path}' is empty"):
        _pictures(tmp_path)


def test_an_empty_class_folder_is_a_class_too_small_to_split(tmp_path: Path, params: dict) -> None:
    write_folder(tmp_path, ["a", "b"], 8)
    (tmp_path / "c").mkdir()
    classes = image_classes(str(tmp_path))
    assert classes == ["a", "b", "c"]
    with pytest.raises(DatasetError, match=r"^Too few usable pictures to split: 'c' \(none in "):
        build_model_inputs(_pictures(tmp_path), params, 0, classes, 32)
