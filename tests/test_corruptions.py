"""The CIFAR-10-C-style corruptions: shape, dtype and range kept, severity 0 the identity,
the same images for the same seed, and more distortion at higher severity."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from alexnet_cifar10.corruptions import CORRUPTIONS, LEFT_OUT, _clipped_zoom, corrupt

# The published severities of these two are not ordered by pixel error: glass blur's sigma
# goes 0.05, 0.25, 0.4, 0.25, 0.4 (more smoothing hides the shuffle), and the elastic
# transform's affine part shrinks while its elastic part grows.
NOT_ORDERED = {"glass_blur", "elastic_transform"}
# Motion blur's severities 3 and 4 differ in kernel radius only (6 and 8 taps at the same
# sigma of 2, where taps past 6 weigh under 1%): their errors are the same but for the
# random angles.
TOLERANCE_DB = {"motion_blur": 0.5}


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    """64 real-looking images: smooth shading with a hard edge and a colour patch."""
    rng = np.random.default_rng(3)
    shading = ndimage.gaussian_filter(rng.random((64, 32, 32, 3)), sigma=(0, 2, 2, 0))
    low, high = shading.min((1, 2, 3), keepdims=True), shading.max((1, 2, 3), keepdims=True)
    shading = (shading - low) / (high - low)
    edge = np.arange(32)[None, :, None, None] > rng.integers(8, 24, (64, 1, 1, 1))
    pixels = 0.2 + 0.5 * shading + 0.3 * edge * rng.random((64, 1, 1, 3))
    return np.uint8(np.clip(pixels, 0, 1) * 255)


def _psnr(corrupted: np.ndarray, clean: np.ndarray) -> float:
    error = np.mean((corrupted.astype(float) - clean) ** 2)
    return float(10 * np.log10(255**2 / error))


def test_fourteen_of_the_fifteen_corruptions_and_the_one_left_out_named() -> None:
    assert len(CORRUPTIONS) == 14
    assert set(LEFT_OUT) == {"frost"} and not set(LEFT_OUT) & set(CORRUPTIONS)


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_a_corruption_keeps_shape_dtype_and_is_seeded(name: str, images: np.ndarray) -> None:
    batch = images[:8]
    assert np.array_equal(corrupt(batch, name, 0, seed=1), batch), "severity 0 is the identity"
    for severity in (1, 5):
        once = corrupt(batch, name, severity, seed=1)
        assert once.shape == batch.shape and once.dtype == np.uint8
        assert np.array_equal(once, corrupt(batch, name, severity, seed=1)), "deterministic"
        assert not np.array_equal(once, batch), "it changes the images"
    assert np.array_equal(batch, images[:8]), "the input is left alone"


@pytest.mark.parametrize("name", sorted(set(CORRUPTIONS) - NOT_ORDERED))
def test_distortion_grows_with_severity(name: str, images: np.ndarray) -> None:
    psnr = [_psnr(corrupt(images, name, severity, seed=0), images) for severity in range(1, 6)]
    rises = np.diff(psnr)
    assert (rises < TOLERANCE_DB.get(name, 0)).all(), psnr
    assert psnr[4] < psnr[0] - 1, psnr


def test_the_noise_depends_on_the_seed(images: np.ndarray) -> None:
    one, other = (corrupt(images[:4], "gaussian_noise", 3, seed=s) for s in (1, 2))
    assert not np.array_equal(one, other)


def test_the_clipped_zoom_is_scipys_linear_zoom_of_the_centre() -> None:
    x = np.random.default_rng(0).random((2, 32, 32, 3))
    for factor in (1.05, 1.25, 2.25):
        crop = int(np.ceil(32 / factor))
        top = (32 - crop) // 2
        zoomed = ndimage.zoom(
            x[:, top : top + crop, top : top + crop], (1, factor, factor, 1), order=1
        )
        trim = (zoomed.shape[1] - 32) // 2
        expected = zoomed[:, trim : trim + 32, trim : trim + 32]
        np.testing.assert_allclose(_clipped_zoom(x, factor), expected, atol=1e-12)
