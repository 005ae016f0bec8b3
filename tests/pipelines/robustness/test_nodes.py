"""The robustness nodes on a stand-in network: one row per corruption and severity, the
summary's ratios, and the two figures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alexnet_cifar10.pipelines.robustness.nodes import (
    STYLE,
    evaluate_corruptions,
    plot_corruption_grid,
    plot_robustness_heatmap,
    summarise_robustness,
)
from alexnet_cifar10.provenance import TrainedModel

LABELS = {"model_version": "v1", "run_label": "unit", "kedro_env": "test"}
PARAMS = {
    "images": 6,
    "corruptions": ["contrast", "gaussian_noise"],
    "severities": [1, 5],
    "grid_image": 2,
}


class _BrightIsClassZero:
    """Stands for a network: class 0 for bright images, class 1 otherwise, sure of it."""

    def predict(self, images: np.ndarray, batch_size: int, verbose: int) -> np.ndarray:
        bright = images.mean(axis=(1, 2, 3)) > 127  # noqa: PLR2004
        return np.stack([bright, ~bright], axis=1).astype(np.float32)


@pytest.fixture
def test_split() -> dict[str, np.ndarray]:
    levels = np.array([250, 240, 230, 10, 20, 30, 200, 5], np.uint8)
    images = np.broadcast_to(levels[:, None, None, None], (8, 32, 32, 3)).copy()
    # A texture, so that contrast has something to squeeze.
    images[:, ::2] = np.where(levels[:, None, None, None] > 127, 255, 0)
    labels = np.eye(2)[(levels <= 127).astype(int)]
    return {"images": images, "labels": labels}


def test_every_corruption_and_severity_is_a_row_with_its_labels(test_split: dict) -> None:
    model = TrainedModel(_BrightIsClassZero(), LABELS, pd.DataFrame())
    results = evaluate_corruptions(model, test_split, PARAMS, 4, {"bins": 15}, 0)
    assert results[["corruption", "severity"]].values.tolist() == [
        ["clean", 0],
        ["contrast", 1],
        ["contrast", 5],
        ["gaussian_noise", 1],
        ["gaussian_noise", 5],
    ]
    assert (results["images"] == 6).all(), "the first `images` test images"
    clean = results.iloc[0]
    assert clean["accuracy"] == 1 and clean["ece"] == 0
    assert results[list(LABELS)].drop_duplicates().to_dict("records") == [LABELS]
    assert (results[["corrupt_seconds", "predict_seconds"]] >= 0).all().all()

    summary = summarise_robustness(results)
    corrupted = results["accuracy"].iloc[1:]
    assert summary["mean_corruption_accuracy"] == pytest.approx(corrupted.mean())
    assert summary["relative_accuracy"] == pytest.approx(corrupted.mean() / 1.0)
    assert summary["data"] == STYLE and summary["images_per_corruption"] == 6
    assert set(summary["by_corruption"]) == {"contrast", "gaussian_noise"}
    assert set(summary["by_severity"]) == {1, 5}

    figure = plot_robustness_heatmap(results)
    assert STYLE in figure.axes[0].get_title() and "unit · model v1" in figure.axes[0].get_title()
    assert len(figure.axes[0].texts) == 4, "one annotated cell per corruption and severity"


def test_the_grid_shows_one_image_clean_and_at_severities_3_and_5(test_split: dict) -> None:
    figure = plot_corruption_grid(test_split, PARAMS, 0, "unit")
    shown = [axis for axis in figure.axes if axis.images]
    assert len(shown) == 1 + 2 * len(PARAMS["corruptions"])
    assert np.array_equal(shown[0].images[0].get_array(), test_split["images"][2])
    assert "Test image 2" in figure.get_suptitle()
