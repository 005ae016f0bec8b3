"""Kedro dataset that decodes one image file from a person, who may have put anything there.

kedro-datasets' ``pillow.ImageDataset`` hands the file to every decoder Pillow has (EPS
among them, which runs the external Ghostscript program), decodes it whole under
Pillow's default guard (images up to ~179 megapixels only raise a warning), and returns
the first frame of an animation without saying so. This dataset, read-only:

- refuses empty files and files over ``max_file_bytes`` before reading them;
- tries only the decoders of the ``formats`` listed (``SAFE_FORMATS`` by default);
- refuses images over ``max_pixels`` when their header is read, before decoding a pixel;
- treats truncated data as an error (never padded with grey);
- decodes the first frame only, and turns photos upright as their EXIF orientation says;
- with ``draft_size``, lets the JPEG decoder scale a large photo down by 2, 4 or 8 while
  both sides keep at least that many pixels (libjpeg's DCT scaling: a fraction of the
  work and memory of decoding every pixel).

Whatever goes wrong with a file becomes an ``ImageRefusedError`` whose message says why
in a few words, so that a caller can record it and carry on with the next file.
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

from kedro.io.core import DatasetError, get_filepath_str
from PIL import ExifTags, Image, ImageFile, ImageOps

from alexnet_cifar10.datasets.atomic import FileVersionedDataset

SAFE_FORMATS = ("BMP", "GIF", "JPEG", "PNG", "TIFF", "WEBP")
# 64 megapixels: a 61-megapixel camera's photos pass; as RGBA, at most 256 MiB decoded.
MAX_PIXELS = 64 * 2**20
MAX_FILE_BYTES = 256 * 2**20
_TEXT_PREFIX = 64


class UserImage(NamedTuple):
    """A decoded picture (first frame, upright) and what its file held."""

    image: Image.Image
    format: str
    mode: str
    size: tuple[int, int]
    frames: int
    rotated: bool


class ImageRefusedError(DatasetError):
    """A file that is not an image this project decodes; the message says why."""


@contextmanager
def _pillow_limits(max_pixels: int) -> Iterator[None]:
    """Pillow's own guards, set explicitly while a file is decoded: an image over
    ``max_pixels`` is an error as soon as its header is read, and so is truncated data.

    Both are process-wide settings of Pillow, restored afterwards.
    """
    previous = Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES
    Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES = max_pixels, False
    try:
        with warnings.catch_warnings():
            # Pillow only warns between its limit and twice it; here the limit is hard.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES = previous


def _too_many_pixels(error: Exception, max_pixels: int) -> ImageRefusedError:
    found = re.search(r"\((\d+) pixels\)", str(error))
    size = f"{int(found.group(1)):,} pixels" if found else "its size"
    return ImageRefusedError(
        f"{size} is over the limit of {max_pixels:,} (max_pixels): not decoded "
        "(a decompression bomb?)"
    )


def _looks_like_text(content: bytes) -> bool:
    prefix = content[:_TEXT_PREFIX]
    return prefix.isascii() and all(c.isprintable() or c in "\t\n\r" for c in prefix.decode())


class UserImageDataset(FileVersionedDataset):
    """Loads one image file as a ``UserImage``, or raises ``ImageRefusedError``.

    Example catalog entry (usually the ``dataset`` of an ``ImageFolderDataset``)::

        photo:
          type: alexnet_cifar10.datasets.UserImageDataset
          filepath: data/01_raw/user_images/cat.jpg
          load_args:
            formats: [JPEG, PNG]
            max_pixels: 67108864
            max_file_bytes: 268435456
            draft_size: 128

    ``load_args``: ``formats`` (Pillow format names whose decoders may run; default
    ``SAFE_FORMATS``), ``max_pixels`` (default 64 Mi), ``max_file_bytes`` (256 MiB) and
    ``draft_size`` (default None: every pixel decoded).
    """

    DEFAULT_LOAD_ARGS: dict[str, Any] = {
        "formats": list(SAFE_FORMATS),
        "max_pixels": MAX_PIXELS,
        "max_file_bytes": MAX_FILE_BYTES,
        "draft_size": None,
    }

    def save(self, data: Any) -> None:
        raise DatasetError(f"{type(self).__name__} is read-only: it never writes images.")

    def load(self) -> UserImage:
        path = get_filepath_str(self._get_load_path(), self._protocol)
        return decode_image(self._read(path), self._load_args)

    def _read(self, path: str) -> bytes:
        limit = self._load_args["max_file_bytes"]
        try:
            size = self._fs.size(path)
            if size is not None and size > limit:
                raise ImageRefusedError(
                    f"file of {size:,} bytes is over the limit of {limit:,} (max_file_bytes)"
                )
            with self._fs.open(path, mode="rb") as handle:
                content = handle.read(limit + 1)
        except FileNotFoundError as error:
            raise ImageRefusedError(
                "the file disappeared before it could be read (moved or deleted during the "
                "run, or a broken link)"
            ) from error
        except OSError as error:
            raise ImageRefusedError(
                f"the file could not be read: {error.strerror or error}"
            ) from error
        if len(content) > limit:
            raise ImageRefusedError(f"file grew over the limit of {limit:,} bytes while read")
        return content


def decode_image(content: bytes, load_args: dict[str, Any]) -> UserImage:
    """A file's bytes as a ``UserImage``, under the limits of ``load_args`` (the keys of
    ``UserImageDataset.DEFAULT_LOAD_ARGS``), or an ``ImageRefusedError`` saying why."""
    limit, max_pixels = load_args["max_file_bytes"], load_args["max_pixels"]
    if not content:
        raise ImageRefusedError("empty file (0 bytes)")
    if len(content) > limit:
        raise ImageRefusedError(
            f"file of {len(content):,} bytes is over the limit of {limit:,} (max_file_bytes)"
        )
    with _pillow_limits(max_pixels):
        try:
            return _decode(content, load_args["formats"], load_args["draft_size"])
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise _too_many_pixels(error, max_pixels) from error


def _decode(content: bytes, formats: list[str], draft_size: int | None) -> UserImage:
    try:
        image = Image.open(io.BytesIO(content), formats=formats)
    except Image.UnidentifiedImageError as error:
        hint = ": it holds text" if _looks_like_text(content) else ""
        raise ImageRefusedError(
            f"not an image in an accepted format ({', '.join(formats)}){hint}"
        ) from error
    try:
        facts = (image.format, image.mode, image.size, getattr(image, "n_frames", 1))
        if draft_size:  # a no-op for formats other than JPEG
            image.draft(None, (draft_size,) * 2)
        image.load()
        orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
        upright = ImageOps.exif_transpose(image) if orientation != 1 else image
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise
    # Pillow's decoders fail on damaged or crafted data with many exception types
    # (OSError, SyntaxError, ValueError, EOFError, struct.error...): whichever it is,
    # this file is refused and the caller goes on with the next one.
    except Exception as error:  # noqa: BLE001
        reason = " ".join(str(error).split()) or type(error).__name__
        raise ImageRefusedError(f"damaged {image.format} data: {reason}") from error
    return UserImage(upright, *facts, rotated=orientation != 1)
