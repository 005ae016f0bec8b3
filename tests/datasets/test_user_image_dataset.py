"""UserImageDataset and ImageFolderDataset: untrusted files decoded safely, or refused."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from kedro.io import DatasetError
from PIL import Image, ImageFile
from user_images import ACCEPTED, BAD, GOOD, bomb_png, write_user_images

from alexnet_cifar10.datasets import ImageFolderDataset, ImageRefusedError, UserImageDataset


def _dataset(path: Path, content: bytes, **load_args: object) -> UserImageDataset:
    path.write_bytes(content)
    return UserImageDataset(filepath=str(path), load_args=load_args)


def _png(size: tuple[int, int], mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_good_file_is_decoded_with_what_it_held(tmp_path: Path) -> None:
    write_user_images(tmp_path, GOOD)
    photo = UserImageDataset(filepath=str(tmp_path / "rotated.jpg")).load()
    assert (photo.format, photo.mode, photo.size, photo.frames) == ("JPEG", "RGB", (60, 40), 1)
    assert photo.rotated
    assert photo.image.size == (40, 60), "turned upright, as the EXIF orientation says"
    assert photo.image.getbbox() is not None


def test_draft_size_decodes_a_large_jpeg_at_a_fraction_of_its_size(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (1024, 800), (10, 200, 30)).save(buffer, format="JPEG")
    photo = _dataset(tmp_path / "big.jpg", buffer.getvalue(), draft_size=100).load()
    assert photo.size == (1024, 800), "the size the file holds"
    assert photo.image.size == (128, 100), "decoded at 1/8 scale, both sides still >= 100"
    assert _dataset(tmp_path / "big.jpg", buffer.getvalue()).load().image.size == (1024, 800)


def test_a_header_over_max_pixels_is_refused_before_any_decoding(tmp_path: Path) -> None:
    dataset = _dataset(tmp_path / "bomb.png", bomb_png())  # 10^10 pixels claimed
    with pytest.raises(ImageRefusedError, match=r"^10,000,000,000 pixels is over the limit"):
        dataset.load()


def test_the_pixel_limit_is_hard_where_pillow_only_warns(tmp_path: Path) -> None:
    """Pillow warns between its limit and twice it; here one pixel over is refused."""
    dataset = _dataset(tmp_path / "a.png", _png((40, 30)), max_pixels=40 * 30 - 1)
    with pytest.raises(ImageRefusedError, match="1,200 pixels is over the limit of 1,199"):
        dataset.load()
    assert _dataset(tmp_path / "b.png", _png((40, 30)), max_pixels=1200).load().size == (40, 30)


def test_pillow_settings_are_restored_after_each_file(tmp_path: Path) -> None:
    before = Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES
    with pytest.raises(ImageRefusedError):
        _dataset(tmp_path / "bomb.png", bomb_png()).load()
    assert (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES) == before


def test_only_the_listed_decoders_run(tmp_path: Path) -> None:
    dataset = _dataset(tmp_path / "a.png", _png((8, 8)), formats=["JPEG"])
    with pytest.raises(ImageRefusedError, match=r"^not an image in an accepted format \(JPEG\)$"):
        dataset.load()


def test_a_file_over_max_file_bytes_is_refused_unread(tmp_path: Path) -> None:
    dataset = _dataset(tmp_path / "a.png", _png((8, 8)), max_file_bytes=10)
    with pytest.raises(ImageRefusedError, match=r"^file of \d+ bytes is over the limit of 10"):
        dataset.load()


def test_it_is_read_only(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="read-only"):
        UserImageDataset(filepath=str(tmp_path / "a.png")).save(Image.new("RGB", (2, 2)))


def test_the_folder_lists_visible_files_and_reads_none_of_them(tmp_path: Path) -> None:
    write_user_images(tmp_path, {**BAD, **GOOD})
    (tmp_path / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (tmp_path / ".ipynb_checkpoints").mkdir()
    (tmp_path / ".ipynb_checkpoints" / "x.png").write_bytes(b"")
    partitions = ImageFolderDataset(path=str(tmp_path)).load()
    assert sorted(partitions) == sorted({**BAD, **GOOD})
    assert all(callable(load) for load in partitions.values())


@pytest.mark.parametrize("state", ["does not exist", "is empty"])
def test_an_empty_or_missing_folder_says_where_to_put_pictures(tmp_path: Path, state: str) -> None:
    folder = tmp_path / "user_images"
    if state == "is empty":
        folder.mkdir()
        (folder / ".gitkeep").write_bytes(b"")
    dataset = ImageFolderDataset(path=str(folder))
    assert not dataset.exists()
    with pytest.raises(DatasetError) as raised:
        dataset.load()
    assert str(raised.value) == (
        f"No images to classify: the folder '{folder}' {state}. Put the pictures there "
        f"({ACCEPTED}; any size, sub-folders too), or point the catalog entry's `path` at "
        "the folder that holds them."
    )
