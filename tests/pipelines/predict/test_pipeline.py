"""The predict pipeline run by SequentialRunner on a small catalog."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from synthetic_cifar import CLASS_NAMES
from user_images import BAD, GOOD, write_user_images

from alexnet_cifar10.datasets import ImageFolderDataset
from alexnet_cifar10.pipelines.predict import create_pipeline
from alexnet_cifar10.provenance import LABELS, TrainedModel

CARD = {
    "run_label": "slice",
    "kedro_env": "test",
    "model_version": "v1",
    "class_names": CLASS_NAMES,
}


class _UniformModel:
    input_shape = (None, 32, 32, 3)

    def predict(self, images: np.ndarray, batch_size: int, verbose: int) -> np.ndarray:
        return np.full((len(images), len(CLASS_NAMES)), 1 / len(CLASS_NAMES), np.float32)


def test_a_folder_becomes_predictions_a_contact_sheet_and_a_summary(tmp_path: Path) -> None:
    written = {name: BAD[name] for name in ("empty.png", "cmyk.jpg")} | GOOD
    write_user_images(tmp_path, written)
    inputs = {
        "model": TrainedModel(_UniformModel(), CARD, pd.DataFrame()),
        "params:predict.batch_size": 4,
        "params:predict.test_time_augmentation": {"horizontal_flip": False, "shift": 0},
        "params:predict.resize": {"fit": "crop", "resample": "lanczos", "background": [0, 0, 0]},
        "params:predict.contact_sheet": {"columns": 4, "max_images": 100},
        "temperature": {**{key: CARD[key] for key in LABELS}, "temperature": 1.5},
        "params:predict.temperature_scaling": False,
    }
    catalog = DataCatalog(
        datasets={
            "user_images": ImageFolderDataset(path=str(tmp_path)),
            **{name: MemoryDataset(value, copy_mode="assign") for name, value in inputs.items()},
        }
    )
    for name in ("user_model_input", "user_predictions", "contact_sheet", "prediction_summary"):
        catalog[name] = MemoryDataset(copy_mode="assign")
    pipeline = create_pipeline()
    assert [node.name for node in pipeline.nodes][-1] == "summarise_predictions"
    SequentialRunner().run(pipeline, catalog)
    # The runner frees the intermediate datasets; the two reports remain.
    summary = catalog.load("prediction_summary")
    assert (summary["files"], summary["predicted"], summary["converted"]) == (8, 7, 3)
    assert summary["refused_files"] == {"empty.png": "refused: empty file (0 bytes)"}
    assert summary["model_version"] == "v1"
    sheet = catalog.load("contact_sheet").get_axes()
    assert [axis.get_title().split("\n")[0] for axis in sheet] == sorted(written)
