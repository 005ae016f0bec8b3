"""The training callbacks: progress lines and the run's time estimate, on a fake clock; the
epoch log and resume points, on a model too small to train."""

from __future__ import annotations

import io
import json
import logging
import math
import re
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import keras
import numpy as np
import pytest
import rich

from alexnet_cifar10.pipelines.training import callbacks
from alexnet_cifar10.pipelines.training.callbacks import (
    EpochBackup,
    EpochLog,
    HistoryBackup,
    TrainingProgress,
    duration,
)


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


def _progress(every_seconds: float = 30.0, epochs: int = 3) -> TrainingProgress:
    return TrainingProgress(
        epochs=epochs,
        steps_per_epoch=100,
        validation_steps=30,
        batch_size=64,
        every_seconds=every_seconds,
        live=False,
    )


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (12.4, "12 s"),
        (59.6, "1 min 00 s"),
        (250, "4 min 10 s"),
        (3600, "1 h 00 min"),
        (11_100, "3 h 05 min"),
    ],
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
    for step in range(2, 11):
        clock.now += 1.0
        progress.on_train_batch_begin(step)
    assert progress.estimate is None, "9 timed steps are too few"
    clock.now += 1.0
    progress.on_train_batch_begin(11)
    # 1 s a step: 100 steps + 30 validation batches at a third each = 110 s an epoch, 3
    # epochs, plus the 4 extra seconds of the first step.
    assert progress.estimate == pytest.approx(334.0)
    assert caplog.messages == [
        "Estimated training time: 5 min 34 s for 3 epochs of 100 steps (1.000 s a step over "
        "steps 2-11, validation counted at a third of a step a batch; the first step, with "
        "compilation, took 5.0 s)"
    ]
    clock.now += 1.0
    progress.on_train_batch_begin(12)
    assert caplog.text.count("Estimated training time") == 1


