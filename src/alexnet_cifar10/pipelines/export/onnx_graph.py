"""The project's network written as an ONNX graph, layer by layer, from its Keras weights.

The network is a short chain of standard layers, each one ONNX operator (or two), so the
graph is written here on any Keras backend, without a converter: tf2onnx needs TensorFlow
and more than a gigabyte of memory to trace the network, and JAX's exporter writes the
overlapping max pooling as an operator that ONNX Runtime refuses. Layers that only act in
training (augmentation, dropout) are left out, as Keras leaves them out at inference.
ONNX's convolutions and pooling run channels-first: the images are transposed once after
they are read and back before the flattening, so that the dense layers see Keras' order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from alexnet_cifar10.model import RandomCropFlip

# ONNX Runtime runs opset 17 everywhere the project runs (1.20 and later).
OPSET, IR_VERSION = 17, 8
INPUT, OUTPUT = "image", "probabilities"
ACTIVATIONS = {"relu": "Relu", "softmax": "Softmax"}


class OnnxGraphError(ValueError):
    """The network holds a layer or setting the ONNX writer has no operator for."""


class _Graph:
    """The graph under construction: nodes, weights, and the name of the last output."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.weights: list[onnx.TensorProto] = []
        self.last = INPUT

    def add(self, op: str, *extra_inputs: np.ndarray, name: str, **attributes: Any) -> None:
        """Append ``op`` on the last output (and ``extra_inputs`` as float32 weights)."""
        inputs = [self.last]
        for index, array in enumerate(extra_inputs):
            weight = f"{name}_{index}"
            self.weights.append(numpy_helper.from_array(np.asarray(array, np.float32), weight))
            inputs.append(weight)
        self.last = f"{name}/out"  # never the graph's output name, which a layer may hold
        self.nodes.append(helper.make_node(op, inputs, [self.last], name=name, **attributes))

    def activate(self, layer: keras.layers.Layer) -> None:
        """The layer's activation, if any."""
        activation = keras.activations.serialize(layer.activation)
        if activation == "linear":
            return
        if activation not in ACTIVATIONS:
            raise OnnxGraphError(f"Layer {layer.name}: no ONNX operator for {activation!r}.")
        axis = {"axis": -1} if activation == "softmax" else {}
        self.add(ACTIVATIONS[activation], name=f"{layer.name}_{activation}", **axis)


def _numpy(variable: Any) -> np.ndarray:
    return keras.ops.convert_to_numpy(variable)


def _same_or_valid(config: dict[str, Any], layer: str) -> dict[str, Any]:
    """ONNX's padding for Keras' "same" (the extra row and column at the end, as Keras
    pads) or "valid"."""
    if config.get("data_format", "channels_last") != "channels_last":
        raise OnnxGraphError(f"Layer {layer}: only channels_last images are exported.")
    return {"auto_pad": "SAME_UPPER"} if config["padding"] == "same" else {}


def _conv(graph: _Graph, layer: keras.layers.Conv2D) -> None:
    config = layer.get_config()
    if config["groups"] != 1 or tuple(config["dilation_rate"]) != (1, 1):
        raise OnnxGraphError(f"Layer {layer.name}: grouped or dilated convolutions.")
    kernel = _numpy(layer.kernel).transpose(3, 2, 0, 1)  # (h, w, in, out) -> (out, in, h, w)
    bias = _numpy(layer.bias) if config["use_bias"] else np.zeros(kernel.shape[0])
    graph.add(
        "Conv",
        kernel,
        bias,
        name=layer.name,
        kernel_shape=list(config["kernel_size"]),
        strides=list(config["strides"]),
        **_same_or_valid(config, layer.name),
    )
    graph.activate(layer)


def _batch_norm(graph: _Graph, layer: keras.layers.BatchNormalization) -> None:
    config = layer.get_config()
    if config["axis"] not in (-1, 3, [-1], [3]):
        raise OnnxGraphError(f"Layer {layer.name}: batch normalisation over another axis.")
    mean, variance = _numpy(layer.moving_mean), _numpy(layer.moving_variance)
    gamma = _numpy(layer.gamma) if config["scale"] else np.ones_like(mean)
    beta = _numpy(layer.beta) if config["center"] else np.zeros_like(mean)
    graph.add(
        "BatchNormalization",
        gamma,
        beta,
        mean,
        variance,
        name=layer.name,
        epsilon=config["epsilon"],
    )


def _pool(graph: _Graph, layer: keras.layers.MaxPooling2D) -> None:
    config = layer.get_config()
    graph.add(
        "MaxPool",
        name=layer.name,
        kernel_shape=list(config["pool_size"]),
        strides=list(config["strides"]),
        **_same_or_valid(config, layer.name),
    )


def _rescale(graph: _Graph, layer: keras.layers.Rescaling) -> None:
    config = layer.get_config()
    graph.add("Mul", np.asarray(config["scale"]), name=f"{layer.name}_scale")
    if config["offset"]:
        graph.add("Add", np.asarray(config["offset"]), name=f"{layer.name}_offset")


def _flatten(graph: _Graph, layer: keras.layers.Flatten) -> None:
    graph.add("Transpose", name="to_channels_last", perm=[0, 2, 3, 1])
    graph.add("Flatten", name=layer.name, axis=1)


def _dense(graph: _Graph, layer: keras.layers.Dense) -> None:
    bias = _numpy(layer.bias) if layer.get_config()["use_bias"] else np.zeros(layer.units)
    graph.add("Gemm", _numpy(layer.kernel), bias, name=layer.name)
    graph.activate(layer)


WRITERS: dict[type, Callable[[_Graph, Any], None]] = {
    keras.layers.Rescaling: _rescale,
    keras.layers.Conv2D: _conv,
    keras.layers.BatchNormalization: _batch_norm,
    keras.layers.MaxPooling2D: _pool,
    keras.layers.Flatten: _flatten,
    keras.layers.Dense: _dense,
}
INFERENCE_IDENTITY = (keras.layers.InputLayer, keras.layers.Dropout, RandomCropFlip)


def network_graph(network: keras.Model) -> onnx.ModelProto:
    """The network as an ONNX model: uint8 images (batch, height, width, channels) in,
    class probabilities out."""
    graph = _Graph()
    graph.nodes.append(helper.make_node("Cast", [INPUT], ["image_float"], to=TensorProto.FLOAT))
    graph.last = "image_float"
    graph.add("Transpose", name="to_channels_first", perm=[0, 3, 1, 2])
    for layer in network.layers:
        if isinstance(layer, INFERENCE_IDENTITY):
            continue
        writer = next((w for kind, w in WRITERS.items() if type(layer) is kind), None)
        if writer is None:
            raise OnnxGraphError(
                f"Layer {layer.name} ({type(layer).__name__}) has no ONNX writer; the "
                f"writers cover {', '.join(kind.__name__ for kind in WRITERS)}."
            )
        writer(graph, layer)
    graph.nodes[-1].output[0] = OUTPUT
    height, width, channels = network.input_shape[1:]
    model = helper.make_model(
        helper.make_graph(
            graph.nodes,
            network.name,
            [
                helper.make_tensor_value_info(
                    INPUT, TensorProto.UINT8, [None, height, width, channels]
                )
            ],
            [
                helper.make_tensor_value_info(
                    OUTPUT, TensorProto.FLOAT, [None, network.output_shape[-1]]
                )
            ],
            graph.weights,
        ),
        opset_imports=[helper.make_opsetid("", OPSET)],
        ir_version=IR_VERSION,
    )
    onnx.checker.check_model(model)
    return model
