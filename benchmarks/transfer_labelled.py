"""Transfer learning on a person's own folder, made from CIFAR-10 itself: from scratch
against fine-tuned from a model of the other classes; one process.

    python benchmarks/transfer_labelled.py --part base [--epochs 4] [--cifar-root data/01_raw]
    python benchmarks/transfer_labelled.py --part compare [--seeds 0 1 2] [--out FILE.json]

``base``: the recipe's network (BatchNorm momentum 0.9, as short runs need) trained by the
training pipeline's nodes on the 8 CIFAR-10 classes other than ``--new-classes`` (their
train/validation split as data_processing makes it), saved as a ``.keras`` archive with its
card in ``--work``.

``compare``: the 2 new classes become a labelled folder in ``--work`` (``train/<class>/``:
``--per-class`` official training pictures each, saved at mixed sizes and formats, with a
few broken files; ``test/<class>/``: the official test pictures of the class, as PNG), then
``kedro run --env labelled`` on it, for each seed: from scratch, and fine-tuned from the
base model (``training.fine_tune.from``). Each run's test accuracy, fit seconds, refused
files and confusion matrix are read from its outputs; mean and std over the seeds.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from alexnet_cifar10.datasets import CIFAR10Dataset, TrainedModelDataset
from alexnet_cifar10.pipelines.training.nodes import build_model, train_model
from bench_common import ROOT, load_parameters, load_splits, short_training
from result_file import write_result

NEW_CLASSES = ("cat", "dog")


def keep_classes(split: dict[str, np.ndarray], keep: list[int]) -> dict[str, np.ndarray]:
    """The images of the ``keep`` classes, their one-hot labels over those classes alone."""
    labels = split["labels"].argmax(axis=1)
    chosen = np.isin(labels, keep)
    relabel = np.full(split["labels"].shape[1], -1)
    relabel[keep] = np.arange(len(keep))
    one_hot = np.eye(len(keep), dtype=np.float32)[relabel[labels[chosen]]]
    return {**{key: value[chosen] for key, value in split.items()}, "labels": one_hot}


def train_base(args: argparse.Namespace) -> Path:
    """The recipe's network trained on the classes other than the new ones, saved."""
    params = load_parameters("base")
    names = params["class_names"]
    keep = [index for index, name in enumerate(names) if name not in args.new_classes]
    base_names = [names[index] for index in keep]
    train, validation, _ = (keep_classes(s, keep) for s in load_splits(args.cifar_root, params))
    training = short_training(params, args.epochs, None)
    training["model"] = {**training["model"], "batch_norm_momentum": 0.9}
    model = build_model(training["model"], training["augmentation"], "float32", 42, base_names)
    trained = train_model(
        model, train, validation, training, 42, base_names,
        f"transfer base: {len(base_names)} CIFAR-10 classes", {"kedro_env": "benchmark"},
    )  # fmt: skip
    path = args.work / "base_model.keras"
    TrainedModelDataset(filepath=str(path)).save(trained)
    logging.getLogger(__name__).info("Base model saved to %s", path)
    return path


# Each training picture saved as (format, side), in turn: a person's mixed photos.
KINDS = (("JPEG", 96), ("PNG", 32), ("WEBP", 64), ("BMP", 48), ("JPEG", 128))
BROKEN = {
    "empty.jpg": b"",
    "notes.png": b"shopping list, saved with the wrong name\n",
}


