"""Keras callbacks of the training node: progress, epoch log lines, resumable training."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

logger = logging.getLogger(__name__)


class EpochLog(keras.callbacks.Callback):
    """Logs one line per epoch and records its metrics, learning rate and wall time; stops
    after an epoch whose loss is NaN or infinite."""

    def __init__(self, epochs: int) -> None:
        super().__init__()
        self.epochs = epochs
        self.rows: list[dict[str, float]] = []
        self.diverged_at: int | None = None
        self._start = 0.0
        self._first_epoch = True

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        # After a resume, Keras restarts at the restored epoch: drop any later rows.
        self.rows = self.rows[:epoch]
        if self._first_epoch and epoch > 0:
            logger.info("Resuming training at epoch %d of %d", epoch + 1, self.epochs)
        self._first_epoch = False
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        seconds = time.perf_counter() - self._start
        values = {k: float(v) for k, v in (logs or {}).items()}
        # The rate of the epoch's last step (a schedule moves it every step); Keras puts it
        # in the logs only when a learning-rate callback runs.
        rate = self.model.optimizer.learning_rate
        values.setdefault("learning_rate", float(keras.ops.convert_to_numpy(rate)))
        self.rows.append({"epoch": epoch + 1, **values, "epoch_seconds": round(seconds, 3)})
        # Checked per epoch, not per batch: reading the loss every batch would make the
        # host wait for the accelerator at every step.
        if not math.isfinite(values.get("loss", 0.0)):
            self.diverged_at = epoch + 1
            self.model.stop_training = True
        metrics = " - ".join(f"{k} {v:.4f}" for k, v in values.items())
        logger.info("Epoch %d/%d - %s - %.1f s", epoch + 1, self.epochs, metrics, seconds)


def duration(seconds: float) -> str:
    """``3 h 05 min``, ``4 min 10 s`` or ``12 s``."""
    seconds = round(seconds)
    if seconds >= 3600:  # noqa: PLR2004
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    if seconds >= 60:  # noqa: PLR2004
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds} s"


class TrainingProgress(keras.callbacks.Callback):
    """Progress of a long fit: a log line every ``every_seconds`` (step, images/s, time
    left in the epoch and in the run) whatever the output is, a live bar in a terminal,
    and once, early, the estimated time of the whole run, measured on its first steps.

    Steps are counted in ``on_train_batch_begin``, which reads nothing from the device:
    with a batch-end hook, Keras would copy every step's metrics to the host (in a
    worker thread) for it. Where the backend dispatches steps asynchronously, a step is
    timed when it is queued; the epochs' wall times correct the later estimates.
    """

    # Steps timed (after the first, which includes compilation) before the estimate.
    ESTIMATE_STEPS = 10
    # A validation batch costs about a third of a training step (forward pass only).
    VALIDATION_STEP_SHARE = 1 / 3
    # A run estimated longer than this is pointed at the smoke run (about 3 minutes on a
    # 2-core CPU); a shorter one would only be told what it already is.
    SMOKE_HINT_SECONDS = 15 * 60

    def __init__(  # noqa: PLR0913
        self,
        epochs: int,
        steps_per_epoch: int,
        validation_steps: int,
        batch_size: int,
        every_seconds: float,
        live: bool | None = None,
    ) -> None:
        super().__init__()
        self.epochs = epochs
        self.steps_per_epoch = steps_per_epoch
        self.validation_steps = validation_steps
        self.batch_size = batch_size
        self.every_seconds = every_seconds
        self.live = sys.stdout.isatty() if live is None else live
        self.estimate: float | None = None
        self._epoch = 0
        self._epoch_start = 0.0
        self._epoch_seconds: list[float] = []
        self._step_ends: list[float] = []
        self._last_line = (0.0, 0)
        self._bar: Progress | None = None

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch = epoch
        self._epoch_start = time.perf_counter()
        self._last_line = (self._epoch_start, 0)
        if self.live:
            self._bar = Progress(
                TextColumn(f"Epoch {epoch + 1}/{self.epochs}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("steps, time left"),
                TimeRemainingColumn(),
                transient=True,
            )
            self._bar.add_task("fit", total=self.steps_per_epoch)
            self._bar.start()

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        # Batch `batch` starts, so `batch` steps are done (or, asynchronously, queued).
        now = time.perf_counter()
        if batch == 0:
            return
        if self._bar is not None:
            self._bar.update(self._bar.task_ids[0], completed=batch)
        if self.estimate is None:
            self._step_ends.append(now)
            if len(self._step_ends) > self.ESTIMATE_STEPS:
                self._log_estimate()
        last_time, last_step = self._last_line
        if now - last_time >= self.every_seconds:
            self._log_progress(batch, (batch - last_step) / (now - last_time))
            self._last_line = (now, batch)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        self._epoch_seconds.append(time.perf_counter() - self._epoch_start)
        if self.estimate is None:
            self._log_estimate()

    def on_train_end(self, logs: dict | None = None) -> None:
        if self._bar is not None:
            self._bar.stop()

    def _log_estimate(self) -> None:
        """Estimate the whole run from the steps timed so far in its first epoch, or from
        that epoch's wall time if it had too few steps to time."""
        epochs = self.epochs - self._epoch
        ends = self._step_ends
        if len(ends) < 2:  # noqa: PLR2004
            self.estimate = self._epoch_seconds[-1] * epochs
            how = f"the first epoch took {self._epoch_seconds[-1]:.1f} s"
        else:
            step = (ends[-1] - ends[0]) / (len(ends) - 1)
            first_step = ends[0] - self._epoch_start
            per_epoch = step * (
                self.steps_per_epoch + self.validation_steps * self.VALIDATION_STEP_SHARE
            )
            self.estimate = first_step - step + per_epoch * epochs
            how = (
                f"{step:.3f} s a step over steps 2-{len(ends)}, validation counted at a "
                f"third of a step a batch; the first step, with compilation, took "
                f"{first_step:.1f} s"
            )
        hint = (
            "; for a smoke run of the same pipeline in minutes: make quick (kedro run --env quick)"
            if self.estimate > self.SMOKE_HINT_SECONDS
            else ""
        )
        logger.info(
            "Estimated training time: %s for %d epoch%s of %d steps (%s)%s",
            duration(self.estimate),
            epochs,
            "" if epochs == 1 else "s",
            self.steps_per_epoch,
            how,
            hint,
        )

    def _log_progress(self, step: int, steps_per_second: float) -> None:
        left_in_epoch = (self.steps_per_epoch - step) / steps_per_second
        if self._epoch_seconds:
            epoch_seconds = sum(self._epoch_seconds) / len(self._epoch_seconds)
        else:
            epoch_seconds = (
                self.steps_per_epoch + self.validation_steps * self.VALIDATION_STEP_SHARE
            ) / steps_per_second
        left_in_run = left_in_epoch + epoch_seconds * (self.epochs - self._epoch - 1)
        logger.info(
            "Epoch %d/%d: step %d/%d, %.0f images/s; about %s left in the epoch, %s in the run",
            self._epoch + 1,
            self.epochs,
            step,
            self.steps_per_epoch,
            steps_per_second * self.batch_size,
            duration(left_in_epoch),
            duration(left_in_run),
        )


