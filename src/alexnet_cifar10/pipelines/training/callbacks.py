"""Keras callbacks of the training node: epoch log lines and resumable training."""

from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path

import keras

logger = logging.getLogger(__name__)


class EpochLog(keras.callbacks.Callback):
    """Logs one line per epoch and records its wall time; stops after an epoch whose loss
    is NaN or infinite."""

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
        self.rows.append({"epoch": epoch + 1, **values, "epoch_seconds": round(seconds, 3)})
        # Checked per epoch, not per batch: reading the loss every batch would make the
        # host wait for the accelerator at every step.
        if not math.isfinite(values.get("loss", 0.0)):
            self.diverged_at = epoch + 1
            self.model.stop_training = True
        metrics = " - ".join(f"{k} {v:.4f}" for k, v in values.items())
        logger.info("Epoch %d/%d - %s - %.1f s", epoch + 1, self.epochs, metrics, seconds)


class ResumePoint(keras.callbacks.BackupAndRestore):
    """``BackupAndRestore`` that also keeps the epoch log's rows, so a resumed run's
    history lists every epoch once. Place it after ``epoch_log`` in the callbacks.

    The rows are written (atomically) before the weights and the epoch counter: a kill
    between the two leaves more rows than epochs, and ``EpochLog`` drops the extra ones.
    """

    # save_freq="epoch" never saves on a batch. Keeping the base class's no-op batch hook
    # keeps Keras' asynchronous dispatch on: any batch hook makes the host wait each step.
    on_train_batch_end = keras.callbacks.Callback.on_train_batch_end

    def __init__(self, backup_dir: Path, epoch_log: EpochLog) -> None:
        super().__init__(str(backup_dir), save_freq="epoch", double_checkpoint=True)
        self.epoch_log = epoch_log
        self.history_path = backup_dir / "history.json"

    def on_train_begin(self, logs: dict | None = None) -> None:
        super().on_train_begin(logs)
        if self.history_path.is_file():
            self.epoch_log.rows = json.loads(self.history_path.read_text())

    def _save_model(self) -> None:
        if self.epoch_log.diverged_at is not None:
            return  # never resume from NaN weights
        self.history_path.parent.mkdir(parents=True, exist_ok=True)
        staging = self.history_path.with_suffix(".json.partial")
        staging.write_text(json.dumps(self.epoch_log.rows))
        os.replace(staging, self.history_path)
        super()._save_model()
        logger.info("Resume point saved after epoch %d in %s", self._current_epoch, self.backup_dir)
