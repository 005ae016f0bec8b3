"""A person's picture file, decoded under limits and brought to the network's input.

This module is the part of the predict path that the served MLflow model carries with it
(with ``inference``, ``calibration`` and ``provenance``): it imports NumPy, Pillow and the
standard library only, never Kedro or a deep-learning backend.

Decoding (``decode_image``, for ``datasets.UserImageDataset`` and the served model):

- refuses empty files and files over ``max_file_bytes`` before reading them;
- tries only the decoders of the ``formats`` listed (``SAFE_FORMATS`` by default);
- refuses images over ``max_pixels`` when their header is read, before decoding a pixel;
- treats truncated data as an error (never padded with grey);
- decodes the first frame only, and turns photos upright as their EXIF orientation says;
- with ``draft_size``, lets the JPEG decoder scale a large photo down by 2, 4 or 8 while
  both sides keep at least that many pixels (libjpeg's DCT scaling: a fraction of the
  work and memory of decoding every pixel).

Then (``prepare_images``, ``predict.resize`` in parameters_predict.yml):

1. Made 8-bit RGB: transparency (alpha, or a palette/colour key) is flattened onto
   ``background``; 16-bit greyscale is scaled to 8 bits (the top byte, not clipped at
   255); greyscale, palette, CMYK and YCbCr are converted by Pillow; 32-bit integer or
   float pixels, which have no standard 8-bit scale, are refused.
2. Brought to 32x32 by ``fit``: ``crop`` (the largest centred square, then resized),
   ``pad`` (the whole picture, resized to fit and centred on ``background``) or
   ``stretch`` (resized to 32x32 whatever its aspect ratio), each resized with
   ``resample`` (``lanczos`` by default: antialiased, so a large photo is averaged
   rather than sampled). A 32x32 RGB picture is passed through unchanged.

Whatever goes wrong with a file becomes an ``ImageRefusedError`` whose message says why
in a few words; every file gets a status: ``ok``, ``converted: <how>`` or ``refused: <why>``.
"""

from __future__ import annotations

import io
import logging
import re
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

import numpy as np
from PIL import ExifTags, Image, ImageFile, ImageOps

logger = logging.getLogger(__name__)

# A CIFAR-10 picture, and the network's input.
IMAGE_SHAPE = (32, 32, 3)
INPUT_SIZE = IMAGE_SHAPE[0]
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


class ImageRefusedError(ValueError):
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


OK, CONVERTED, REFUSED = "ok", "converted", "refused"
RESAMPLING = {
    name: getattr(Image.Resampling, name.upper())
    for name in ("lanczos", "bicubic", "hamming", "bilinear", "box", "nearest")
}
SIXTEEN_BIT = {"I;16", "I;16L", "I;16B", "I;16N"}
WITH_ALPHA = {"RGBA", "RGBa", "LA", "La", "PA"}
MODE_NAMES = {"L": "greyscale (L)", "1": "1-bit (1)", "P": "palette (P)"}
NO_8_BIT_SCALE = {"I": "32-bit integer", "F": "32-bit float"}
OPAQUE = 255
_PROGRESS_STEPS = 10
_PROGRESS_FROM = 100


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


def _flatten(image: Image.Image, background: list[int]) -> tuple[Image.Image, str]:
    rgba = image.convert("RGBA")
    if rgba.getchannel("A").getextrema()[0] == OPAQUE:
        return rgba.convert("RGB"), f"{image.mode} (opaque) to RGB"
    canvas = Image.new("RGBA", rgba.size, (*background, 255))
    flat = Image.alpha_composite(canvas, rgba).convert("RGB")
    return flat, f"{image.mode} with transparency flattened onto {tuple(background)}"


def to_rgb(image: Image.Image, background: list[int]) -> tuple[Image.Image, str | None]:
    """The picture as 8-bit RGB, and how it was converted (None: it already was)."""
    mode = image.mode
    if mode in SIXTEEN_BIT:
        top_byte = (np.asarray(image).astype(np.uint16) >> 8).astype(np.uint8)
        return Image.fromarray(top_byte).convert("RGB"), f"16-bit greyscale ({mode}) to 8-bit RGB"
    if mode in NO_8_BIT_SCALE:
        raise ImageRefusedError(f"{NO_8_BIT_SCALE[mode]} pixels ({mode}) have no 8-bit scale")
    try:
        if mode in WITH_ALPHA or "transparency" in image.info:
            return _flatten(image, background)
        if mode == "RGB":
            return image, None
        return image.convert("RGB"), f"{MODE_NAMES.get(mode, mode)} to RGB"
    except ValueError as error:  # Pillow's answer to a conversion it does not have
        raise ImageRefusedError(f"pixel mode {mode} has no conversion to RGB") from error


def fit_to_input(image: Image.Image, resize: dict[str, Any], side: int = INPUT_SIZE) -> Image.Image:
    """The RGB picture brought to the network's square input (32x32: CIFAR-10's) by the
    ``fit`` policy."""
    size, method = (side, side), RESAMPLING[resize["resample"]]
    if resize["fit"] == "crop":
        return ImageOps.fit(image, size, method=method)
    if resize["fit"] == "pad":
        return ImageOps.pad(image, size, method=method, color=tuple(resize["background"]))
    return image.resize(size, method)


def _prepare_one(
    load: Callable[[], UserImage], resize: dict[str, Any], side: int
) -> tuple[dict[str, str], np.ndarray | None]:
    """One file's facts and status, and its side x side pixels unless it was refused."""
    try:
        photo = load()
        rgb, conversion = to_rgb(photo.image, resize["background"])
    except ImageRefusedError as error:
        return {"status": f"{REFUSED}: {error}"}, None
    notes = [f"first of {photo.frames} frames"] if photo.frames > 1 else []
    notes += ["turned upright (EXIF orientation)"] if photo.rotated else []
    notes += [conversion] if conversion else []
    facts = {
        "status": f"{CONVERTED}: {'; '.join(notes)}" if notes else OK,
        "format": photo.format,
        "original_size": f"{photo.size[0]}x{photo.size[1]}",
        "original_mode": photo.mode,
    }
    return facts, np.asarray(fit_to_input(rgb, resize, side), dtype=np.uint8)


def _log_progress(done: int, total: int, refused: int) -> None:
    step = max(total // _PROGRESS_STEPS, 1)
    if total >= _PROGRESS_FROM and (done % step == 0 or done == total):
        logger.info("Prepared %d of %d pictures (%d refused so far)", done, total, refused)


def prepare_images(
    images: dict[str, Callable[[], UserImage]], resize: dict[str, Any], side: int = INPUT_SIZE
) -> dict[str, np.ndarray]:
    """Decode, convert and resize every file of the folder; say how, or why not."""
    rows, pixels = [], []
    for done, name in enumerate(sorted(images), start=1):
        facts, array = _prepare_one(images[name], resize, side)
        rows.append({"file_name": name, "format": "", "original_size": "", "original_mode": ""})
        rows[-1].update(facts)
        pixels += [array] if array is not None else []
        _log_progress(done, len(images), done - len(pixels))
    table = {key: np.array([row[key] for row in rows]) for key in rows[0]}
    empty = np.zeros((0, side, side, 3), np.uint8)
    accepted = ~np.char.startswith(table["status"], REFUSED)
    return {**table, "accepted": accepted, "images": np.stack(pixels) if pixels else empty}
