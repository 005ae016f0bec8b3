"""End to end, as a user types it: `kedro run --pipelines export` on a trained project;
`kedro serve` in a subprocess, its answers against `kedro run --pipelines predict` on the
same files, and bad requests."""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from kedro_cli import kedro, saved, versions
from scoring import Server, b64, free_port, post, split
from user_images import BAD, GOOD, VANISHING, write_user_images

pytestmark = pytest.mark.slow

FILES = sorted(name for name in {**BAD, **GOOD} if name != VANISHING)
MAX_REQUEST_BYTES = 33554432  # parameters_serve.yml


@pytest.fixture
def served(finished_project: Path) -> Iterator[tuple[Path, Server]]:
    server = Server(finished_project, free_port())
    try:
        yield finished_project, server
    finally:
        server.stop()


def test_served_answers_are_the_predict_pipelines_and_bad_requests_never_stop_it(
    served: tuple[Path, Server],
) -> None:
    project, server = served
    folder = project / "data/01_raw/user_images"
    write_user_images(folder, {name: {**BAD, **GOOD}[name] for name in FILES})
    seconds = server.wait_ready()
    assert seconds < 60, seconds  # about 10 s on a 2-core CPU, its Python start included
    log = "".join(server.lines)
    [model_version] = versions(project, "06_models", "alexnet.keras")
    assert "Serving alexnet_cifar10 @champion-test, version 1" in " ".join(log.split())
    assert model_version in log

    predicted = kedro(project, "run", "--env", "test", "--pipelines", "predict")
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    [csv_version] = versions(project, "07_model_output", "user_predictions.csv")
    expected = pd.read_csv(
        saved(project, "07_model_output", "user_predictions.csv", csv_version)
    ).set_index("file")

    status, answer = post(
        server.port, split([[b64((folder / name).read_bytes())] for name in FILES])
    )
    assert status == 200, answer
    rows = pd.DataFrame(answer["predictions"])
    assert list(rows["file"]) == list(range(len(FILES)))
    rows.index = FILES
    expected = expected.loc[FILES]
    assert list(rows["status"]) == list(expected["status"])
    assert set(expected.columns) - {"file"} <= set(rows.columns)
    probabilities = [name for name in expected.columns if name.startswith("p_")]
    got = rows[probabilities].astype(float).to_numpy()
    np.testing.assert_allclose(got, expected[probabilities].to_numpy(), atol=1e-4)
    assert (rows["model_version"] == model_version).all()
    assert list(rows["top1_class"].fillna("")) == list(expected["top1_class"].fillna(""))

    good = split([[b64((folder / "photo.jpg").read_bytes())]])
    for name, send, want, reason in BAD_REQUESTS:
        status, answer = send(server.port)
        assert status == want, (name, answer)
        text = json.dumps(answer)
        assert reason in text, (name, text[:2000])
        assert "stack_trace" not in answer and "Traceback" not in text, name
        status, answer = post(server.port, good)
        assert status == 200, (name, answer)
        assert answer["predictions"][0]["status"] == "ok"
    assert server.process.poll() is None
    # Neither MLflow's progress bars nor its advice on an input key the project never uses.
    written = "".join(server.lines)
    assert "Downloading artifacts" not in written and "`instances`" not in written


def _hang_up_half_way(port: int) -> None:
    """A client that states a body of 1,000 bytes, sends 10 and closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
        client.sendall(
            b"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n0123456789"
        )


def test_clients_that_hang_up_half_way_stall_nobody(served: tuple[Path, Server]) -> None:
    """30 clients close before the end of their bodies; a good request right after is
    answered within a second, and each of them cost one log line."""
    project, server = served
    server.wait_ready()
    folder = project / "data/01_raw/user_images"
    write_user_images(folder, {"photo.jpg": GOOD["photo.jpg"]})
    good = split([[b64((folder / "photo.jpg").read_bytes())]])
    assert post(server.port, good)[0] == 200  # the first answer warms the model
    before = len(server.lines)
    for _ in range(30):
        _hang_up_half_way(server.port)
    started = time.monotonic()
    status, answer = post(server.port, good)
    assert status == 200 and time.monotonic() - started < 1, answer
    time.sleep(1)  # the server's last lines reach the reader
    written = [line for line in server.lines[before:] if line.strip()]
    hung_up = [line for line in written if "hung up before the end" in line]
    assert len(hung_up) == 30 and "Traceback" not in "".join(written), written[-20:]


def test_export_writes_onnx_a_saved_model_and_their_parity_with_its_models_labels(
    finished_project: Path,
) -> None:
    project = finished_project
    [model_version] = versions(project, "06_models", "alexnet.keras")
    result = kedro(project, "run", "--env", "test", "--pipelines", "export")
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(versions(project, "06_models", "alexnet.onnx")) == 2  # training's, and this
    # A SavedModel is a folder, not a file: its version is the one folder that holds one.
    [folder] = (project / "data/test/06_models/alexnet_savedmodel").glob("*/alexnet_savedmodel")
    assert (folder / "saved_model.pb").is_file()
    card = json.loads((folder / "assets.extra/model_card.json").read_text())
    assert card["model_version"] == model_version
    # The newest report is this run's; `kedro run`'s promotion wrote the first.
    *_, report_version = versions(project, "08_reporting", "export_parity.json")
    report = json.loads(
        (saved(project, "08_reporting", "export_parity.json", report_version)).read_text()
    )
    assert report["model_version"] == model_version
    assert report["images"] == report["identical_top1"] == 50  # the synthetic test batch
    assert report["within_tolerance"], report
    assert "ONNX parity on 50 test images: identical top-1 on 50" in result.log


def _huge(port: int) -> tuple[int, dict]:
    """Headers that announce a body larger than the limit, then a first kilobyte of it."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.putrequest("POST", "/invocations")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(MAX_REQUEST_BYTES + 1))
    connection.endheaders()
    connection.send(b"x" * 1024)
    response = connection.getresponse()
    status, text = response.status, response.read()
    connection.close()
    return status, json.loads(text)


def _chunked(port: int) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request(
        "POST", "/invocations", iter([split([["QUJD"]])]),
        {"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        encode_chunked=True,
    )  # fmt: skip
    response = connection.getresponse()
    status, text = response.status, response.read()
    connection.close()
    return status, json.loads(text)


def _sending(body: bytes) -> Callable[[int], tuple[int, dict]]:
    return lambda port: post(port, body)


# Each bad request: its name, how it is sent, the status and a part of the answer.
BAD_REQUESTS: list[tuple[str, Callable[[int], tuple[int, dict]], int, str]] = [
    ("malformed JSON", _sending(b'{"dataframe_split": {'), 400, "valid JSON"),
    (
        "misnamed column",
        _sending(b'{"dataframe_split": {"columns": ["picture"], "data": [["QUJD"]]}}'),
        400,
        "Model is missing inputs ['image']",
    ),
    ("no table", _sending(b'{"inputs": 3}'), 400, "error_code"),
    ("no picture", _sending(split([])), 400, "The request holds no picture"),
    ("text that is not base64", _sending(split([["not base64!"]])), 200, "refused: not base64"),
    ("a number for a picture", _sending(split([[42]])), 200, "refused: not base64 text"),
    (
        "5,000 rows",
        _sending(split([["QUJD"]] * 5000)),
        400,
        "5,000 pictures in one request: at most 256 (serve.max_rows)",
    ),
    ("a body over 32 MiB", _huge, 413, "over the limit of 33,554,432 (serve.max_request_bytes)"),
    ("a body of unstated length", _chunked, 411, "must state its Content-Length"),
]  # fmt: skip