def _save(image: np.ndarray, fmt: str, side: int, path: Path) -> None:
    picture = Image.fromarray(image)
    if side != picture.width:
        picture = picture.resize((side, side), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    picture.save(buffer, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    path.write_bytes(buffer.getvalue())


def write_folder(args: argparse.Namespace) -> tuple[Path, dict[str, Any]]:
    """train/<class>/: the first ``--per-class`` official training pictures of each new
    class at mixed sizes and formats, plus broken files (a JPEG cut short among them);
    test/<class>/: every official test picture of the class, as PNG."""
    data = CIFAR10Dataset(path=str(args.cifar_root)).load()
    folder = args.work / "labelled_images"
    shutil.rmtree(folder, ignore_errors=True)
    for name in args.new_classes:
        label = data["label_names"].index(name)
        train = folder / "train" / name
        train.mkdir(parents=True)
        for count, index in enumerate(
            np.flatnonzero(data["train_labels"] == label)[: args.per_class]
        ):
            fmt, side = KINDS[count % len(KINDS)]
            _save(data["train_images"][index], fmt, side, train / f"{index:05d}.{fmt.lower()}")
        for file_name, content in BROKEN.items():
            (train / file_name).write_bytes(content)
        cut = sorted(train.glob("*.jpeg"))[0].read_bytes()
        (train / "cut_short.jpeg").write_bytes(cut[: len(cut) // 3])
        test = folder / "test" / name
        test.mkdir(parents=True)
        for index in np.flatnonzero(data["test_labels"] == label):
            _save(data["test_images"][index], "PNG", 32, test / f"{index:05d}.png")
    files = sum(1 for path in folder.rglob("*") if path.is_file())
    return folder, {"files": files, "per_class_train": args.per_class, "kinds": KINDS}


def make_project(folder: Path, work: Path) -> Path:
    """A copy of the project's configuration whose labelled environment reads ``folder``."""
    project = work / "project"
    shutil.rmtree(project, ignore_errors=True)
    project.mkdir()
    shutil.copy(ROOT / "pyproject.toml", project)
    shutil.copytree(ROOT / "conf", project / "conf", ignore=shutil.ignore_patterns("local"))
    shutil.copytree(ROOT / "src", project / "src", ignore=shutil.ignore_patterns("*.egg-info"))
    (project / "conf" / "local").mkdir()
    globals_file = project / "conf" / "labelled" / "globals.yml"
    globals_file.write_text(
        globals_file.read_text().replace("data/01_raw/labelled_images", str(folder))
    )
    return project


def newest(project: Path, layer: str, name: str) -> Path:
    folder = project / "data" / "labelled" / layer / name
    return max(folder.iterdir()) / name


def kedro_run(project: Path, seed: int, extra: list[str]) -> dict[str, Any]:
    """One ``kedro run --env labelled`` and what its outputs say."""
    params = ",".join([f"seed={seed}", *extra])
    command = [sys.executable, "-m", "kedro", "run", "--env", "labelled",
               "--pipelines", "data_processing,training,evaluate", "--params", params]  # fmt: skip
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "MLFLOW_DISABLE_TELEMETRY": "true"}
    done = subprocess.run(
        command, cwd=project, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    metrics = json.loads(newest(project, "08_reporting", "test_metrics.json").read_text())
    report = json.loads(newest(project, "08_reporting", "dataset_report.json").read_text())
    model = TrainedModelDataset(filepath=str(newest(project, "06_models", "alexnet.keras"))).load()
    return {
        "seed": seed,
        "model_version": metrics["model_version"],
        "test_accuracy": metrics["accuracy"],
        "test_images": metrics["test_images"],
        "fit_seconds": model.card["run"]["fit_seconds"],
        "epochs": model.card["run"]["epochs_run"],
        "refused": [item["file"] for item in report["raw"]["refused"]],
        "splits": {name: split["images"] for name, split in report["splits"].items()},
    }


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    accuracies = [run["test_accuracy"] for run in runs]
    seconds = [run["fit_seconds"] for run in runs]
    return {
        "test_accuracy_mean": round(statistics.mean(accuracies), 4),
        "test_accuracy_std": round(statistics.stdev(accuracies), 4) if len(runs) > 1 else 0.0,
        "fit_seconds_mean": round(statistics.mean(seconds), 1),
        "runs": runs,
    }


def compare(args: argparse.Namespace) -> None:
    """From scratch against fine-tuned from the base model, ``--seeds`` each."""
    base = args.work / "base_model.keras"
    card = TrainedModelDataset(filepath=str(base)).load().card
    folder, made = write_folder(args)
    project = make_project(folder, args.work)
    arms = {
        "from_scratch": [],
        "fine_tuned": [f"training.fine_tune.from={base}"],
    }
    results: dict[str, Any] = {name: [] for name in arms}
    for seed in args.seeds:
        for name, extra in arms.items():
            results[name].append(kedro_run(project, seed, extra))
            run = results[name][-1]
            print(f"{name:13s} seed {seed}: test accuracy {run['test_accuracy']:.4f}, "
                  f"fit {run['fit_seconds']:.1f} s", flush=True)  # fmt: skip
    figures = {name: _summary(runs) for name, runs in results.items()}
    for name, summary in figures.items():
        mean, std = summary["test_accuracy_mean"], summary["test_accuracy_std"]
        print(f"{name:13s} test accuracy {mean:.4f} ± {std:.4f}, "
              f"fit {summary['fit_seconds_mean']:.1f} s")  # fmt: skip
    write_result(args.out, {
        "task": f"{' vs '.join(args.new_classes)} from a labelled folder (CIFAR-10 pictures)",
        "folder": made,
        "base_model": {
            "classes": card["class_names"],
            "epochs": card["run"]["epochs_run"],
            "train_images": card["run"]["train_images"],
            "fit_seconds": card["run"]["fit_seconds"],
            "final": card["run"]["final"],
        },
        "parameters": "conf/base + conf/labelled; fine-tuned: training.fine_tune (head, all)",
        **figures,
    })  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("base", "compare"), required=True)
    parser.add_argument("--cifar-root", default=str(ROOT / "data" / "01_raw"))
    parser.add_argument("--work", type=Path, default=ROOT / "data" / "benchmarks" / "transfer")
    parser.add_argument("--new-classes", nargs=2, default=list(NEW_CLASSES))
    parser.add_argument("--epochs", type=int, default=4, help="the base model's")
    parser.add_argument("--per-class", type=int, default=400)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "transfer_labelled_cpu.json"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args.work.mkdir(parents=True, exist_ok=True)
    if args.part == "base":
        train_base(args)
    else:
        compare(args)


if __name__ == "__main__":
    main()
