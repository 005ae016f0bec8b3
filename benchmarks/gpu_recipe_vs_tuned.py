"""The published recipe against the tuned configuration, end to end, timed to a test accuracy.

    KERAS_BACKEND=jax python benchmarks/gpu_recipe_vs_tuned.py     # on the GPU machine
    bash benchmarks/gpu_recipe_vs_tuned.sh                           # all GPU benchmarks

For each run in ``BENCH_RUNS`` (default ``base tuned``; ``ENV@EPOCHS`` overrides the
epochs, e.g. ``tuned@15``) it loads the project's parameters for that config environment
exactly as Kedro merges them, splits CIFAR-10 with the data_processing nodes, and trains
with the project's ``train_model`` node. A benchmark-only callback evaluates the test set
after every epoch (the pipeline itself never looks at the test set) and keeps the clock
of training without those evaluations. It prints, per run: fit seconds, the first step's
seconds (compilation + one step), final test accuracy, and seconds of training until test
accuracy first reached ``BENCH_TARGET`` (0.7387), both from the start of ``fit`` and
after the first step; and writes it all, per epoch too, to ``$OUT/gpu_recipe_vs_tuned.json``.

Environment: ``CIFAR_ROOT`` (folder holding ``cifar-10-batches-py``), ``OUT`` (default
``benchmarks/out``), ``BENCH_RUNS``, ``BENCH_TARGET``, and for smoke runs on a CPU
``BENCH_MAX_TRAIN`` / ``BENCH_MAX_VALIDATION`` / ``BENCH_MAX_TEST`` (image caps) and
``BENCH_EPOCHS`` (epochs of every run).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras

from bench_common import ROOT, Split, load_parameters, load_splits, train_with_nodes

TARGET = float(os.environ.get("BENCH_TARGET", "0.7387"))


class TestAccuracyClock(keras.callbacks.Callback):
    """Test accuracy after each epoch, against seconds of training with the evaluations
    themselves taken out. Only ``*_begin`` batch hooks, so Keras' async dispatch is kept."""

    def __init__(self, test: Split, batch_size: int) -> None:
        super().__init__()
        self.test = test
        self.batch_size = batch_size
        self.rows: list[dict[str, float]] = []
        self.first_step_seconds: float | None = None
        self._start = 0.0
        self._excluded = 0.0
        self._first_batch_at: float | None = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._start = time.perf_counter()

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        if self.first_step_seconds is not None or self.rows:
            return
        now = time.perf_counter()
        if self._first_batch_at is None:
            self._first_batch_at = now
        else:
            # Batch 0 was traced, compiled and run (or dispatched) in between.
            self.first_step_seconds = now - self._first_batch_at

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        # Logs are Python floats by now: the epoch's last step and validation are done.
        trained = time.perf_counter() - self._start - self._excluded
        begin = time.perf_counter()
        result = self.model.evaluate(
            self.test["images"],
            self.test["labels"],
            batch_size=self.batch_size,
            verbose=0,
            return_dict=True,
        )
        self._excluded += time.perf_counter() - begin
        self.rows.append(
            {
                "epoch": epoch + 1,
                "train_seconds": round(trained, 3),
                "test_accuracy": float(result["accuracy"]),
                "test_loss": float(result["loss"]),
                "val_accuracy": float((logs or {}).get("val_accuracy", float("nan"))),
                "train_accuracy": float((logs or {}).get("accuracy", float("nan"))),
            }
        )
        print(
            f"  epoch {epoch + 1:3d}: {trained:7.2f} s trained, test accuracy "
            f"{result['accuracy']:.4f}, validation {self.rows[-1]['val_accuracy']:.4f}",
            flush=True,
        )

    @property
    def excluded_seconds(self) -> float:
        """Seconds spent in this callback's test evaluations."""
        return self._excluded


def _train(
    splits: tuple[Split, Split, Split], training: dict, seed: int, label: str
) -> tuple[keras.Model, dict, TestAccuracyClock]:
    train, validation, test = splits
    clock = TestAccuracyClock(test, batch_size=max(training["batch_size"], 500))
    trained = train_with_nodes(train, validation, training, seed, label, [clock])
    return trained.network, trained.card["run"], clock


def _int_env(name: str) -> int | None:
    value = os.environ.get(name)
    return int(value) if value else None


