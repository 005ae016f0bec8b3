"""Unit tests of how a decoded picture becomes the network's input: pixel modes, fit policies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from user_images import sixteen_bit_rgb_png

from alexnet_cifar10.datasets import UserImageDataset
from alexnet_cifar10.pictures import ImageRefusedError, fit_to_input, to_rgb

RESIZE = {"fit": "crop", "resample": "lanczos", "background": [255, 255, 255]}


@pytest.mark.parametrize(
    ("mode", "how"),
    [
        ("RGB", None),
        ("L", "greyscale (L) to RGB"),
        ("1", "1-bit (1) to RGB"),
        ("P", "palette (P) to RGB"),
        ("CMYK", "CMYK to RGB"),
        ("YCbCr", "YCbCr to RGB"),
    ],
)
def test_each_pixel_mode_says_how_it_became_rgb(mode: str, how: str | None) -> None:
    rgb, said = to_rgb(Image.new(mode, (2, 2)), [255, 255, 255])
    assert (rgb.mode, said) == ("RGB", how)


def test_sixteen_bit_grey_is_scaled_not_clipped() -> None:
    ramp = np.array([[0, 256, 32768, 65535]], dtype=np.uint16)
    rgb, how = to_rgb(Image.fromarray(ramp), [255, 255, 255])
    assert np.asarray(rgb)[0, :, 0].tolist() == [0, 1, 128, 255]
    assert how == "16-bit greyscale (I;16) to 8-bit RGB"


def test_sixteen_bit_rgb_is_read_as_its_top_bytes(tmp_path: Path) -> None:
    (tmp_path / "rgb48.png").write_bytes(sixteen_bit_rgb_png())
    photo = UserImageDataset(filepath=str(tmp_path / "rgb48.png")).load()
    rgb, how = to_rgb(photo.image, [255, 255, 255])
    assert how is None, "Pillow reads 16-bit RGB as 8-bit RGB: nothing left to convert"
    assert np.asarray(rgb)[0].tolist() == [[0, 0, 128], [85, 0, 128], [170, 0, 128], [255, 0, 128]]


def test_alpha_is_flattened_onto_the_background_only_where_transparent() -> None:
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 0], rgba[0, 0, 3], rgba[0, 1, 3] = 200, 255, 0
    rgb, how = to_rgb(Image.fromarray(rgba), [0, 0, 255])
    assert np.asarray(rgb)[0].tolist() == [[200, 0, 0], [0, 0, 255]]
    assert how == "RGBA with transparency flattened onto (0, 0, 255)"
    opaque, how = to_rgb(Image.fromarray(np.full((2, 2, 4), 255, np.uint8)), [0, 0, 0])
    assert (opaque.mode, how) == ("RGB", "RGBA (opaque) to RGB")


def test_greyscale_with_alpha_is_flattened_onto_the_background() -> None:
    grey = Image.new("LA", (2, 1), (100, 255))
    grey.putpixel((1, 0), (100, 0))
    rgb, how = to_rgb(grey, [0, 0, 255])
    assert rgb.mode == "RGB"
    assert np.asarray(rgb)[0].tolist() == [[100, 100, 100], [0, 0, 255]]
    assert how == "LA with transparency flattened onto (0, 0, 255)"


@pytest.mark.parametrize("mode", ["I", "F"])
def test_pixels_without_an_8_bit_scale_are_refused(mode: str) -> None:
    with pytest.raises(ImageRefusedError, match=f"pixels \\({mode}\\) have no 8-bit scale"):
        to_rgb(Image.new(mode, (2, 2)), [0, 0, 0])


def test_a_mode_pillow_cannot_convert_is_refused() -> None:
    with pytest.raises(ImageRefusedError, match="pixel mode La has no conversion to RGB"):
        to_rgb(Image.new("La", (2, 2)), [0, 0, 0])


def _stripes() -> Image.Image:
    """96x32: red, green and blue thirds side by side."""
    pixels = np.zeros((32, 96, 3), np.uint8)
    for third in range(3):
        pixels[:, third * 32 : (third + 1) * 32, third] = 255
    return Image.fromarray(pixels)


def test_the_fit_policies() -> None:
    crop = np.asarray(fit_to_input(_stripes(), RESIZE))
    assert crop.shape == (32, 32, 3)
    assert (crop[..., 1] > 250).all() and (crop[..., [0, 2]] < 5).all(), "the centre square"
    pad = np.asarray(fit_to_input(_stripes(), {**RESIZE, "fit": "pad", "background": [9, 9, 9]}))
    assert pad[0].tolist() == [[9, 9, 9]] * 32 and pad[16, 16, 1] > 250
    stretch = np.asarray(fit_to_input(_stripes(), {**RESIZE, "fit": "stretch"}))
    assert stretch[16, 2, 0] > 250 and stretch[16, 29, 2] > 250


@pytest.mark.parametrize("fit", ["crop", "pad", "stretch"])
def test_every_fit_resizes_with_the_resample_asked(fit: str) -> None:
    """A 64x64 checkerboard of single pixels halved: nearest picks pixels, black or white;
    lanczos averages them to grey."""
    checker = (np.indices((64, 64)).sum(axis=0) % 2 * 255).astype(np.uint8)
    picture = Image.fromarray(np.stack([checker] * 3, axis=-1))
    nearest = np.asarray(fit_to_input(picture, {**RESIZE, "fit": fit, "resample": "nearest"}))
    assert set(np.unique(nearest)) <= {0, 255}
    lanczos = np.asarray(fit_to_input(picture, {**RESIZE, "fit": fit}))
    assert ((lanczos > 64) & (lanczos < 192)).all()


@pytest.mark.parametrize("fit", ["crop", "pad", "stretch"])
@pytest.mark.parametrize("resample", ["lanczos", "nearest"])
def test_a_32x32_picture_passes_through_unchanged(fit: str, resample: str) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    policy = {**RESIZE, "fit": fit, "resample": resample}
    np.testing.assert_array_equal(np.asarray(fit_to_input(Image.fromarray(pixels), policy)), pixels)
