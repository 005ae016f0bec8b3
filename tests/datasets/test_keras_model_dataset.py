"""KerasModelDataset: round trips, and it works on a backend without TensorFlow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import tracemalloc
import zipfile
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
from kedro.io.core import DatasetError, Version
from local_http import folder_handler, serving

from alexnet_cifar10.datasets import KerasModelDataset, TrainedModelDataset
from alexnet_cifar10.model import build_alexnet
from alexnet_cifar10.provenance import TrainedModel

TINY = {
    "conv_layers": [
        {"filters": 4, "kernel_size": 3, "strides": 1, "pool": True, "batch_norm": True}
    ],
    "pool_size": 3,
    "pool_strides": 2,
    "input_size": 32,
    "batch_norm_momentum": 0.99,
    "dense_units": [8],
    "dropout": 0.5,
}


def test_round_trip_predicts_the_same(tmp_path: Path) -> None:
    model = build_alexnet(
        TINY,
        num_classes=10,
        augmentation={"enabled": True, "pad": 4, "horizontal_flip": True, "cutout": 0},
    )
    path = str(tmp_path / "m.keras")
    KerasModelDataset(filepath=path, version=Version(None, None)).save(model)
    loaded = KerasModelDataset(filepath=path, version=Version(None, None)).load()
    images = np.random.default_rng(0).integers(0, 255, (4, 32, 32, 3), dtype=np.uint8)
    np.testing.assert_allclose(
        loaded.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-6
    )


def test_load_args_reach_keras_and_describe_lists_them(tmp_path: Path) -> None:
    model = build_alexnet(TINY, num_classes=10)
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    path = str(tmp_path / "m.keras")
    KerasModelDataset(filepath=path, version=Version(None, None)).save(model)
    dataset = KerasModelDataset(
        filepath=path, version=Version(None, None), load_args={"compile": False}
    )
    assert dataset._describe()["load_args"] == {"compile": False, "safe_mode": True}
    assert not dataset.load().compiled
    assert KerasModelDataset(filepath=path, version=Version(None, None)).load().compiled


def test_a_model_that_could_run_code_is_refused(tmp_path: Path) -> None:
    inputs = keras.Input((2,))
    outputs = keras.layers.Lambda(lambda x: x * 2)(inputs)
    path = str(tmp_path / "lambda.keras")
    KerasModelDataset(filepath=path, version=Version(None, None)).save(keras.Model(inputs, outputs))
    with pytest.raises(DatasetError, match="safe_mode"):
        KerasModelDataset(filepath=path, version=Version(None, None)).load()


def test_object_store_round_trip_through_fsspec_memory() -> None:
    model = build_alexnet(TINY, num_classes=10)
    path = "memory://models/m.keras"
    KerasModelDataset(filepath=path, version=Version(None, None)).save(model)
    loaded = KerasModelDataset(filepath=path, version=Version(None, None)).load()
    assert loaded.count_params() == model.count_params()


def test_reads_a_model_published_over_http(tmp_path: Path) -> None:
    model = build_alexnet(TINY, num_classes=10)
    KerasModelDataset(filepath=str(tmp_path / "m.keras")).save(model)

    with serving(folder_handler(tmp_path)) as base:
        loaded = KerasModelDataset(filepath=f"{base}/m.keras").load()
    assert loaded.count_params() == model.count_params()


def test_loads_the_project_layers_without_their_registration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As in a process that never imported the model module: the dataset brings them."""
    model = build_alexnet(
        TINY,
        num_classes=10,
        augmentation={"enabled": True, "pad": 4, "horizontal_flip": True, "cutout": 0},
    )
    path = str(tmp_path / "m.keras")
    KerasModelDataset(filepath=path).save(model)
    monkeypatch.delitem(keras.saving.get_custom_objects(), "alexnet_cifar10>RandomCropFlip")
    loaded = KerasModelDataset(filepath=path).load()
    assert [type(layer).__name__ for layer in loaded.layers] == [
        type(layer).__name__ for layer in model.layers
    ]


def test_save_args_reach_keras(tmp_path: Path) -> None:
    dataset = KerasModelDataset(
        filepath=str(tmp_path / "m.keras"), version=Version(None, None), save_args={"bogus": 1}
    )
    with pytest.raises(DatasetError, match=r"The following argument\(s\) are not supported"):
        dataset.save(build_alexnet(TINY, num_classes=10))
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == [], "nothing half-saved"