def run_one(spec: str, cifar_root: str) -> dict[str, Any]:
    """Train one configuration (``ENV`` or ``ENV@EPOCHS``) and summarise it."""
    env, _, epochs = spec.partition("@")
    params = load_parameters(env)
    training = dict(params["training"])
    epochs_override = int(epochs) if epochs else _int_env("BENCH_EPOCHS")
    if epochs_override:
        training["epochs"] = epochs_override
        schedule = training["lr_schedule"]
        warmup = min(schedule.get("warmup_epochs", 0), epochs_override - 1)
        training["lr_schedule"] = {**schedule, "warmup_epochs": warmup}
    limits = (
        _int_env("BENCH_MAX_TRAIN"),
        _int_env("BENCH_MAX_VALIDATION"),
        _int_env("BENCH_MAX_TEST"),
    )
    splits = load_splits(cifar_root, params, limits)
    print(
        f"\n== {spec}: {len(splits[0]['images'])} train / {len(splits[1]['images'])} "
        f"validation / {len(splits[2]['images'])} test images, {training['epochs']} epochs of "
        f"batch {training['batch_size']}, {training['precision']}",
        flush=True,
    )
    keras.backend.clear_session()
    _, facts, clock = _train(splits, training, params["seed"], f"benchmark: {spec}")
    reached = next((r for r in clock.rows if r["test_accuracy"] >= TARGET), None)
    first = clock.first_step_seconds  # None when the first epoch had a single step
    return {
        "run": spec,
        "env": env,
        "epochs": len(clock.rows),
        "batch_size": training["batch_size"],
        "precision": training["precision"],
        "train_images": len(splits[0]["images"]),
        "test_images": len(splits[2]["images"]),
        "fit_seconds": round(facts["fit_seconds"] - clock.excluded_seconds, 3),
        "fit_seconds_with_test_evaluations": facts["fit_seconds"],
        "first_step_seconds": None if first is None else round(first, 3),
        "test_accuracy": clock.rows[-1]["test_accuracy"] if clock.rows else None,
        "best_test_accuracy": max((r["test_accuracy"] for r in clock.rows), default=None),
        "target": TARGET,
        "epoch_at_target": reached["epoch"] if reached else None,
        "seconds_to_target": reached["train_seconds"] if reached else None,
        "seconds_to_target_after_first_step": (
            round(reached["train_seconds"] - first, 3) if reached and first is not None else None
        ),
        "per_epoch": clock.rows,
        "facts": {k: v for k, v in facts.items() if k != "parameters"},
        "parameters": training,
    }


def _fmt(value: Any, spec: str) -> str:
    """``format(value, spec)``, or a dash as wide as ``spec`` asks when there is no value."""
    if value is None:
        return "-".rjust(int(spec.split(".", maxsplit=1)[0].rstrip("df") or 0))
    return format(value, spec)


def main() -> None:
    """Run every configuration, print the table, write the JSON."""
    # Settings come from the environment (see the module docstring); --help shows it.
    argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    ).parse_args()
    logging.basicConfig(level=logging.WARNING)
    default_root = ROOT.parent / "shared" / "data"
    cifar_root = os.environ.get(
        "CIFAR_ROOT", str(default_root if default_root.is_dir() else "/tmp/cifar10")
    )
    out = Path(os.environ.get("OUT") or ROOT / "benchmarks" / "out")
    out.mkdir(parents=True, exist_ok=True)
    devices = keras.distribution.list_devices()
    print(f"Keras {keras.__version__} on {keras.backend.backend()}, devices {devices}")
    path = out / "gpu_recipe_vs_tuned.json"
    results: list[dict[str, Any]] = []
    for spec in os.environ.get("BENCH_RUNS", "base tuned").split():
        results.append(run_one(spec, cifar_root))
        # Written after every run, so a run cut short by a time limit keeps the earlier ones.
        summary = {
            "keras": keras.__version__,
            "backend": keras.backend.backend(),
            "devices": devices,
            "runs": results,
        }
        path.write_text(json.dumps(summary, indent=2, default=str))
    print(f"\nWrote {path}\n")
    head = (
        f"{'run':12s} {'epochs':>6s} {'batch':>5s} {'fit s':>7s} {'1st step s':>10s} "
        f"{'test acc':>8s} {f's to {TARGET}':>11s} {'(after 1st step)':>16s} {'epoch':>5s}"
    )
    print(head)
    for r in results:
        print(
            f"{r['run']:12s} {r['epochs']:6d} {r['batch_size']:5d} {r['fit_seconds']:7.1f} "
            f"{_fmt(r['first_step_seconds'], '10.1f')} {_fmt(r['test_accuracy'], '8.4f')} "
            f"{_fmt(r['seconds_to_target'], '11.1f')} "
            f"{_fmt(r['seconds_to_target_after_first_step'], '16.1f')} "
            f"{_fmt(r['epoch_at_target'], '5d')}"
        )
    print(
        "fit s: training with the node, the benchmark's own test evaluations taken out; "
        "1st step: compilation + one step."
    )


if __name__ == "__main__":
    main()
