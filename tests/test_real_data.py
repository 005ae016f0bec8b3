"""The real CIFAR-10 beside the checkout (../shared/data), when it is there."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from kedro_cli import SHARED_CIFAR, kedro, make_project, versions
from PIL import Image
from synthetic_cifar import CLASS_NAMES

from alexnet_cifar10.datasets import CIFAR10Dataset
from alexnet_cifar10.pipelines.data_processing.nodes import build_model_inputs, summarise_dataset

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
    params = {
        "validation_fraction": 0.2,
        "test_fraction": 0.2,
        "stratify": True,
        "subset_fraction": 1.0,
        "resize": {"fit": "crop", "resample": "lanczos", "background": [255, 255, 255]},
    }
    *splits, inventory = build_model_inputs(data, params, 42, CLASS_NAMES, 32)
    report = summarise_dataset(*splits, inventory, CLASS_NAMES, "full run")["splits"]
    assert [report[k]["images"] for k in ("train", "validation", "test")] == [40000, 10000, 10000]
    assert set(report["train"]["class_counts"].values()) == {4000}
    assert set(report["validation"]["class_counts"].values()) == {1000}
    assert set(report["test"]["class_counts"].values()) == {1000}
    # The release's well-known channel means (0.4914, 0.4822, 0.4465 over all 50,000
    # training images), within a stratified 80% of them.
    assert [round(v, 2) for v in report["train"]["channel_mean"]] == [0.49, 0.48, 0.45]


def test_predict_agrees_with_evaluate_on_real_test_images(tmp_path: Path) -> None:
    """50 real test images written as PNG files and classified by `predict` get the
    classes and probabilities `evaluate` gave the same images with the same model."""
    project = make_project(tmp_path / "project")
    (project / "data" / "01_raw" / SHARED_CIFAR.name).symlink_to(SHARED_CIFAR)
    # conf/test's tiny network, two epochs on 2% of the real data: the point is the
    # agreement of two paths on the same model, not its accuracy. A fast BatchNorm
    # momentum lets its inference statistics settle in so few steps; with Keras' default
    # 0.99 the model answers nearly 0.1 for every class and image.
    quick = (
        "data_processing.subset_fraction=0.02,training.epochs=2,"
        "training.model.batch_norm_momentum=0.5"
    )
    result = kedro(project, "run", "--env", "test", "--params", quick)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    [model_version] = versions(project, "06_models", "alexnet.keras")
    inputs = project / "data/test/05_model_input/model_input_test.npz" / model_version
    folder = project / "data" / "01_raw" / "user_images"
    folder.mkdir()
    with np.load(inputs / "model_input_test.npz") as test:
        for image, index in zip(test["images"][:50], test["index"][:50], strict=True):
            Image.fromarray(image).save(folder / f"test_{index:05d}.png")

    result = kedro(
        project, "run", "--env", "test", "--pipelines", "predict",
        "--load-versions", f"model:{model_version}",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    [run] = versions(project, "07_model_output", "user_predictions.csv")
    predicted = pd.read_csv(
        project / "data/test/07_model_output/user_predictions.csv" / run / "user_predictions.csv"
    )
    evaluated = pd.read_csv(
        project / "data/test/07_model_output/test_predictions.csv" / model_version
        / "test_predictions.csv"
    ).set_index("test_batch_index")  # fmt: skip
    predicted["test_batch_index"] = predicted["file"].str.slice(5, 10).astype(int)
    evaluated = evaluated.loc[predicted["test_batch_index"]]
    assert len(predicted) == 50 and set(predicted["status"]) == {"ok"}
    assert set(predicted["model_version"]) == set(evaluated["model_version"]) == {model_version}
    columns = [f"p_{name}" for name in CLASS_NAMES]
    # The trained model tells the images apart (no constant output to agree on trivially).
    assert evaluated[columns].to_numpy().std(axis=0).max() > 0.01
    np.testing.assert_allclose(
        predicted[columns].to_numpy(), evaluated[columns].to_numpy(), rtol=0, atol=1e-5
    )
    ranked = np.sort(evaluated[columns].to_numpy(), axis=1)[:, ::-1][:, :3]
    top3 = predicted[[f"top{rank}_probability" for rank in (1, 2, 3)]].to_numpy()
    np.testing.assert_allclose(top3, ranked, rtol=0, atol=1e-5)
    # The same class wherever evaluate's first two are further apart than the tolerance
    # (a closer tie may fall either way within it).
    decided = ranked[:, 0] - ranked[:, 1] > 2e-5
    assert decided.sum() >= 40
    top1 = predicted["top1_class"].to_numpy()[decided]
    assert top1.tolist() == evaluated["predicted_class"].to_numpy()[decided].tolist()
