"""Nodes of the export pipeline: the trained network as ONNX and as a TensorFlow
SavedModel, and how closely ONNX Runtime reproduces Keras on the test set.

Each export names its model: the ONNX file's metadata holds the model's labels
(``provenance.LABELS``) and class names, the SavedModel's ``assets.extra/model_card.json``
the whole card. The training pipeline packages the ONNX file into the model that
``kedro serve`` answers with (``serving.py``), on ONNX Runtime.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import numpy as np

from alexnet_cifar10.inference import OnnxNetwork
from alexnet_cifar10.provenance import LABELS, MixedModelsError, TrainedModel
from alexnet_cifar10.serving import ServedModel

logger = logging.getLogger(__name__)


def _traced(model: TrainedModel) -> TrainedModel:
    """The model, its network called once: Keras exports only a network it has traced."""
    model.network(np.zeros((1, *model.network.input_shape[1:]), np.uint8), training=False)
    return model


def export_onnx(model: TrainedModel) -> bytes:
    """The network as ONNX (uint8 images in, probabilities out), labelled by its card."""
    import onnx  # only where a model is exported

    from alexnet_cifar10.pipelines.export.onnx_graph import network_graph

    started = time.perf_counter()
    exported = network_graph(model.network)
    card = {key: str(model.card[key]) for key in LABELS}
    onnx.helper.set_model_props(
        exported, {**card, "class_names": json.dumps(model.card["class_names"])}
    )
    logger.info(
        "Exported model %s as ONNX in %.1f s", card["model_version"], time.perf_counter() - started
    )
    return exported.SerializeToString()


def package_served_model(
    onnx_model: bytes, predict: dict[str, Any], serve: dict[str, Any]
) -> ServedModel:
    """The predict path around the ONNX network, as the MLflow model that is served."""
    served = ServedModel(onnx_model, predict, serve)
    logger.info("Packaged model %s for serving", served.labels["model_version"])
    return served


def export_saved_model(model: TrainedModel) -> TrainedModel:
    """The model ready for its SavedModel export (``SavedModelDataset`` writes it)."""
    return _traced(model)


def onnx_parity(
    onnx_model: bytes,
    model: TrainedModel,
    test: dict[str, np.ndarray],
    batch_size: int,
    tolerance: float,
) -> dict[str, Any]:
    """ONNX Runtime against Keras on every test image: top-1 and probability differences."""
    exported = OnnxNetwork(onnx_model)
    labels = {key: exported.card.get(key) for key in LABELS}
    # As export_onnx writes them: text (a model that was never saved has no version).
    if labels != {key: str(value) for key, value in model.labels.items()}:
        raise MixedModelsError(
            f"The ONNX file was exported from model {labels['model_version']}, not from "
            f"model {model.labels['model_version']}: pass the same --load-versions to both."
        )
    images, seconds, probabilities = test["images"], {}, {}
    for runtime, network in (("keras", model.network), ("onnxruntime", exported)):
        started = time.perf_counter()
        probabilities[runtime] = network.predict(images, batch_size=batch_size, verbose=0)
        seconds[runtime] = round(time.perf_counter() - started, 2)
    difference = np.abs(probabilities["keras"] - probabilities["onnxruntime"])
    mismatched = np.flatnonzero(
        probabilities["keras"].argmax(axis=1) != probabilities["onnxruntime"].argmax(axis=1)
    )
    report = {
        **model.labels,
        "images": len(images),
        "identical_top1": int(len(images) - len(mismatched)),
        "top1_mismatches": mismatched.tolist(),
        "max_abs_probability_difference": float(difference.max(initial=0.0)),
        "mean_abs_probability_difference": float(difference.mean()) if difference.size else 0.0,
        "tolerance": tolerance,
        "seconds": seconds,
    }
    report["within_tolerance"] = (
        not len(mismatched) and report["max_abs_probability_difference"] <= tolerance
    )
    logger.info(
        "ONNX parity on %d test images: identical top-1 on %d, largest probability "
        "difference %.2e (tolerance %.0e); Keras %.1f s, ONNX Runtime %.1f s",
        report["images"],
        report["identical_top1"],
        report["max_abs_probability_difference"],
        tolerance,
        seconds["keras"],
        seconds["onnxruntime"],
    )
    return report
