"""UserImageDataset and ImageFolderDataset: untrusted files decoded safely, or refused."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from kedro.io import DatasetError
from local_http import folder_handler, serving
from PIL import ExifTags, Image, ImageFile
from user_images import ACCEPTED, BAD, GOOD, bomb_png, write_user_images

from alexnet_cifar10.datasets import (
    ImageFolderDataset,
    ImageRefusedError,
    UserImage,
    UserImageDataset,
)


def _dataset(path: Path, content: bytes, **load_args: object) -> UserImageDataset:
    path.write_bytes(content)
    return UserImageDataset(filepath=str(path), load_args=load_args)


def _png(size: tuple[int, int], mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size).save(buffer, format="PNG")
    return buffer.getvalue()


def _refusal(dataset: UserImageDataset) -> str:
    """Why loading ``dataset`` refuses its file: the message of the ``ImageRefusedError``
    that causes Kedro's ``DatasetError``."""
    with pytest.raises(DatasetError) as refused:
        dataset.load()
    assert isinstance(refused.value.__cause__, ImageRefusedError)
    return str(refused.value.__cause__)


def test_a_good_file_is_decoded_with_what_it_held(tmp_path: Path) -> None:
    write_user_images(tmp_path, GOOD)
    photo = UserImageDataset(filepath=str(tmp_path / "rotated.jpg")).load()
    assert (photo.format, photo.mode, photo.size, photo.frames) == ("JPEG", "RGB", (60, 40), 1)
    assert photo.rotated
    assert photo.image.size == (40, 60), "turned upright, as the EXIF orientation says"
    assert photo.image.getbbox() is not None


@pytest.mark.parametrize(
    ("name", "facts"),
    [
        ("photo.jpg", ("JPEG", "RGB", (640, 480), 1)),
        ("grey.bmp", ("BMP", "L", (50, 70), 1)),
        ("sub/wide.webp", ("WEBP", "RGB", (300, 100), 1)),
        ("animated.gif", ("GIF", "P", (40, 30), 3)),
    ],
)
def test_what_each_file_held_is_reported(
    tmp_path: Path, name: str, facts: tuple[str, str, tuple[int, int], int]
) -> None:
    """Format, mode, size and frame count as in the file; no EXIF turn, so no rotation."""
    write_user_images(tmp_path, {**BAD, **GOOD})
    image = UserImageDataset(filepath=str(tmp_path / name)).load()
    assert (image.format, image.mode, image.size, image.frames) == facts
    assert not image.rotated
    assert (image.image.format, image.image.size) == (facts[0], facts[2]), "as decoded"


def test_a_mirrored_photo_is_turned_back(tmp_path: Path) -> None:
    """EXIF orientation 2 (mirrored): red on the left in the file, blue once turned."""
    image = Image.new("RGB", (4, 2), (255, 0, 0))
    image.paste((0, 0, 255), (2, 0, 4, 2))
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 2
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", exif=exif)
    photo = _dataset(tmp_path / "mirrored.png", buffer.getvalue()).load()
    assert photo.rotated
    assert photo.image.getpixel((0, 0)) == (0, 0, 255)


