"""The real CIFAR-10 beside the checkout (../shared/data), when it is there."""

from __future__ import annotations

import pytest
from kedro_cli import SHARED_CIFAR
from synthetic_cifar import CLASS_NAMES

from alexnet_cifar10.datasets import CIFAR10Dataset
from alexnet_cifar10.pipelines.data_processing.nodes import split_dataset, summarise_dataset

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not SHARED_CIFAR.is_dir(),
        reason=f"the real CIFAR-10 is not at {SHARED_CIFAR} (only the synthetic tests run)",
    ),
]


def test_real_release_splits_and_statistics() -> None:
    data = CIFAR10Dataset(path=str(SHARED_CIFAR.parent)).load()
    assert data["label_names"] == CLASS_NAMES
    split = split_dataset(
        data, {"validation_fraction": 0.2, "stratify": True, "subset_fraction": 1.0}, seed=42
    )
    report = summarise_dataset(data, split, CLASS_NAMES, "full run")
    splits = report["splits"]
    assert [splits[k]["images"] for k in ("train", "validation", "test")] == [40000, 10000, 10000]
    assert set(splits["official_train"]["class_counts"].values()) == {5000}
    assert set(splits["official_test"]["class_counts"].values()) == {1000}
    mean = [round(v, 4) for v in report["channel_mean"]["official_train"]]
    assert mean == [0.4914, 0.4822, 0.4465]
