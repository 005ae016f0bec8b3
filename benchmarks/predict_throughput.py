"""Predict throughput: the full predict path against the bare network, same pictures, one process.

    python benchmarks/predict_throughput.py [--images 1000] [--folder DIR] [--batch-size 256]

Writes ``--images`` pictures of mixed sizes, formats and modes (seeded; see ``MIX``) to a
folder, then times, on the recipe's network (``conf/base``; untrained weights cost the
same as trained ones):

* full: what ``kedro run --pipelines predict`` does between loading the model and saving
  its outputs: ``ImageFolderDataset`` lists the folder, ``prepare_images`` reads, decodes,
  converts and resizes every file, ``predict_images`` runs the network and builds the table;
* bare: ``model.predict`` on the very (N, 32, 32, 3) uint8 array the full path fed it.

The decoder settings are the ``user_images`` entry of conf/base/catalog.yml. Each path is
timed ``--rounds`` times after a warm-up prediction (Keras traces its predict function on
the first call); the fastest round counts. Peak resident memory (RSS) is sampled every
5 ms. Last, the full path once more with every JPEG pixel decoded (no ``draft_size``): its
time, and how far its 32x32 inputs are from the drafted ones.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pandas as pd
from kedro.config import OmegaConfigLoader
from PIL import Image

from alexnet_cifar10.datasets import ImageFolderDataset, UserImageDataset
from alexnet_cifar10.pipelines.predict.nodes import predict_images, prepare_images
from alexnet_cifar10.pipelines.training.nodes import build_model
from alexnet_cifar10.provenance import TrainedModel
from alexnet_cifar10.settings import CONFIG_LOADER_ARGS
from bench_common import ROOT, load_parameters
from result_file import write_result

# Share of the pictures, (width, height), format, mode: CIFAR-sized files, web pictures,
# screenshots with transparency, HD frames and 12-megapixel phone photos.
MIX = [
    (0.30, (32, 32), "PNG", "RGB"),
    (0.30, (640, 480), "JPEG", "RGB"),
    (0.10, (800, 600), "PNG", "RGBA"),
    (0.10, (1024, 768), "WEBP", "RGB"),
    (0.15, (1920, 1080), "JPEG", "RGB"),
    (0.05, (4032, 3024), "JPEG", "RGB"),
]
SUFFIX = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp"}
MIB = 2**20


def write_pictures(folder: Path, count: int, seed: int) -> dict[str, int]:
    """``count`` smooth pictures (they compress like photos, unlike noise) per ``MIX``."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    made: dict[str, int] = {}
    index = 0
    for share, size, fmt, mode in MIX:
        label = f"{size[0]}x{size[1]} {fmt} {mode}"
        for _ in range(round(share * count)):
            small = rng.integers(0, 256, (6, 6, len(mode)), dtype=np.uint8)
            picture = Image.fromarray(small, mode).resize(size, Image.Resampling.BICUBIC)
            picture.save(folder / f"{index:05d}{SUFFIX[fmt]}", format=fmt)
            made[label] = made.get(label, 0) + 1
            index += 1
    return made


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRss:
    """The largest resident set size seen every 5 ms while the block runs."""

    def __init__(self) -> None:
        self.peak = 0
        self._running = False
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while self._running:
            self.peak = max(self.peak, _rss())
            time.sleep(0.005)

    def __enter__(self) -> PeakRss:
        self.peak, self._running = _rss(), True
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._running = False
        self._thread.join()
        self.peak = max(self.peak, _rss())


def timed(function: Callable[[], Any]) -> tuple[Any, float, int]:
    """Result, wall seconds and peak RSS of ``function()``."""
    with PeakRss() as rss:
        start = time.perf_counter()
        result = function()
        seconds = time.perf_counter() - start
    return result, seconds, rss.peak


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()}, {os.cpu_count()} cores"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def user_images_entry() -> dict[str, Any]:
    """The ``user_images`` entry of conf/base/catalog.yml: the decoder limits a run uses."""
    loader = OmegaConfigLoader(conf_source=str(ROOT / "conf"), env=None, **CONFIG_LOADER_ARGS)
    return loader["catalog"]["user_images"]


def full_path(
    folder: Path, load_args: dict[str, Any], model: Any, params: dict[str, Any], batch: int
) -> tuple[dict[str, np.ndarray], float, float]:
    """The predict pipeline's nodes on the folder: prepared inputs, seconds of prepare_images
    (with the folder listing) and of predict_images."""
    card = {"run_label": "benchmark", "kedro_env": "base", "model_version": "benchmark"}
    trained = TrainedModel(model, {**card, "class_names": params["class_names"]}, pd.DataFrame())
    start = time.perf_counter()
    folder_dataset = ImageFolderDataset(
        path=str(folder), dataset={"type": UserImageDataset, "load_args": load_args}
    )
    prepared = prepare_images(folder_dataset.load(), params["predict"]["resize"])
    middle = time.perf_counter()
    predict = params["predict"]
    # The temperature's content is read only with scaling on.
    tta, scaling = predict["test_time_augmentation"], predict["temperature_scaling"]
    predict_images(trained, prepared, batch, tta, {}, scaling)
    return prepared, middle - start, time.perf_counter() - middle


