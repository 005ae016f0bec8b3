"""CIFAR-10-C-style corruptions, regenerated: the corruptions of Hendrycks & Dietterich,
"Benchmarking Neural Network Robustness to Common Corruptions and Perturbations" (ICLR
2019), at their five CIFAR-sized severities, written anew on numpy, scipy, Pillow and
matplotlib.

The severity parameters are those of the authors' CIFAR-10-C generator; the code is not
theirs, and its random draws differ, so the images are not the released data set and
results are labelled "CIFAR-10-C-style, regenerated". Left out: ``frost``, which blends in
photographs of frost that the authors distribute with their code. ImageMagick's motion
blur (used by ``motion_blur`` and ``snow``) is rebuilt as its one-sided Gaussian line
kernel, and OpenCV's filters and warps as their scipy equivalents.

Each corruption takes a batch of uint8 images (N, 32, 32, 3), a severity from 1 to 5 and a
numpy Generator, and returns uint8 images of the same shape; severity 0 is the identity.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from matplotlib.colors import hsv_to_rgb, rgb_to_hsv
from PIL import Image
from scipy import ndimage

Corruption = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]
SIZE = 32
# ITU-R 601 luma, as OpenCV's RGB2GRAY.
_LUMA = np.array([0.299, 0.587, 0.114])


def _gaussian(x: np.ndarray, sigma: float) -> np.ndarray:
    """skimage's gaussian filter over the two image axes of a batch (edge mode nearest)."""
    return ndimage.gaussian_filter(x, sigma=(0, sigma, sigma, 0), mode="nearest", truncate=4.0)


def _linear_zoom(size: int, factor: float) -> np.ndarray:
    """scipy.ndimage.zoom's linear interpolation along one axis, as a matrix: output
    pixel o reads input coordinate o * (size - 1) / (out - 1)."""
    out = round(size * factor)
    coordinate = np.arange(out) * (size - 1) / max(out - 1, 1)
    low = np.minimum(np.floor(coordinate).astype(int), size - 2)
    weight = coordinate - low
    matrix = np.zeros((out, size))
    matrix[np.arange(out), low] = 1 - weight
    matrix[np.arange(out), low + 1] += weight
    return matrix


def _clipped_zoom(x: np.ndarray, factor: float) -> np.ndarray:
    """The centre 1/factor of each image, zoomed back to full size (linear)."""
    crop = int(np.ceil(SIZE / factor))
    top = (SIZE - crop) // 2
    matrix = _linear_zoom(crop, factor)
    trim = (matrix.shape[0] - SIZE) // 2
    matrix = matrix[trim : trim + SIZE]
    centre = x[:, top : top + crop, top : top + crop]
    return np.einsum("oi,nijc,pj->nopc", matrix, centre, matrix, optimize=True)


def _motion_blur(x: np.ndarray, radius: int, sigma: float, angles: np.ndarray) -> np.ndarray:
    """ImageMagick's motion blur: a one-sided Gaussian line kernel of 2*radius + 1 taps
    along each image's own angle (degrees), edges repeated."""
    taps = np.arange(2 * radius + 1)
    weights = np.exp(-(taps**2) / (2 * sigma**2))
    weights /= weights.sum()
    radians = np.deg2rad(angles)[:, None]
    d_col = np.rint(taps * np.cos(radians)).astype(int)  # (N, taps)
    d_row = np.rint(taps * np.sin(radians)).astype(int)
    grid = np.arange(SIZE)
    batch = np.arange(len(x))[:, None, None]
    out = np.zeros(x.shape, dtype=np.float64)
    for tap, weight in enumerate(weights):
        rows = np.clip(grid[None, :, None] + d_row[:, tap, None, None], 0, SIZE - 1)
        cols = np.clip(grid[None, None, :] + d_col[:, tap, None, None], 0, SIZE - 1)
        out += weight * x[batch, rows, cols]
    return out


