"""The training callbacks: progress lines and the run's time estimate, on a fake clock."""

from __future__ import annotations

import logging

import pytest

from alexnet_cifar10.pipelines.training import callbacks
from alexnet_cifar10.pipelines.training.callbacks import TrainingProgress, duration


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(callbacks.time, "perf_counter", fake)
    return fake


def _progress(every_seconds: float = 30.0) -> TrainingProgress:
    return TrainingProgress(
        epochs=3,
        steps_per_epoch=100,
        validation_steps=30,
        batch_size=64,
        every_seconds=every_seconds,
        live=False,
    )


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(12.4, "12 s"), (59.6, "1 min 00 s"), (250, "4 min 10 s"), (11_100, "3 h 05 min")],
)
def test_duration_reads_like_a_person_writes_it(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_estimate_comes_from_the_first_steps_after_compilation(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    progress = _progress()
    caplog.set_level(logging.INFO)
    progress.on_epoch_begin(0)
    progress.on_train_batch_begin(0)
    clock.now += 5.0  # the first step compiles
    progress.on_train_batch_begin(1)
    for step in range(2, 12):
        clock.now += 1.0
        progress.on_train_batch_begin(step)
    # 1 s a step: 100 steps + 30 validation batches at a third each = 110 s an epoch, 3
    # epochs, plus the 4 extra seconds of the first step.
    assert progress.estimate == pytest.approx(334.0)
    assert "Estimated training time: 5 min 34 s for 3 epochs of 100 steps" in caplog.text
    clock.now += 1.0
    progress.on_train_batch_begin(12)
    assert caplog.text.count("Estimated training time") == 1


def test_an_epoch_too_short_to_time_is_estimated_from_its_wall_time(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    progress = _progress()
    caplog.set_level(logging.INFO)
    progress.on_epoch_begin(0)
    progress.on_train_batch_begin(0)
    clock.now += 20.0
    progress.on_epoch_end(0)
    assert progress.estimate == pytest.approx(60.0)
    assert "Estimated training time: 1 min 00 s for 3 epochs" in caplog.text


def test_progress_lines_every_interval_with_speed_and_time_left(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    progress = _progress(every_seconds=30.0)
    caplog.set_level(logging.INFO)
    progress.on_epoch_begin(0)
    for step in range(1, 61):
        clock.now += 1.0
        progress.on_train_batch_begin(step)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Epoch 1/3")]
    # One line at 30 s (step 30) and one at 60 s (step 60): 64 images a second.
    assert len(lines) == 2
    assert lines[0].startswith("Epoch 1/3: step 30/100, 64 images/s; about 1 min 10 s left")
    # The run: 40 steps of this epoch, then 2 epochs of 110 s (validation included).
    assert lines[1].endswith("about 40 s left in the epoch, 4 min 20 s in the run")


def test_later_epochs_use_measured_epoch_times(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    progress = _progress(every_seconds=30.0)
    caplog.set_level(logging.INFO)
    progress.on_epoch_begin(0)
    clock.now += 200.0
    progress.on_epoch_end(0)
    progress.on_epoch_begin(1)
    for step in range(1, 31):
        clock.now += 1.0
        progress.on_train_batch_begin(step)
    # 70 steps left at 1 step/s, then one more epoch of the 200 s measured.
    assert (
        caplog.records[-1]
        .getMessage()
        .endswith("1 min 10 s left in the epoch, 4 min 30 s in the run")
    )


def test_the_live_bar_starts_and_stops_with_each_epoch(clock: FakeClock) -> None:
    progress = _progress()
    progress.live = True
    progress.on_epoch_begin(0)
    assert progress._bar is not None
    clock.now += 1.0
    progress.on_train_batch_begin(1)
    assert progress._bar.tasks[0].completed == 1
    progress.on_epoch_end(0)
    assert progress._bar is None


def test_progress_reads_nothing_from_the_device_each_step() -> None:
    """Only a begin hook: Keras keeps dispatching steps asynchronously (no batch-end hook)."""
    assert (
        TrainingProgress.on_train_batch_end is callbacks.keras.callbacks.Callback.on_train_batch_end
    )