def test_saves_only_keras_models(tmp_path: Path) -> None:
    dataset = KerasModelDataset(filepath=str(tmp_path / "m.keras"))
    with pytest.raises(DatasetError) as error:
        dataset.save({"weights": np.zeros(3)})
    assert str(error.value) == "KerasModelDataset saves keras.Model; got dict."


def test_needs_a_keras_filepath(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as error:
        KerasModelDataset(filepath=str(tmp_path / "m.h5"))
    assert str(error.value) == (
        f"KerasModelDataset needs a '.keras' filepath, got '{tmp_path / 'm.h5'}'."
    )


JAX_SCRIPT = textwrap.dedent(
    """
    import importlib.abc, sys

    class BlockTensorFlow(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] == "tensorflow":
                raise ImportError("tensorflow is not installed here")

    sys.meta_path.insert(0, BlockTensorFlow())
    import numpy as np
    import keras
    from kedro.io.core import Version
    from alexnet_cifar10.datasets import TrainedModelDataset
    from alexnet_cifar10.pipelines.training.nodes import build_model, train_model

    assert keras.backend.backend() == "jax"
    rng = np.random.default_rng(0)
    def split(n):
        labels = np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)]
        return {"images": rng.integers(0, 255, (n, 32, 32, 3), dtype=np.uint8), "labels": labels}
    params = {
        "model": {"conv_layers": [{"filters": 4, "kernel_size": 3, "strides": 1,
                                   "pool": True, "batch_norm": True}],
                  "pool_size": 3, "pool_strides": 2, "batch_norm_momentum": 0.99, "input_size": 32,
                  "dense_units": [8], "dropout": 0.5},
        "augmentation": {"enabled": True, "pad": 4, "horizontal_flip": True, "cutout": 4},
        "optimizer": {"name": "adamw", "learning_rate": 0.001, "weight_decay": 0.0001,
                      "momentum": 0.0, "nesterov": False,
                      "ema": {"enabled": True, "momentum": 0.9}},
        "lr_schedule": {"name": "warmup_cosine", "warmup_epochs": 0.5},
        "loss": "categorical_crossentropy", "label_smoothing": 0.1, "epochs": 1,
        "batch_size": 16, "distribution": "one_device", "precision": "float32",
        "jit_compile": "auto",
        "resume": {"enabled": False, "backup_dir": "unused"}, "progress_seconds": 30,
        "class_weight": "none", "fine_tune": {"from": None},
    }
    untrained = build_model(
        params["model"], params["augmentation"], params["precision"], 0, list("abcdefghij")
    )
    trained = train_model(
        untrained, split(48), split(16), params, 0, list("abcdefghij"), "jax check",
        {"kedro_env": "jax"},
    )
    TrainedModelDataset(filepath=sys.argv[1], version=Version(None, None)).save(trained)
    loaded = TrainedModelDataset(filepath=sys.argv[1], version=Version(None, None)).load()
    images = split(4)["images"]
    assert np.allclose(loaded.network.predict(images, verbose=0),
                       trained.network.predict(images, verbose=0), atol=1e-5)
    assert "tensorflow" not in sys.modules
    print("backend", loaded.card["run"]["backend"], "epochs", len(loaded.history))
    """
)


@pytest.mark.slow
def test_trains_saves_and_loads_under_jax_without_tensorflow(tmp_path: Path) -> None:
    pytest.importorskip("jax", reason="the 'test' extra installs jax for this check")
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    result = subprocess.run(
        [sys.executable, "-c", JAX_SCRIPT, str(tmp_path / "m.keras")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "backend jax epochs 1" in result.stdout


CARD = {
    "model_version": None,
    "run_label": "unit",
    "kedro_env": "test",
    "class_names": list("abcdefghij"),
    "parameters": {"seed": 0},
}
HISTORY = pd.DataFrame({"epoch": [1, 2], "loss": [2.3, 2.1], "val_accuracy": [0.1, 0.25]})


def test_a_trained_model_keeps_its_card_and_history_in_its_own_archive(tmp_path: Path) -> None:
    """Each version holds its own card and history; Keras itself still reads the file."""
    path = str(tmp_path / "alexnet.keras")
    versions = ("2026-01-01T00.00.00.000Z", "2026-02-01T00.00.00.000Z")
    networks = [build_alexnet(TINY, num_classes=10) for _ in versions]
    for version, network, epochs in zip(versions, networks, (1, 2), strict=True):
        trained = TrainedModel(network, CARD, HISTORY.head(epochs))
        TrainedModelDataset(filepath=path, version=Version(None, version)).save(trained)
    images = np.random.default_rng(0).integers(0, 255, (3, 32, 32, 3), dtype=np.uint8)
    for version, network, epochs in zip(versions, networks, (1, 2), strict=True):
        loaded = TrainedModelDataset(filepath=path, version=Version(version, None)).load()
        assert loaded.card == {**CARD, "model_version": version}
        assert loaded.labels == {"model_version": version, "run_label": "unit", "kedro_env": "test"}
        pd.testing.assert_frame_equal(loaded.history, HISTORY.head(epochs))
        np.testing.assert_allclose(
            loaded.network.predict(images, verbose=0), network.predict(images, verbose=0), atol=1e-6
        )
    newest = TrainedModelDataset(filepath=path, version=Version(None, None)).load()
    assert newest.card["model_version"] == versions[-1]
    archive = Path(path) / versions[-1] / "alexnet.keras"
    assert isinstance(keras.saving.load_model(archive), keras.Model)


def test_an_unversioned_trained_model_says_so(tmp_path: Path) -> None:
    path = str(tmp_path / "alexnet.keras")
    TrainedModelDataset(filepath=path).save(TrainedModel(build_alexnet(TINY, 10), CARD, HISTORY))
    assert TrainedModelDataset(filepath=path).load().card["model_version"] == "unversioned"


def test_a_bare_keras_file_is_not_taken_for_a_trained_model(tmp_path: Path) -> None:
    path = str(tmp_path / "bare.keras")
    KerasModelDataset(filepath=path).save(build_alexnet(TINY, num_classes=10))
    with pytest.raises(DatasetError, match="without the model card and history"):
        TrainedModelDataset(filepath=path).load()
    with pytest.raises(DatasetError, match="saves TrainedModel; got Functional"):
        TrainedModelDataset(filepath=path).save(build_alexnet(TINY, num_classes=10))


def _rewrite_card(archive: Path, card: bytes) -> None:
    """Replace the archive's model card (as someone editing the file would)."""
    with zipfile.ZipFile(archive) as source:
        entries = {
            info: source.read(info)
            for info in source.infolist()
            if info.filename != "model_card.json"
        }
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as target:
        for info, content in entries.items():
            target.writestr(info, content)
        target.writestr("model_card.json", card)


@pytest.mark.parametrize("claimed", ["2026-02-01T00.00.00.000Z", "made-up"])
def test_a_card_that_names_another_version_is_refused(tmp_path: Path, claimed: str) -> None:
    path, version = tmp_path / "alexnet.keras", "2026-01-01T00.00.00.000Z"
    dataset = TrainedModelDataset(filepath=str(path), version=Version(None, version))
    dataset.save(TrainedModel(build_alexnet(TINY, 10), CARD, HISTORY))
    _rewrite_card(
        path / version / "alexnet.keras", json.dumps({**CARD, "model_version": claimed}).encode()
    )
    refusal = f"the model card in version folder {version} names version '{claimed}'"
    with pytest.raises(DatasetError, match=refusal):
        TrainedModelDataset(filepath=str(path), version=Version(None, None)).load()
    with pytest.raises(DatasetError, match=refusal):
        dataset.read_card(version)


def test_an_entry_that_would_inflate_past_its_limit_is_refused_before_reading(
    tmp_path: Path,
) -> None:
    """A card that inflates to 64 MiB (a zip bomb's trick, 64 KiB on disk) is refused from
    the archive's directory: nothing near its size is ever held in memory."""
    path, version = tmp_path / "alexnet.keras", "2026-01-01T00.00.00.000Z"
    TrainedModelDataset(filepath=str(path), version=Version(None, version)).save(
        TrainedModel(build_alexnet(TINY, 10), CARD, HISTORY)
    )
    archive = path / version / "alexnet.keras"
    _rewrite_card(archive, b" " * (64 << 20))
    assert archive.stat().st_size < 4 << 20
    tracemalloc.start()
    try:
        with pytest.raises(DatasetError, match="entry 'model_card.json' inflates to 67,108,864"):
            TrainedModelDataset(filepath=str(path), version=Version(None, None)).read_card(version)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20
