"""The ONNX writer: ONNX Runtime gives Keras' probabilities for every network the
parameters can describe, and a layer it cannot write is refused by name."""

from __future__ import annotations

import copy

import keras
import numpy as np
import onnxruntime
import pytest

from alexnet_cifar10.model import build_alexnet
from alexnet_cifar10.pipelines.export.onnx_graph import OnnxGraphError, network_graph

# Odd sizes and strides 2: Keras' "same" padding is then uneven, the extra row at the end.
STRIDED = [
    {"filters": 6, "kernel_size": 5, "strides": 2, "pool": False, "batch_norm": True},
    {"filters": 5, "kernel_size": 3, "strides": 1, "pool": True, "batch_norm": False},
    {"filters": 7, "kernel_size": 3, "strides": 2, "pool": True, "batch_norm": True},
]


def _with_statistics(network: keras.Model) -> keras.Model:
    """The network with BatchNorm statistics, scales and shifts far from their initial
    values, as after training."""
    rng = np.random.default_rng(1)
    for layer in network.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.moving_mean.shape[0]
            layer.moving_mean.assign(rng.normal(0, 1, n).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.2, 3, n).astype("float32"))
            layer.gamma.assign(rng.normal(1, 0.3, n).astype("float32"))
            layer.beta.assign(rng.normal(0, 0.3, n).astype("float32"))
    return network


@pytest.mark.parametrize(
    ("conv_layers", "augmentation"),
    [(None, False), (None, True), (STRIDED, False)],
    ids=["recipe", "recipe-augmented", "strided-odd-sizes"],
)
def test_onnx_runtime_gives_the_probabilities_of_keras(
    base_params: dict, conv_layers: list | None, augmentation: bool
) -> None:
    params = copy.deepcopy(base_params["training"])
    if conv_layers:
        params["model"]["conv_layers"] = conv_layers
    params["augmentation"]["enabled"] = augmentation
    network = _with_statistics(build_alexnet(params["model"], 10, params["augmentation"], seed=0))
    images = np.random.default_rng(0).integers(0, 256, (64, 32, 32, 3), dtype=np.uint8)
    session = onnxruntime.InferenceSession(
        network_graph(network).SerializeToString(), providers=["CPUExecutionProvider"]
    )
    onnx_probs = session.run(None, {"image": images})[0]
    keras_probs = network.predict(images, verbose=0)
    np.testing.assert_allclose(onnx_probs, keras_probs, atol=1e-5)
    assert (onnx_probs.argmax(axis=1) == keras_probs.argmax(axis=1)).all()


def test_a_layer_without_a_writer_is_refused_by_name() -> None:
    inputs = keras.Input((32, 32, 3), dtype="uint8")
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(4, 3, activation="tanh", name="conv_tanh")(x)
    network = keras.Model(inputs, keras.layers.GlobalAveragePooling2D(name="gap")(x))
    with pytest.raises(OnnxGraphError, match="conv_tanh: no ONNX operator for 'tanh'"):
        network_graph(network)
    x = keras.layers.Conv2D(4, 3, name="conv")(keras.layers.Rescaling(1 / 255)(inputs))
    network = keras.Model(inputs, keras.layers.GlobalAveragePooling2D(name="gap")(x))
    with pytest.raises(OnnxGraphError, match=r"gap \(GlobalAveragePooling2D\) has no ONNX writer"):
        network_graph(network)
