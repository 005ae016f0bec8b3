"""Pictures a person might drop into data/01_raw/user_images: good ones and every bad kind,
each with the status the predict pipeline must give it."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

WHITE = "(255, 255, 255)"
ACCEPTED = "BMP, GIF, JPEG, PNG, TIFF, WEBP"
# Pillow would run Ghostscript on this, were EPS among the accepted formats.
EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nnewpath 0 0 moveto showpage\n"


def _scene(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A smooth RGB picture (compresses like a photo, unlike noise)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((width, height), Image.Resampling.BILINEAR))


def _encode(image: Image.Image, fmt: str, **save_args: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **save_args)
    return buffer.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A 1-bit greyscale PNG whose header claims ``width`` x ``height`` pixels; the file
    itself is a few dozen bytes (its data is one row)."""
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    row = b"\x00" + bytes((width + 7) // 8)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(row))
        + _chunk(b"IEND", b"")
    )


def truncated_jpeg() -> bytes:
    """The first half of a real JPEG."""
    content = _encode(Image.fromarray(_scene(200, 150)), "JPEG", quality=90)
    return content[: len(content) // 2]


def sixteen_bit_png() -> bytes:
    """A 16-bit greyscale PNG: a horizontal ramp from 0 to 65535."""
    ramp = np.linspace(0, 65535, 48, dtype=np.uint16)
    return _encode(Image.fromarray(np.tile(ramp, (40, 1))), "PNG")


def sixteen_bit_rgb_png() -> bytes:
    """A 16-bit-per-channel RGB PNG (Pillow cannot write one): red ramps from 0 to 65535
    along each row, blue is 0x8000 throughout."""
    pixels = np.zeros((2, 4, 3), dtype=">u2")
    pixels[..., 0] = np.linspace(0, 65535, 4)
    pixels[..., 2] = 0x8000
    rows = b"".join(b"\x00" + row.tobytes() for row in pixels)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 2, 16, 2, 0, 0, 0))
        + _chunk(b"IDAT", zlib.compress(rows))
        + _chunk(b"IEND", b"")
    )


def cmyk_jpeg() -> bytes:
    return _encode(Image.new("CMYK", (60, 40), (0, 255, 255, 0)), "JPEG")  # pure red


def palette_png_with_transparency() -> bytes:
    """A palette PNG whose index 0 is transparent: a red square on a see-through ground."""
    image = Image.new("P", (40, 40), 0)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    image.paste(1, (10, 10, 30, 30))
    return _encode(image, "PNG", transparency=0)


def animated_gif(frames: int = 3) -> bytes:
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]
    images = [Image.new("RGB", (40, 30), colours[i % len(colours)]) for i in range(frames)]
    return _encode(images[0], "GIF", save_all=True, append_images=images[1:], duration=100)


def rotated_jpeg() -> bytes:
    """A 60x40 JPEG whose EXIF says: turn me 90 degrees to view me."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return _encode(Image.fromarray(_scene(60, 40, 3)), "JPEG", exif=exif)


# File name -> (content, the status it must get). The vanishing file is written too; a
# test removes it between the folder listing and its turn to be read.
VANISHING = "vanishing.jpg"
BAD: dict[str, tuple[Callable[[], bytes], str]] = {
    "empty.png": (lambda: b"", "refused: empty file (0 bytes)"),
    "truncated.jpg": (
        truncated_jpeg,
        "refused: damaged JPEG data: image file is truncated",
    ),
    "notes.png": (
        lambda: b"Remember to buy milk.\n",
        f"refused: not an image in an accepted format ({ACCEPTED}): it holds text",
    ),
    "bomb.png": (
        bomb_png,
        "refused: 10,000,000,000 pixels is over the limit of 67,108,864 (max_pixels): "
        "not decoded (a decompression bomb?)",
    ),
    "grey16.png": (sixteen_bit_png, "converted: 16-bit greyscale (I;16) to 8-bit RGB"),
    "cmyk.jpg": (cmyk_jpeg, "converted: CMYK to RGB"),
    "palette_transparent.png": (
        palette_png_with_transparency,
        f"converted: P with transparency flattened onto {WHITE}",
    ),
    "animated.gif": (animated_gif, "converted: first of 3 frames; palette (P) to RGB"),
    "drawing.eps": (
        lambda: EPS,
        f"refused: not an image in an accepted format ({ACCEPTED}): it holds text",
    ),
    VANISHING: (
        lambda: _encode(Image.fromarray(_scene(50, 50, 4)), "JPEG"),
        "refused: the file disappeared before it could be read (moved or deleted during the "
        "run, or a broken link)",
    ),
}
GOOD: dict[str, tuple[Callable[[], bytes], str]] = {
    "cifar_like.png": (lambda: _encode(Image.fromarray(_scene(32, 32, 1)), "PNG"), "ok"),
    "photo.jpg": (lambda: _encode(Image.fromarray(_scene(640, 480, 2)), "JPEG"), "ok"),
    "rotated.jpg": (rotated_jpeg, "converted: turned upright (EXIF orientation)"),
    "sub/wide.webp": (lambda: _encode(Image.fromarray(_scene(300, 100, 5)), "WEBP"), "ok"),
    "grey.bmp": (
        lambda: _encode(Image.fromarray(_scene(50, 70, 6)).convert("L"), "BMP"),
        "converted: greyscale (L) to RGB",
    ),
    "scan.tiff": (lambda: _encode(Image.fromarray(_scene(90, 90, 7)), "TIFF"), "ok"),
}


def write_user_images(folder: Path, kinds: dict[str, tuple[Callable[[], bytes], str]]) -> None:
    """Write each file of ``kinds`` under ``folder``."""
    for name, (content, _) in kinds.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content())


def status_is_right(name: str, status: str) -> bool:
    """Whether ``status`` is the one ``name`` must get (for damaged data, Pillow's message
    ends with a byte count that depends on the decoder: its start only)."""
    expected = {**BAD, **GOOD}[name][1]
    return status.startswith(expected) if name == "truncated.jpg" else status == expected