class HistoryBackup(keras.callbacks.Callback):
    """Keeps the epoch log's rows beside the weights that Keras' ``BackupAndRestore``
    saves, so a resumed run's history lists every epoch once. Place it after ``epoch_log``
    and before ``BackupAndRestore`` in the callbacks: an epoch's rows are written
    (atomically) before its weights and epoch counter, and a kill between the two leaves
    more rows than epochs, which ``EpochLog`` drops."""

    def __init__(self, backup_dir: Path, epoch_log: EpochLog) -> None:
        super().__init__()
        self.epoch_log = epoch_log
        self.path = backup_dir / "history.json"

    def on_train_begin(self, logs: dict | None = None) -> None:
        if self.path.is_file():
            self.epoch_log.rows = json.loads(self.path.read_text())

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.epoch_log.diverged_at is not None:
            return  # BackupAndRestore removes its folder when the stopped fit ends
        self.path.parent.mkdir(parents=True, exist_ok=True)
        staging = self.path.with_suffix(".json.partial")
        staging.write_text(json.dumps(self.epoch_log.rows))
        os.replace(staging, self.path)
        logger.info("Saving the resume point after epoch %d in %s", epoch + 1, self.path.parent)


class EpochBackup(keras.callbacks.BackupAndRestore):
    """``BackupAndRestore`` that saves after every epoch, after ``HistoryBackup``.

    ``save_freq="epoch"`` never saves on a batch; putting back the base class's no-op
    batch hook keeps Keras' asynchronous dispatch on: any batch hook makes the host wait
    for every step."""

    on_train_batch_end = keras.callbacks.Callback.on_train_batch_end

    def __init__(self, backup_dir: Path) -> None:
        super().__init__(str(backup_dir), save_freq="epoch", double_checkpoint=True)


def resume_dir(params: dict[str, Any], seed: int, train: dict[str, np.ndarray]) -> Path:
    """One resume folder per (parameters, seed, training data): never resume another run.
    The same fit on other devices is the same run (and keeps its earlier resume folders)."""
    ignored = ("progress_seconds", "distribution")
    fitted = {key: value for key, value in params.items() if key not in ignored}
    digest = hashlib.sha256(json.dumps([fitted, seed], sort_keys=True, default=str).encode())
    digest.update(train["labels"].tobytes())
    digest.update(train["images"][:: max(len(train["images"]) // 64, 1)].tobytes())
    return Path(params["resume"]["backup_dir"]) / digest.hexdigest()[:16]


def fit_callbacks(
    params: dict[str, Any], seed: int, train: dict, validation: dict
) -> tuple[EpochLog, list[keras.callbacks.Callback]]:
    """The fit's callbacks (EMA swap, progress, epoch log, resume point) and its epoch log."""
    batch = params["batch_size"]
    epoch_log = EpochLog(params["epochs"])
    progress = TrainingProgress(
        epochs=params["epochs"],
        steps_per_epoch=math.ceil(len(train["images"]) / batch),
        validation_steps=math.ceil(len(validation["images"]) / batch),
        batch_size=batch,
        every_seconds=params["progress_seconds"],
    )
    # Validation with the averaged weights (fit ends by copying them into the model).
    averaged = [keras.callbacks.SwapEMAWeights()] if params["optimizer"]["ema"]["enabled"] else []
    callbacks = [*averaged, progress, epoch_log]
    if params["resume"]["enabled"]:
        folder = resume_dir(params, seed, train)
        callbacks += [HistoryBackup(folder, epoch_log), EpochBackup(folder)]
    return epoch_log, callbacks
