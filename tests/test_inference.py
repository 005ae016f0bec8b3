"""Test-time augmentation: the views of a batch and the mean of their probabilities."""

from __future__ import annotations

import numpy as np
import pytest

from alexnet_cifar10.inference import predict_probabilities, views

OFF = {"horizontal_flip": False, "shift": 0}


def _images(count: int = 3) -> np.ndarray:
    return np.random.default_rng(0).integers(1, 256, (count, 6, 6, 3), dtype=np.uint8)


class _Recorder:
    """A stand-in network: the probabilities of each view are known from its pixels."""

    def __init__(self) -> None:
        self.seen: list[np.ndarray] = []

    def predict(self, images: np.ndarray, batch_size: int, verbose: int) -> np.ndarray:
        self.seen.append(images)
        share = images.reshape(len(images), -1).mean(axis=1, dtype=np.float64) / 255
        return np.stack([share, 1 - share], axis=1).astype(np.float32)


def test_without_augmentation_the_only_view_is_the_batch_itself() -> None:
    images = _images()
    [view] = views(images, OFF)
    assert view is images


def test_the_flip_mirrors_each_image_left_to_right() -> None:
    images = _images()
    plain, mirrored = views(images, {**OFF, "horizontal_flip": True})
    np.testing.assert_array_equal(plain, images)
    np.testing.assert_array_equal(mirrored[:, :, ::-1], images)


def test_shifts_move_four_ways_with_a_zero_border() -> None:
    images = _images()
    plain, down, up, right, left = views(images, {**OFF, "shift": 2})
    np.testing.assert_array_equal(plain, images)
    np.testing.assert_array_equal(down[:, 2:], images[:, :-2])
    np.testing.assert_array_equal(up[:, :-2], images[:, 2:])
    np.testing.assert_array_equal(right[:, :, 2:], images[:, :, :-2])
    np.testing.assert_array_equal(left[:, :, :-2], images[:, :, 2:])
    for view, border in ((down, np.s_[:, :2]), (up, np.s_[:, -2:])):
        assert not view[border].any()
    for view, border in ((right, np.s_[:, :, :2]), (left, np.s_[:, :, -2:])):
        assert not view[border].any()
    assert all(
        view.dtype == images.dtype and view.shape == images.shape
        for view in views(images, {**OFF, "shift": 2})
    )


def test_flips_and_shifts_together_make_ten_views() -> None:
    assert len(list(views(_images(), {"horizontal_flip": True, "shift": 1}))) == 10


@pytest.mark.parametrize(
    "tta", [OFF, {"horizontal_flip": True, "shift": 0}, {"horizontal_flip": True, "shift": 1}]
)
def test_the_probabilities_are_the_mean_over_the_views(tta: dict) -> None:
    images, network = _images(), _Recorder()
    mean = predict_probabilities(network, images, 8, tta)
    seen = list(network.seen)
    assert len(seen) == len(list(views(images, tta)))
    expected = np.mean([network.predict(view, 8, 0) for view in seen], axis=0)
    np.testing.assert_allclose(mean, expected, rtol=1e-6)
    assert mean.dtype == np.float32
    np.testing.assert_allclose(mean.sum(axis=1), 1, rtol=1e-6)


def test_without_augmentation_the_probabilities_are_the_networks_own() -> None:
    images, network = _images(), _Recorder()
    np.testing.assert_array_equal(
        predict_probabilities(network, images, 8, OFF), network.predict(images, 8, 0)
    )
