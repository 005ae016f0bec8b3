"""Calibration error, proper scores and temperature scaling on cases with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alexnet_cifar10.calibration import (
    brier_score,
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
    reliability,
    scores,
    with_temperature,
)


def _two_class(confidence: np.ndarray, correct: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Predictions of class 0 at the given confidences; the label is 0 where correct."""
    probabilities = np.stack([confidence, 1 - confidence], axis=1)
    return probabilities, np.where(correct, 0, 1)


def test_a_perfectly_calibrated_model_has_no_calibration_error() -> None:
    # In each bin the share of right answers equals the confidence: 7 of 10 at 0.7,
    # 9 of 10 at 0.9.
    confidence = np.repeat([0.7, 0.9], 10)
    correct = np.r_[np.arange(10) < 7, np.arange(10) < 9]
    assert expected_calibration_error(*_two_class(confidence, correct), 15) == pytest.approx(0)


def test_an_always_over_confident_model_is_off_by_its_gap() -> None:
    # 99% sure every time, right half the time: ECE 0.49.
    confidence = np.full(100, 0.99)
    correct = np.arange(100) % 2 == 0
    assert expected_calibration_error(*_two_class(confidence, correct), 15) == pytest.approx(0.49)


def test_the_error_weights_each_bin_by_its_images() -> None:
    # 30 images at 0.95 all right (gap 0.05), 10 at 0.55 all wrong (gap 0.55).
    confidence = np.r_[np.full(30, 0.95), np.full(10, 0.55)]
    correct = np.r_[np.ones(30, bool), np.zeros(10, bool)]
    expected = (30 * 0.05 + 10 * 0.55) / 40
    probabilities, labels = _two_class(confidence, correct)
    assert expected_calibration_error(probabilities, labels, 15) == pytest.approx(expected)
    table = reliability(probabilities, labels, 15)
    assert table["images"].sum() == 40 and len(table) == 15
    assert table.loc[14, ["lower", "upper", "images"]].tolist() == pytest.approx([14 / 15, 1, 30])


def test_the_proper_scores_of_known_cases() -> None:
    sure = np.eye(3)[[0, 1, 2]]
    labels = np.array([0, 1, 2])
    assert negative_log_likelihood(sure, labels) == pytest.approx(0, abs=1e-6)
    assert brier_score(sure, labels) == 0
    uniform = np.full((3, 3), 1 / 3)
    assert negative_log_likelihood(uniform, labels) == pytest.approx(np.log(3))
    assert brier_score(uniform, labels) == pytest.approx((2 / 3) ** 2 + 2 / 9)
    assert brier_score(np.eye(3)[[1, 2, 0]], labels) == 2, "sure and wrong: the worst"
    assert set(scores(uniform, labels, 15)) == {"ece", "nll", "brier"}


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000))
def test_temperature_one_changes_nothing(seed: int) -> None:
    rng = np.random.default_rng(seed)
    probabilities = rng.dirichlet(np.ones(10), size=20)
    scaled = with_temperature(probabilities, 1.0)
    np.testing.assert_allclose(scaled, probabilities, rtol=1e-6, atol=1e-7)
    hotter = with_temperature(probabilities, 3.0)
    np.testing.assert_allclose(hotter.sum(axis=1), 1, rtol=1e-6)
    np.testing.assert_array_equal(hotter.argmax(axis=1), probabilities.argmax(axis=1))
    assert (hotter.max(axis=1) <= probabilities.max(axis=1) + 1e-7).all(), "T > 1 softens"


def test_the_fitted_temperature_lowers_the_nll_it_was_fitted_on() -> None:
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 10, 500)
    # Logits that favour the true class, made over-confident by a factor of 4.
    logits = rng.normal(size=(500, 10))
    logits[np.arange(500), labels] += 1.0
    probabilities = with_temperature(np.exp(logits) / np.exp(logits).sum(1, keepdims=True), 0.25)
    temperature = fit_temperature(probabilities, labels)
    assert 3 < temperature < 5
    before = negative_log_likelihood(probabilities, labels)
    after = negative_log_likelihood(with_temperature(probabilities, temperature), labels)
    assert after < before
    for other in (temperature * 0.8, temperature * 1.25):
        assert after <= negative_log_likelihood(with_temperature(probabilities, other), labels)