def best_of(rounds: int, function: Callable[[], Any]) -> tuple[Any, float, int]:
    """``timed(function)`` ``rounds`` times: the result and time of the fastest round (on
    a shared CPU, the least disturbed one) and the highest peak RSS of all."""
    runs = [timed(function) for _ in range(rounds)]
    result, seconds, _ = min(runs, key=lambda run: run[1])
    return result, seconds, max(run[2] for run in runs)


def _row(name: str, seconds: float, count: int, peak: int | None = None) -> str:
    rss = f"{peak / MIB:13.0f}" if peak is not None else ""
    return f"{name:46s} {seconds:8.2f} {count / seconds:9.1f} {rss}"


def main() -> None:
    """Write the pictures, time both paths, print images/s, peak RSS and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--folder", type=Path, default=None, help="reuse or keep the pictures")
    parser.add_argument("--batch-size", type=int, default=None, help="default: predict's")
    parser.add_argument("--rounds", type=int, default=3, help="best of this many runs each")
    parser.add_argument("--out", type=Path, help="also write the figures here as JSON")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    params = load_parameters("base")
    batch = args.batch_size or params["predict"]["batch_size"]
    folder = args.folder or Path(tempfile.mkdtemp(prefix="predict_throughput_"))
    if not any(folder.glob("*")):
        start = time.perf_counter()
        made = write_pictures(folder, args.images, params["seed"])
        print(f"Wrote {sum(made.values())} pictures in {time.perf_counter() - start:.0f} s:")
        for label, count in made.items():
            print(f"  {count:4d} x {label}")
    load_args = user_images_entry()["dataset"].get("load_args", {})
    training = params["training"]
    model = build_model(
        training["model"],
        training["augmentation"],
        "float32",
        params["seed"],
        params["class_names"],
    )
    model.predict(np.zeros((batch, 32, 32, 3), np.uint8), batch_size=batch, verbose=0)
    device = keras.distribution.list_devices()[0]
    print(f"Keras {keras.__version__}, {keras.backend.backend()} backend on {device}; {_cpu()}")
    print(f"batch {batch}; resize {params['predict']['resize']}; decoder {load_args}")
    before = _rss()

    (prepared, prepare_s, predict_s), full_s, full_peak = best_of(
        args.rounds, lambda: full_path(folder, load_args, model, params, batch)
    )
    images, count = prepared["images"], len(prepared["file_name"])
    _, bare_s, bare_peak = best_of(
        args.rounds, lambda: model.predict(images, batch_size=batch, verbose=0)
    )
    every_pixel = {**load_args, "draft_size": None}
    (full_decode, *_), full_decode_s, _ = best_of(
        1, lambda: full_path(folder, every_pixel, model, params, batch)
    )
    difference = np.abs(full_decode["images"].astype(int) - images.astype(int))

    accepted = int(prepared["accepted"].sum())
    print(f"\n{count} pictures, {accepted} predicted; RSS before {before / MIB:.0f} MiB")
    print(f"best of {args.rounds} rounds")
    print(f"{'path':46s} {'seconds':>8s} {'images/s':>9s} {'peak RSS MiB':>13s}")
    print(_row("bare model.predict on the 32x32 uint8 array", bare_s, count, bare_peak))
    print(_row("full predict path", full_s, count, full_peak))
    print(_row("  of which list, read, decode, convert, resize", prepare_s, count))
    print(_row("  of which predict_images (network, table)", predict_s, count))
    print(f"ratio full / bare (images/s): {bare_s / full_s:.3f}")
    print(
        f"\nwithout draft_size (every JPEG pixel decoded): full path {full_decode_s:.2f} s, "
        f"{count / full_decode_s:.1f} images/s; its 32x32 inputs differ from the drafted ones "
        f"by at most {difference.max()} levels of 255 (mean {difference.mean():.3f})"
    )
    if args.out:
        write_result(
            args.out,
            {
                "keras": keras.__version__,
                "backend": keras.backend.backend(),
                "pictures": count,
                "predicted": accepted,
                "batch_size": batch,
                "rounds": args.rounds,
                "bare_images_per_s": count / bare_s,
                "full_images_per_s": count / full_s,
                "full_over_bare": bare_s / full_s,
                "prepare_seconds": prepare_s,
                "predict_seconds": predict_s,
                "bare_peak_rss_mib": bare_peak / MIB,
                "full_peak_rss_mib": full_peak / MIB,
                "without_draft_images_per_s": count / full_decode_s,
                "without_draft_max_level_difference": int(difference.max()),
            },
        )


if __name__ == "__main__":
    main()
