"""An Optuna study of the tune pipeline on the real data, with and without pruning, and what
a trial costs over a bare Keras fit of the same size; one process.

    python benchmarks/tune_study.py [--trials 20] [--fraction 0.1] [--epochs 3]
        [--overhead-rounds 2] [--parts overhead pruning no_pruning] [--cifar-root data/01_raw]
        [--out FILE.json]

The splits are the data_processing pipeline's (base parameters), then the tune pipeline's
stratified ``--fraction`` of train and validation (``take_fraction``). Both studies run the
pipeline's own node (``run_study``: the project's training nodes, the pruning callback, one
nested MLflow run per trial under a parent run, as ``kedro run --pipelines tune`` does) with
conf/base/parameters_tune.yml's search space and sampler seeded alike, each on a fresh
SQLite storage: one with its pruner (median), one with ``pruner.name: none``.

Overhead: ``--overhead-rounds`` rounds of, in turn, (a) a bare fit: the network built by
``model.build_alexnet``, compiled by ``model.compile_model`` and ``fit`` with no callbacks,
and (b) one trial of a study whose search space holds the base training parameters only
(the same network, data, batch and epochs), which goes first alternating. Ratio = median
trial seconds (the objective's own wall time, Optuna's ``duration``) / median bare-fit
seconds, and the same of the fastest of each.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import keras
import mlflow
import numpy as np

from alexnet_cifar10 import model as network
from alexnet_cifar10.pipelines.data_processing.nodes import take_fraction
from alexnet_cifar10.pipelines.tune.nodes import run_study, trials_table
from alexnet_cifar10.pipelines.tune.study import describe
from bench_common import ROOT, load_parameters, load_splits
from result_file import write_result

Split = dict[str, np.ndarray]
PARTS = ("overhead", "pruning", "no_pruning")


def bare_fit(train: Split, validation: Split, training: dict[str, Any], seed: int) -> float:
    """Seconds of build + compile + fit of the network with Keras alone."""
    keras.utils.set_random_seed(seed)
    start = time.perf_counter()
    model = network.build_alexnet(training["model"], train["labels"].shape[1], seed=seed)
    steps = -(-len(train["images"]) // training["batch_size"])
    network.compile_model(model, training, steps)
    model.fit(
        train["images"],
        train["labels"],
        validation_data=(validation["images"], validation["labels"]),
        epochs=training["epochs"],
        batch_size=training["batch_size"],
        verbose=0,
    )
    return time.perf_counter() - start


def study(  # noqa: PLR0913
    splits: tuple[Split, Split],
    params: dict[str, Any],
    tune: dict[str, Any],
    folder: Path,
    name: str,
) -> tuple[Any, float]:
    """Run the tune pipeline's node on a fresh storage under an MLflow parent run."""
    tune = {**tune, "storage": f"sqlite:///{folder}/{name}.db", "study_name": name}
    start = time.perf_counter()
    with mlflow.start_run(run_name=name):
        result = run_study(
            *splits,
            params["training"],
            tune,
            params["seed"],
            params["class_names"],
            f"benchmark: {name}",
            {"kedro_env": "benchmark"},
        )
    return result, time.perf_counter() - start


def summary(result: Any, seconds: float) -> dict[str, Any]:
    """Counts, best validation accuracy, wall time and trials per hour of one study."""
    table = trials_table(result)
    counts = table["state"].value_counts().to_dict()
    complete = table[table["state"] == "complete"]
    return {
        "trials": len(table),
        "complete": int(counts.get("complete", 0)),
        "pruned": int(counts.get("pruned", 0)),
        "failed": int(counts.get("fail", 0)),
        "best_val_accuracy": round(float(complete["val_accuracy"].max()), 4),
        "best_params": result.best_trial.params,
        "seconds": round(seconds, 1),
        "trials_per_hour": round(3600 * len(table) / seconds, 1),
        "table": table[["number", "state", "val_accuracy", "epochs_run"]].to_dict("records"),
    }