def _plasma(count: int, decay: float, rng: np.random.Generator) -> np.ndarray:
    """Diamond-square height maps (count, 32, 32) in [0, 1], roughness falling by
    ``decay`` at each halving of the step."""
    heights = np.zeros((count, SIZE, SIZE))
    step, wibble = SIZE, 100.0

    def wibbled(total: np.ndarray) -> np.ndarray:
        return total / 4 + wibble * rng.uniform(-wibble, wibble, total.shape)

    while step >= 2:  # noqa: PLR2004
        half = step // 2
        corners = heights[:, ::step, ::step]
        square = corners + np.roll(corners, -1, axis=1)
        square = square + np.roll(square, -1, axis=2)
        heights[:, half::step, half::step] = wibbled(square)
        centres = heights[:, half::step, half::step]
        left = centres + np.roll(centres, 1, axis=1) + corners + np.roll(corners, -1, axis=2)
        heights[:, ::step, half::step] = wibbled(left)
        top = centres + np.roll(centres, 1, axis=2) + corners + np.roll(corners, -1, axis=1)
        heights[:, half::step, ::step] = wibbled(top)
        step, wibble = half, wibble / decay
    heights -= heights.min(axis=(1, 2), keepdims=True)
    return heights / heights.max(axis=(1, 2), keepdims=True)


