"""Unit tests of the served model (``serving.py``): each request row through the predict
pipeline's decoding and policy, in order; bad rows get their status; limits hold."""

from __future__ import annotations

import base64
import io
import pickle

import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException
from PIL import Image
from user_images import BAD, GOOD, VANISHING, status_is_right

from alexnet_cifar10.inference import OnnxNetwork
from alexnet_cifar10.pipelines.export.nodes import package_served_model
from alexnet_cifar10.serving import ServedModel, example_request

PREDICT = {
    "batch_size": 64,
    "test_time_augmentation": {"horizontal_flip": False, "shift": 0},
    "resize": {"fit": "crop", "resample": "lanczos", "background": [255, 255, 255]},
}
DECODING = {
    "formats": ["BMP", "GIF", "JPEG", "PNG", "TIFF", "WEBP"],
    "max_pixels": 67108864,
    "max_file_bytes": 1 << 20,
    "draft_size": 128,
}
SERVE = {"max_rows": 16, "max_request_bytes": 1 << 22, "decoding": DECODING}
FILES = {name: kind for name, kind in {**BAD, **GOOD}.items() if name != VANISHING}


@pytest.fixture(scope="module")
def served(small_onnx: bytes) -> ServedModel:
    return package_served_model(small_onnx, PREDICT, SERVE)


def _request(texts: list) -> pd.DataFrame:
    return pd.DataFrame({"image": texts})


def _b64(content: bytes) -> str:
    return base64.b64encode(content).decode("ascii")


def test_every_kind_of_file_gets_the_status_predict_gives_it_in_request_order(
    served: ServedModel,
) -> None:
    names = sorted(FILES, reverse=True)  # not the order prepare_images sorts names in
    answer = served.predict(None, _request([_b64(FILES[name][0]()) for name in names]))
    assert list(answer["file"]) == list(range(len(names)))
    wrong = {
        name: status
        for name, status in zip(names, answer["status"], strict=True)
        if not status_is_right(name, status)
    }
    assert not wrong
    assert set(answer["model_version"]) == {"2026-01-02T03.04.05.678Z"}


def test_probabilities_are_the_networks_and_refused_rows_have_none(
    served: ServedModel, small_onnx: bytes
) -> None:
    pixels = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    answer = served.predict(None, _request([_b64(buffer.getvalue()), "not base64 !"]))
    expected = OnnxNetwork(small_onnx).predict(pixels[None], batch_size=1)[0]
    served_probs = answer.filter(like="p_").iloc[0].astype(float).to_numpy()
    np.testing.assert_allclose(served_probs, expected, atol=1e-6)
    assert answer["status"][1].startswith("refused: not base64 text")
    assert answer.filter(like="p_").iloc[1].isna().all()
    assert answer["top1_class"][1] is None


@pytest.mark.parametrize(
    ("text", "status"),
    [
        (7, "refused: not base64 text (a JSON int)"),
        (None, "refused: not base64 text (a JSON NoneType)"),
        ("", "refused: empty file (0 bytes)"),
        ("QUJD=x", "refused: not base64 text"),
        ("A" * 2_000_000, "refused: 2,000,000 characters of base64: over the limit of 1,048,576"),
    ],
)
def test_a_row_that_is_not_a_picture_is_refused_and_says_why(
    served: ServedModel, text: object, status: str
) -> None:
    answer = served.predict(None, _request([text]))
    assert answer["status"][0].startswith(status)


def test_more_rows_than_the_limit_are_a_bad_request(served: ServedModel) -> None:
    with pytest.raises(MlflowException, match=r"17 pictures in one request: at most 16") as error:
        served.predict(None, _request(["x"] * 17))
    assert error.value.get_http_status_code() == 400


def test_the_model_pickles_without_its_session_and_answers_the_same(served: ServedModel) -> None:
    example = example_request()
    before = served.predict(None, example)
    copy = pickle.loads(pickle.dumps(served))
    assert copy._model is None
    pd.testing.assert_frame_equal(copy.predict(None, example), before)