def overhead(
    splits: tuple[Split, Split],
    params: dict[str, Any],
    tune: dict[str, Any],
    rounds: int,
    folder: Path,
) -> dict[str, Any]:
    """A trial's seconds against a bare fit's, the same network, data and epochs."""
    training = {**params["training"], "epochs": tune["epochs"]}
    rate = training["optimizer"]["learning_rate"]
    single = {
        **tune,
        "n_trials": 1,
        "pruner": {**tune["pruner"], "name": "none"},
        "search_space": {"optimizer.learning_rate": {"choices": [rate]}},
    }
    # Untimed: the process's first fit also pays for starting the backend.
    bare_fit(*splits, {**training, "epochs": 1}, params["seed"])
    bare, trial = [], []
    for index in range(rounds):
        # Alternating which goes first: a machine's speed drifts over minutes.
        for arm in ("bare", "trial") if index % 2 == 0 else ("trial", "bare"):
            keras.backend.clear_session()
            if arm == "bare":
                bare.append(bare_fit(*splits, training, params["seed"]))
            else:
                result, _ = study(splits, params, single, folder, f"overhead_{index}")
                trial.append(result.trials[0].duration.total_seconds())
        print(f"round {index + 1}: bare fit {bare[-1]:.1f} s, trial {trial[-1]:.1f} s", flush=True)
    return {
        "bare_fit_seconds": [round(s, 1) for s in bare],
        "trial_seconds": [round(s, 1) for s in trial],
        "ratio": round(statistics.median(trial) / statistics.median(bare), 3),
        # The least disturbed of each, on a machine that other jobs share.
        "ratio_fastest": round(min(trial) / min(bare), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--fraction", type=float, default=0.1)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--overhead-rounds", type=int, default=2)
    parser.add_argument("--cifar-root", default=str(ROOT / "data" / "01_raw"))
    parser.add_argument(
        "--parts", nargs="+", choices=PARTS, default=list(PARTS), help="what to measure"
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    params = load_parameters("base")
    train, validation, _ = load_splits(args.cifar_root, params)
    seed = params["seed"]
    splits = (
        take_fraction(train, args.fraction, seed),
        take_fraction(validation, args.fraction, seed),
    )
    tune = {**params["tune"], "n_trials": args.trials, "epochs": args.epochs}
    tune["sampler"] = {**tune["sampler"], "seed": seed}
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        mlflow.set_tracking_uri(f"sqlite:///{folder}/mlflow.db")
        mlflow.set_experiment("tune_study")
        figures: dict[str, Any] = {}
        if "overhead" in args.parts:
            figures["overhead"] = overhead(splits, params, tune, args.overhead_rounds, folder)
            print(f"trial / bare fit: {figures['overhead']['ratio']}", flush=True)
        arms = {"pruning": tune["pruner"]["name"], "no_pruning": "none"}
        for name in (part for part in args.parts if part in arms):
            arm = {**tune, "pruner": {**tune["pruner"], "name": arms[name]}}
            result, seconds = study(splits, params, arm, folder, name)
            figures[name] = {"pruner": arms[name], **summary(result, seconds)}
            print(f"{name}: {describe(result)}; {seconds:.0f} s", flush=True)
    figures["setup"] = {
        "train_images": len(splits[0]["images"]),
        "validation_images": len(splits[1]["images"]),
        "epochs": args.epochs,
        "backend": keras.backend.backend(),
        "keras": keras.__version__,
    }
    if {"pruning", "no_pruning"} <= figures.keys():
        ratio = figures["no_pruning"]["seconds"] / figures["pruning"]["seconds"]
        figures["pruning_speedup"] = round(ratio, 2)
        print(f"pruning: {ratio:.2f}x the trials per hour of the study without pruning")
    if args.out:
        write_result(args.out, figures)


if __name__ == "__main__":
    sys.exit(main())