def test_a_long_run_is_pointed_at_the_smoke_run(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    progress = _progress()
    caplog.set_level(logging.INFO)
    progress.on_epoch_begin(0)
    progress.on_train_batch_begin(0)
    clock.now += 400.0  # 3 epochs of 400 s: 20 minutes
    progress.on_epoch_end(0)
    assert caplog.messages == [
        "Estimated training time: 20 min 00 s for 3 epochs of 100 steps (the first epoch "
        "took 400.0 s); for a smoke run of the same pipeline in minutes: make quick "
        "(kedro run --env quick)"
    ]


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
    assert caplog.messages == [
        "Estimated training time: 1 min 00 s for 3 epochs of 100 steps "
        "(the first epoch took 20.0 s)"
    ]


@pytest.mark.parametrize(
    ("steps", "estimate"),
    # One step timed is no step time: the epoch's 7 s wall time, 3 times. Two steps timed:
    # 1 s a step, 110 s an epoch, 3 times, plus the 4 extra seconds of the first step.
    [(1, 21.0), (2, 21.0), (3, 334.0)],
)
def test_a_short_first_epoch_is_estimated_from_its_timed_steps_if_two(
    clock: FakeClock, steps: int, estimate: float
) -> None:
    progress = _progress()
    progress.on_epoch_begin(0)
    progress.on_train_batch_begin(0)
    for step, seconds in zip(range(1, steps), (5.0, 1.0), strict=False):
        clock.now += seconds
        progress.on_train_batch_begin(step)
    clock.now = 1007.0
    progress.on_epoch_end(0)
    assert progress.estimate == pytest.approx(estimate)


def test_a_resumed_run_is_estimated_for_the_epochs_left(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    progress = _progress()
    caplog.set_level(logging.INFO)
    progress.on_epoch_begin(1)
    progress.on_train_batch_begin(0)
    clock.now += 20.0
    progress.on_epoch_end(1)
    assert progress.estimate == pytest.approx(40.0)
    assert "Estimated training time: 40 s for 2 epochs of 100 steps" in caplog.text


def test_progress_lines_every_interval_with_speed_and_time_left(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    progress = _progress(every_seconds=10.0)
    caplog.set_level(logging.INFO)
    progress.on_epoch_begin(0)
    for step in range(1, 41):
        clock.now += 0.5
        progress.on_train_batch_begin(step)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Epoch 1/3")]
    # One line at 10 s (step 20) and one at 20 s (step 40): 2 steps, 128 images a second.
    # The run: 80 then 60 steps of this epoch, then 2 epochs of (100 steps + 30 validation
    # batches at a third of a step) / 2 steps a second = 55 s.
    assert lines == [
        "Epoch 1/3: step 20/100, 128 images/s; about 40 s left in the epoch, 2 min 30 s in the run",
        "Epoch 1/3: step 40/100, 128 images/s; about 30 s left in the epoch, 2 min 20 s in the run",
    ]


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


def test_the_time_left_counts_the_mean_of_the_epochs_measured(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    progress = _progress(every_seconds=30.0, epochs=4)
    caplog.set_level(logging.INFO)
    for epoch, seconds in enumerate((200.0, 100.0)):
        progress.on_epoch_begin(epoch)
        clock.now += seconds
        progress.on_epoch_end(epoch)
    progress.on_epoch_begin(2)
    for step in range(1, 31):
        clock.now += 1.0
        progress.on_train_batch_begin(step)
    # 70 steps left at 1 step/s, then one more epoch of the mean 150 s measured.
    assert caplog.records[-1].getMessage() == (
        "Epoch 3/4: step 30/100, 64 images/s; about 1 min 10 s left in the epoch, "
        "3 min 40 s in the run"
    )


@pytest.fixture
def terminal() -> Iterator[io.StringIO]:
    """Rich's console writing, as to a terminal, to a buffer this test reads."""
    screen = io.StringIO()
    rich.reconfigure(file=screen, force_terminal=True, width=100)
    yield screen
    rich.reconfigure()


def test_the_live_bar_starts_and_stops_with_each_epoch(
    clock: FakeClock, terminal: io.StringIO
) -> None:
    progress = TrainingProgress(3, 120, 30, 64, every_seconds=30.0, live=True)
    progress.on_epoch_begin(1)
    clock.now += 1.0
    progress.on_train_batch_begin(1)
    progress.on_epoch_end(1)
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", terminal.getvalue())
    assert "Epoch 2/3" in shown and "1/120 steps, time left" in shown, shown
    # Transient: the bar moves up over its last frame and erases it, for the log lines.
    assert "\x1b[1A\x1b[2K" in terminal.getvalue()
    written = len(terminal.getvalue())
    progress.on_train_batch_begin(2)
    assert len(terminal.getvalue()) == written, "no bar between epochs"


def test_the_live_bar_stops_with_a_fit_that_ends_mid_epoch(
    clock: FakeClock, terminal: io.StringIO
) -> None:
    progress = TrainingProgress(3, 120, 30, 64, every_seconds=30.0, live=True)
    progress.on_epoch_begin(0)
    progress.on_train_end()
    written = len(terminal.getvalue())
    time.sleep(0.3)  # a live bar refreshes ten times a second
    assert len(terminal.getvalue()) == written, "the bar stopped"
    # Without a bar there is nothing to stop.
    TrainingProgress(3, 120, 30, 64, every_seconds=30.0, live=False).on_train_end()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("stdout", "live", "shown"),
    [
        (_Terminal, None, True),
        (io.StringIO, None, False),
        (io.StringIO, True, True),
        (_Terminal, False, False),
    ],
)
def test_the_live_bar_is_shown_in_a_terminal_unless_told(
    monkeypatch: pytest.MonkeyPatch, stdout: type, live: bool | None, shown: bool
) -> None:
    monkeypatch.setattr(callbacks.sys, "stdout", stdout())
    assert TrainingProgress(3, 100, 30, 64, every_seconds=30.0, live=live).live is shown


@pytest.mark.parametrize("callback", [TrainingProgress, EpochBackup])
def test_no_callback_reads_from_the_device_each_step(callback: type) -> None:
    """No batch-end hook: Keras keeps dispatching steps asynchronously."""
    assert callback.on_train_batch_end is keras.callbacks.Callback.on_train_batch_end


def _epoch_log(epochs: int = 3) -> EpochLog:
    """An epoch log on a model that has only what it reads: an optimizer and a stop flag."""
    log = EpochLog(epochs)
    log.set_model(
        SimpleNamespace(optimizer=keras.optimizers.SGD(learning_rate=0.25), stop_training=False)
    )
    return log


def test_the_epoch_log_records_metrics_rate_and_wall_time(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    log = _epoch_log()
    caplog.set_level(logging.INFO)
    log.on_epoch_begin(0)
    clock.now += 2.12345
    log.on_epoch_end(0, {"loss": np.float32(0.5), "accuracy": 0.75})
    log.on_epoch_begin(1)
    clock.now += 1.0
    # A learning-rate callback puts the rate in the logs: that one is kept.
    log.on_epoch_end(1, {"loss": 0.25, "learning_rate": 0.125})
    assert log.rows == [
        {"epoch": 1, "loss": 0.5, "accuracy": 0.75, "learning_rate": 0.25, "epoch_seconds": 2.123},
        {"epoch": 2, "loss": 0.25, "learning_rate": 0.125, "epoch_seconds": 1.0},
    ]
    assert log.diverged_at is None and not log.model.stop_training
    assert caplog.messages == [
        "Epoch 1/3 - loss 0.5000 - accuracy 0.7500 - learning_rate 0.2500 - 2.1 s",
        "Epoch 2/3 - loss 0.2500 - learning_rate 0.1250 - 1.0 s",
    ], "and a fresh fit resumes nothing"


@pytest.mark.parametrize("loss", [math.nan, math.inf])
def test_the_epoch_log_stops_the_fit_after_an_epoch_without_a_finite_loss(loss: float) -> None:
    log = _epoch_log()
    for epoch, value in enumerate((0.5, loss)):
        log.on_epoch_begin(epoch)
        log.on_epoch_end(epoch, {"loss": value})
    assert log.diverged_at == 2
    assert log.model.stop_training


def test_an_epoch_that_logs_no_loss_has_not_diverged() -> None:
    log = _epoch_log()
    log.on_epoch_begin(0)
    log.on_epoch_end(0, {"accuracy": 0.5})
    assert log.diverged_at is None and not log.model.stop_training


def test_a_resumed_epoch_log_keeps_the_epochs_before_it_and_says_so_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = _epoch_log()
    # Rows saved before a kill that came before the epoch counter was written.
    log.rows = [{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.4}]
    caplog.set_level(logging.INFO)
    log.on_epoch_begin(1)
    assert log.rows == [{"epoch": 1, "loss": 0.5}]
    log.on_epoch_end(1, {"loss": 0.3})
    log.on_epoch_begin(2)
    assert [r.getMessage() for r in caplog.records if "Resuming" in r.getMessage()] == [
        "Resuming training at epoch 2 of 3"
    ]


def _tiny_model() -> keras.Model:
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    return model


def _resume_point(folder: Path, model: keras.Model, log: EpochLog) -> keras.callbacks.CallbackList:
    """The resume point as fit_callbacks places it: the history, then the weights."""
    return keras.callbacks.CallbackList(
        [HistoryBackup(folder, log), EpochBackup(folder)], model=model
    )


def test_a_resume_point_keeps_the_history_and_the_one_before(tmp_path: Path) -> None:
    """The folder's parents are made on the first save; the save before the latest stays,
    for a kill that leaves the latest weights unreadable."""
    folder = tmp_path / "resume_points" / "run"
    log, model = _epoch_log(), _tiny_model()
    point = _resume_point(folder, model, log)
    point.on_train_begin()
    for epoch in (0, 1):
        model.set_weights([np.full_like(w, epoch + 1) for w in model.get_weights()])
        log.rows.append({"epoch": epoch + 1})
        point.on_epoch_end(epoch)
    assert json.loads((folder / "history.json").read_text()) == [{"epoch": 1}, {"epoch": 2}]
    assert sorted(path.name for path in folder.iterdir()) == [
        "history.json",
        "latest.weights.h5",
        "latest.weights.h5.bkp",
        "training_metadata.json",
        "training_metadata.json.bkp",
    ]
    (folder / "latest.weights.h5").write_bytes(b"cut short")
    model, restored = _tiny_model(), _epoch_log()
    _resume_point(folder, model, restored).on_train_begin()
    assert all((w == 1).all() for w in model.get_weights()), "the weights of epoch 1"
    assert restored.rows == [{"epoch": 1}, {"epoch": 2}]


def test_a_diverged_fit_saves_no_resume_point(tmp_path: Path) -> None:
    log = _epoch_log()
    point = _resume_point(tmp_path / "run", _tiny_model(), log)
    point.on_train_begin()
    log.on_epoch_begin(0)
    log.on_epoch_end(0, {"loss": math.nan})
    point.on_epoch_end(0)
    assert not (tmp_path / "run" / "history.json").exists()
    point.on_train_end()  # the fit stops after the diverged epoch
    assert not (tmp_path / "run").exists()