def test_reads_a_picture_over_http(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(_png((8, 6)))

    with serving(folder_handler(tmp_path)) as base:
        picture = UserImageDataset(filepath=f"{base}/a.png").load()
    assert (picture.format, picture.size) == ("PNG", (8, 6))


def test_draft_size_decodes_a_large_jpeg_at_a_fraction_of_its_size(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (1024, 800), (10, 200, 30)).save(buffer, format="JPEG")
    photo = _dataset(tmp_path / "big.jpg", buffer.getvalue(), draft_size=100).load()
    assert photo.size == (1024, 800), "the size the file holds"
    assert photo.image.size == (128, 100), "decoded at 1/8 scale, both sides still >= 100"
    assert _dataset(tmp_path / "big.jpg", buffer.getvalue()).load().image.size == (1024, 800)


def test_a_header_over_max_pixels_is_refused_before_any_decoding(tmp_path: Path) -> None:
    dataset = _dataset(tmp_path / "bomb.png", bomb_png())  # 10^10 pixels claimed
    assert _refusal(dataset) == (
        "10,000,000,000 pixels is over the limit of 67,108,864 (max_pixels): not decoded "
        "(a decompression bomb?)"
    )


def test_a_bomb_refusal_without_a_pixel_count_still_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Should Pillow word its refusal without the pixel count, the size goes unnamed."""

    def refuse(*args: object, **kwargs: object) -> Image.Image:
        raise Image.DecompressionBombError("image too large")

    dataset = _dataset(tmp_path / "a.png", _png((8, 8)), max_pixels=10)
    monkeypatch.setattr(Image, "open", refuse)
    assert _refusal(dataset) == (
        "its size is over the limit of 10 (max_pixels): not decoded (a decompression bomb?)"
    )


def test_the_pixel_limit_is_hard_where_pillow_only_warns(tmp_path: Path) -> None:
    """Pillow warns between its limit and twice it; here one pixel over is refused."""
    dataset = _dataset(tmp_path / "a.png", _png((40, 30)), max_pixels=40 * 30 - 1)
    assert _refusal(dataset) == (
        "1,200 pixels is over the limit of 1,199 (max_pixels): not decoded (a decompression bomb?)"
    )
    assert _dataset(tmp_path / "b.png", _png((40, 30)), max_pixels=1200).load().size == (40, 30)


def test_pillow_settings_are_restored_after_each_file(tmp_path: Path) -> None:
    before = Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES
    with pytest.raises(DatasetError):
        _dataset(tmp_path / "bomb.png", bomb_png()).load()
    assert (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES) == before


def test_only_the_listed_decoders_run(tmp_path: Path) -> None:
    dataset = _dataset(tmp_path / "a.png", _png((8, 8)), formats=["JPEG", "GIF"])
    assert _refusal(dataset) == "not an image in an accepted format (JPEG, GIF)"


@pytest.mark.parametrize(
    ("content", "holds_text"),
    [
        (b"Remember to buy milk.\n", True),
        (b"name\tsize\r\ncat.jpg\t1024\r\n", True),
        (b"x" * 64 + b"\x00\x01 binary after the first 64 bytes", True),
        (b"\x00\x01\x02\x03 binary", False),
        (b"ring the bell\x07", False),
        ("café au lait".encode(), False),
    ],
    ids=["line", "tabs-and-crlf", "text-prefix", "binary", "control-char", "not-ascii"],
)
def test_a_file_that_holds_text_is_named_so(
    tmp_path: Path, content: bytes, holds_text: bool
) -> None:
    """Only printable ASCII, tabs and line breaks in the first 64 bytes count as text."""
    hint = ": it holds text" if holds_text else ""
    assert _refusal(_dataset(tmp_path / "a.png", content)) == (
        f"not an image in an accepted format ({ACCEPTED}){hint}"
    )


def test_a_file_over_max_file_bytes_is_refused_unread(tmp_path: Path) -> None:
    content = _png((8, 8))
    dataset = _dataset(tmp_path / "a.png", content, max_file_bytes=10)
    assert _refusal(dataset) == (
        f"file of {len(content):,} bytes is over the limit of 10 (max_file_bytes)"
    )
    limit = _dataset(tmp_path / "b.png", content, max_file_bytes=len(content))
    assert limit.load().size == (8, 8), "a file of exactly max_file_bytes is read"


@pytest.mark.parametrize("spare", [-1, 0])
def test_a_file_of_unknown_size_is_read_up_to_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spare: int
) -> None:
    """Where the filesystem cannot tell a file's size (or it grows after it was told), the
    read stops one byte past the limit, and a file over it is refused."""
    content = _png((8, 8))
    dataset = _dataset(tmp_path / "a.png", content, max_file_bytes=len(content) + spare)
    monkeypatch.setattr(dataset._fs, "size", lambda path: None)
    if spare < 0:
        assert _refusal(dataset) == (
            f"file grew over the limit of {len(content) - 1:,} bytes while read"
        )
    else:
        assert dataset.load().size == (8, 8)


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    assert _refusal(_dataset(tmp_path / "a.png", b"")) == "empty file (0 bytes)"


def test_a_file_gone_before_its_turn_is_refused(tmp_path: Path) -> None:
    dataset = _dataset(tmp_path / "a.png", _png((8, 8)))
    (tmp_path / "a.png").unlink()
    assert _refusal(dataset) == (
        "the file disappeared before it could be read (moved or deleted during the run, or a "
        "broken link)"
    )


def test_an_unreadable_file_is_refused_with_the_system_reason(tmp_path: Path) -> None:
    (tmp_path / "folder.png").mkdir()
    dataset = UserImageDataset(filepath=str(tmp_path / "folder.png"))
    assert _refusal(dataset) == "the file could not be read: Is a directory"


def test_truncated_data_is_refused_even_where_pillow_is_told_to_pad_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another library in the process may have set Pillow to pad truncated images."""
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    write_user_images(tmp_path, BAD)
    message = _refusal(UserImageDataset(filepath=str(tmp_path / "truncated.jpg")))
    # Pillow's message, whitespace made single spaces, ends with a count of its own.
    assert re.fullmatch(
        r"damaged JPEG data: image file is truncated \(\d+ bytes not processed\)", message
    ), message
    assert ImageFile.LOAD_TRUNCATED_IMAGES, "the other library's setting is given back"


def test_a_decoder_error_without_words_is_named_by_its_type(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Some of Pillow's decoder errors carry no message: the refusal names the type."""

    def fail(self: ImageFile.ImageFile) -> None:
        raise EOFError

    dataset = _dataset(tmp_path / "a.png", _png((8, 8)))
    monkeypatch.setattr(ImageFile.ImageFile, "load", fail)
    assert _refusal(dataset) == "damaged PNG data: EOFError"


def test_it_is_read_only(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as error:
        UserImageDataset(filepath=str(tmp_path / "a.png")).save(Image.new("RGB", (2, 2)))
    assert str(error.value) == "UserImageDataset is read-only: it never writes images."


def test_the_folder_lists_visible_files_and_reads_none_of_them(tmp_path: Path) -> None:
    write_user_images(tmp_path, {**BAD, **GOOD})
    (tmp_path / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (tmp_path / ".ipynb_checkpoints").mkdir()
    (tmp_path / ".ipynb_checkpoints" / "x.png").write_bytes(b"")
    dataset = ImageFolderDataset(path=str(tmp_path))
    assert dataset.exists()
    partitions = dataset.load()
    assert sorted(partitions) == sorted({**BAD, **GOOD})
    assert all(callable(load) for load in partitions.values())


def test_each_file_loads_as_a_user_image(tmp_path: Path) -> None:
    write_user_images(tmp_path, GOOD)
    image = ImageFolderDataset(path=str(tmp_path)).load()["sub/wide.webp"]()
    assert isinstance(image, UserImage)
    assert (image.format, image.size) == ("WEBP", (300, 100))


def test_partitioned_dataset_arguments_apply(tmp_path: Path) -> None:
    write_user_images(tmp_path, GOOD)
    dataset = ImageFolderDataset(
        path=str(tmp_path), filename_suffix=".jpg", dataset={"type": UserImageDataset}
    )
    assert sorted(dataset.load()) == ["photo", "rotated"]


def test_pictures_put_in_after_a_first_look_are_found(tmp_path: Path) -> None:
    """The folder is listed afresh on each load, as a person may fill it in between."""
    dataset = ImageFolderDataset(path=str(tmp_path))
    assert not dataset.exists()
    write_user_images(tmp_path, GOOD)
    assert sorted(dataset.load()) == sorted(GOOD)


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
        f"No pictures: the folder '{folder}' {state}. Put the pictures there "
        f"({ACCEPTED}; any size, sub-folders too), or point the catalog entry's `path` at "
        "the folder that holds them."
    )