def gaussian_noise(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    scale = [0.04, 0.06, 0.08, 0.09, 0.10][severity - 1]
    return x + rng.normal(scale=scale, size=x.shape)


def shot_noise(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    photons = [500, 250, 100, 75, 50][severity - 1]
    return rng.poisson(x * photons) / photons


def impulse_noise(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    amount = [0.01, 0.02, 0.03, 0.05, 0.07][severity - 1]
    hit, salt = rng.random(x.shape) < amount, rng.random(x.shape) < 0.5  # noqa: PLR2004
    return np.where(hit, salt.astype(float), x)


def defocus_blur(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    radius, alias = [(0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)][severity - 1]
    axis = np.arange(-8, 9)
    disk = (axis[:, None] ** 2 + axis[None, :] ** 2 <= radius**2).astype(float)
    # OpenCV's 3x3 Gaussian over the disk (reflect-101 edges), then normalised.
    taps = np.exp(-(np.array([-1.0, 0.0, 1.0]) ** 2) / (2 * alias**2))
    for dim in (0, 1):
        disk = ndimage.correlate1d(disk, taps / taps.sum(), axis=dim, mode="mirror")
    kernel = disk / disk.sum()
    return ndimage.correlate(x, kernel[None, :, :, None], mode="mirror")


def glass_blur(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    sigma, delta, iterations = [(0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)][
        severity - 1
    ]
    pixels = np.uint8(_gaussian(x, sigma) * 255)
    batch = np.arange(len(x))
    # Each pixel, bottom-right to top-left, swapped with a neighbour up to delta away.
    for _ in range(iterations):
        for row in range(SIZE - delta, delta, -1):
            for col in range(SIZE - delta, delta, -1):
                d_row, d_col = rng.integers(-delta, delta, size=(2, len(x)))
                other = (batch, row + d_row, col + d_col)
                here = pixels[batch, row, col].copy()
                pixels[batch, row, col] = pixels[other]
                pixels[other] = here
    return _gaussian(pixels / 255, sigma)


def motion_blur(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    radius, sigma = [(6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)][severity - 1]
    return _motion_blur(x, radius, sigma, rng.uniform(-45, 45, len(x)))


def zoom_blur(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    top = [1.06, 1.11, 1.16, 1.21, 1.26][severity - 1]
    factors = np.arange(1, top, 0.01)
    total = x + sum(_clipped_zoom(x, factor) for factor in factors)
    return total / (len(factors) + 1)


def snow(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    loc, scale, zoom, threshold, radius, sigma, keep = [
        (0.1, 0.2, 1, 0.6, 8, 3, 0.95),
        (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
        (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
        (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
        (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8),
    ][severity - 1]
    flakes = _clipped_zoom(rng.normal(loc, scale, (len(x), SIZE, SIZE, 1)), zoom)
    flakes = np.where(flakes < threshold, 0.0, flakes)
    flakes = np.round(np.clip(flakes, 0, 1) * 255) / 255  # a grey 8-bit layer
    flakes = _motion_blur(flakes, radius, sigma, rng.uniform(-135, -45, len(x)))
    flakes = np.round(np.clip(flakes, 0, 1) * 255) / 255
    grey = (x @ _LUMA)[..., None]
    x = keep * x + (1 - keep) * np.maximum(x, grey * 1.5 + 0.5)
    return x + flakes + np.rot90(flakes, k=2, axes=(1, 2))


def fog(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    thickness, decay = [(0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)][severity - 1]
    brightest = x.max(axis=(1, 2, 3), keepdims=True)
    x = x + thickness * _plasma(len(x), decay, rng)[..., None]
    return x * brightest / (brightest + thickness)


def brightness(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    lift = [0.05, 0.1, 0.15, 0.2, 0.3][severity - 1]
    hsv = rgb_to_hsv(x)
    hsv[..., 2] = np.clip(hsv[..., 2] + lift, 0, 1)
    return hsv_to_rgb(hsv)


def contrast(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    keep = [0.75, 0.5, 0.4, 0.3, 0.15][severity - 1]
    means = x.mean(axis=(1, 2), keepdims=True)
    return (x - means) * keep + means


def elastic_transform(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    strength, smooth, affine = (
        np.array(
            [
                (0, 0, 0.08),
                (0.05, 0.2, 0.07),
                (0.08, 0.06, 0.06),
                (0.1, 0.04, 0.05),
                (0.1, 0.03, 0.03),
            ][severity - 1]
        )
        * SIZE
    )
    centre, side = SIZE // 2, SIZE // 3
    points = np.array([[centre + side] * 2, [centre + side, centre - side], [centre - side] * 2])
    rows, cols = np.meshgrid(np.arange(SIZE), np.arange(SIZE), indexing="ij")
    out = np.empty_like(x)
    for index, image in enumerate(x):
        # A random affine map of three points (reflect-101 edges), then a smooth random
        # displacement field.
        moved = points + rng.uniform(-affine, affine, points.shape)
        source = np.c_[moved, np.ones(3)]
        forward = np.linalg.solve(source, points).T  # target -> source coordinates
        warped = np.stack(
            [
                ndimage.affine_transform(
                    image[..., c], forward[:, :2], forward[:, 2], order=1, mode="mirror"
                )
                for c in range(3)
            ],
            axis=-1,
        )
        shift = [
            ndimage.gaussian_filter(
                rng.uniform(-1, 1, (SIZE, SIZE)), smooth, mode="reflect", truncate=3
            )
            * strength
            for _ in range(2)
        ]
        coords = [rows + shift[1], cols + shift[0]]
        out[index] = np.stack(
            [
                ndimage.map_coordinates(warped[..., c], coords, order=1, mode="reflect")
                for c in range(3)
            ],
            axis=-1,
        )
    return out


def _per_image(x: np.ndarray, transform: Callable[[Image.Image], Image.Image]) -> np.ndarray:
    pixels = np.uint8(np.round(np.clip(x, 0, 1) * 255))
    return np.stack([np.asarray(transform(Image.fromarray(image))) for image in pixels]) / 255


def pixelate(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    small = int(SIZE * [0.95, 0.9, 0.85, 0.75, 0.65][severity - 1])

    def blocky(image: Image.Image) -> Image.Image:
        return image.resize((small, small), Image.BOX).resize((SIZE, SIZE), Image.BOX)

    return _per_image(x, blocky)


def jpeg_compression(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    quality = [80, 65, 58, 50, 40][severity - 1]

    def compressed(image: Image.Image) -> Image.Image:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=quality)
        return Image.open(buffer).convert("RGB")

    return _per_image(x, compressed)


CORRUPTIONS: dict[str, Corruption] = {
    "gaussian_noise": gaussian_noise,
    "shot_noise": shot_noise,
    "impulse_noise": impulse_noise,
    "defocus_blur": defocus_blur,
    "glass_blur": glass_blur,
    "motion_blur": motion_blur,
    "zoom_blur": zoom_blur,
    "snow": snow,
    "fog": fog,
    "brightness": brightness,
    "contrast": contrast,
    "elastic_transform": elastic_transform,
    "pixelate": pixelate,
    "jpeg_compression": jpeg_compression,
}
LEFT_OUT = {"frost": "blends in photographs of frost that ship with the authors' code"}


def corrupt(images: np.ndarray, name: str, severity: int, seed: int) -> np.ndarray:
    """``images`` (uint8) under one corruption at one severity, the same for the same seed."""
    if severity == 0:
        return images.copy()
    # One stream per corruption and severity: a subset or another order of corruptions
    # leaves the others' images unchanged.
    rng = np.random.default_rng([seed, list(CORRUPTIONS).index(name), severity])
    corrupted = CORRUPTIONS[name](images.astype(np.float64) / 255, severity, rng)
    return np.uint8(np.round(np.clip(corrupted, 0, 1) * 255))
