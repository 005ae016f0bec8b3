"""The data_processing pipeline run by SequentialRunner on a small catalog."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from synthetic_cifar import (
    BATCH_FILES,
    CLASS_NAMES,
    batch_payload,
    nhwc,
    release_files,
    write_folder,
)

from alexnet_cifar10.datasets import CIFAR10Dataset, JSONDataset, NpzDataset
from alexnet_cifar10.pipelines.data_processing import create_pipeline


def test_pipeline_turns_a_release_into_model_inputs(tmp_path: Path) -> None:
    write_folder(tmp_path, release_files(per_batch=20))
    params = {
        "params:data_processing": {
            "validation_fraction": 0.2,
            "test_fraction": 0.2,
            "stratify": True,
            "subset_fraction": 1.0,
            "resize": {"fit": "crop", "resample": "lanczos", "background": [0, 0, 0]},
        },
        "params:training.model.input_size": 32,
        "params:data_processing.sample_images_per_class": 2,
        "params:seed": 0,
        "params:class_names": CLASS_NAMES,
        "params:run_label": "slice",
    }
    raw = CIFAR10Dataset(path=str(tmp_path))
    reads = []
    load = raw.load
    raw.load = lambda: reads.append(1) or load()
    catalog = DataCatalog(
        datasets={
            "raw_images": raw,
            **{name: MemoryDataset(value) for name, value in params.items()},
        }
    )
    for name in ("model_input_train", "model_input_validation", "model_input_test"):
        catalog[name] = NpzDataset(filepath=str(tmp_path / "out" / f"{name}.npz"))
    catalog["dataset_report"] = JSONDataset(filepath=str(tmp_path / "out" / "report.json"))
    catalog["sample_images"] = MemoryDataset()
    catalog["raw_inventory"] = MemoryDataset()
    SequentialRunner().run(create_pipeline(), catalog)
    # Every image of every split comes with the release's own label for it, and its
    # index says where the release holds it (the 100 training images in batch file order).
    batches = [batch_payload(20, seed, name) for seed, name in enumerate(BATCH_FILES)]
    for split, source in (
        ("train", batches[:5]),
        ("validation", batches[:5]),
        ("test", [batches[5]]),
    ):
        inputs = catalog.load(f"model_input_{split}")
        rows = np.concatenate([batch[b"data"] for batch in source])
        labels = np.concatenate([batch[b"labels"] for batch in source])
        np.testing.assert_array_equal(inputs["images"], nhwc(rows[inputs["index"]]), split)
        np.testing.assert_array_equal(inputs["labels"].argmax(axis=1), labels[inputs["index"]])
        assert (inputs["labels"].sum(axis=1) == 1).all()
    held = [catalog.load(f"model_input_{split}")["index"] for split in ("train", "validation")]
    assert sorted(np.concatenate(held)) == list(range(100)), "train and validation split it"
    assert catalog.load("model_input_train")["images"].shape == (80, 32, 32, 3)
    assert catalog.load("model_input_validation")["labels"].shape == (20, 10)
    assert catalog.load("model_input_test")["images"].shape == (20, 32, 32, 3)
    assert catalog.load("dataset_report")["splits"]["validation"]["images"] == 20
    assert len(reads) == 1, "one node reads the release, whatever the runner"
