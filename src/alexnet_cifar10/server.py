"""``kedro serve``: MLflow's scoring server on a registered version of the served model.

The server is MLflow's own (``mlflow.pyfunc.scoring_server``, the app behind ``mlflow
models serve``), run in this process on the project's environment: nothing is built or
downloaded. In front of it sits one guard that MLflow does not have: a request body must
declare its length, at most the model's ``serve.max_request_bytes``, or it is answered
(411 or 413, with a JSON reason) before a byte of it is read.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

logger = logging.getLogger(__name__)

REGISTERED_NAME = "alexnet_cifar10"

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class ServeError(Exception):
    """What ``kedro serve`` cannot start with, in one line."""


class BodyLimit:
    """An ASGI app that refuses a request body of unknown length (411) or of more than
    ``max_bytes`` (413) before the app it wraps reads it."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("POST", "PUT", "PATCH"):
            length = dict(scope["headers"]).get(b"content-length", b"")
            if not length.isdigit():
                return await _refuse(send, 411, "the request must state its Content-Length")
            if int(length) > self.max_bytes:
                return await _refuse(
                    send,
                    413,
                    f"a body of {int(length):,} bytes is over the limit of "
                    f"{self.max_bytes:,} (serve.max_request_bytes)",
                )
        return await self.app(scope, receive, send)


async def _refuse(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error_code": "BAD_REQUEST", "message": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def registered_version(tracking_uri: str, wanted: str | None) -> Any:
    """The registered model version to serve: ``wanted``, or the newest."""
    from mlflow import MlflowClient  # MLflow starts with the command

    found = MlflowClient(tracking_uri).search_model_versions(f"name = '{REGISTERED_NAME}'")
    if not found:
        raise ServeError(
            f"No model is registered as {REGISTERED_NAME} in {tracking_uri}: every tracked "
            "training run registers one (kedro run)."
        )
    versions = {version.version: version for version in found}
    if wanted is None:
        return versions[max(versions, key=int)]
    if wanted not in versions:
        known = ", ".join(sorted(versions, key=int))
        raise ServeError(f"No version {wanted} of {REGISTERED_NAME}; the versions are: {known}.")
    return versions[wanted]


def check_port(host: str, port: int) -> None:
    """Raise ``ServeError`` unless ``host:port`` can be listened on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As uvicorn binds: the connections of a server just stopped (TIME_WAIT) do not
        # hold the port, only a socket that listens on it does.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise ServeError(
                f"Cannot listen on {host}:{port} ({error.strerror}); pass another --port."
            ) from error


def serve(tracking_uri: str, wanted: str | None, host: str, port: int) -> None:
    """Load the registered model version and answer on ``host:port`` until stopped."""
    import mlflow

    check_port(host, port)
    mlflow.set_tracking_uri(tracking_uri)
    version = registered_version(tracking_uri, wanted)
    model = mlflow.pyfunc.load_model(f"models:/{REGISTERED_NAME}/{version.version}")
    answer(model, host, port, f"{REGISTERED_NAME} version {version.version}")


def answer(model: Any, host: str, port: int, name: str) -> None:
    """MLflow's scoring server on a loaded served model, behind ``BodyLimit``."""
    import uvicorn
    from mlflow.pyfunc import scoring_server

    served = model.unwrap_python_model()
    labels = served.labels
    app = BodyLimit(scoring_server.init(model), served.serve["max_request_bytes"])
    logger.info(
        "Serving %s (model %s, '%s', env %s) on ONNX Runtime at http://%s:%d: "
        "POST /invocations, GET /ping",
        name,
        labels["model_version"],
        labels["run_label"],
        labels["kedro_env"],
        host,
        port,
    )
    uvicorn.run(app, host=host, port=port, log_config=None, timeout_graceful_shutdown=5)
