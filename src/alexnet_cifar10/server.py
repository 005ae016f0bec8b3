"""``kedro serve``: MLflow's scoring server on a registered version of the served model.

The server is MLflow's own (``mlflow.pyfunc.scoring_server``, the app behind ``mlflow
models serve``), run in this process on the project's environment: nothing is built or
downloaded. In front of it sits a guard that MLflow does not have: a request body must
declare its length, at most the model's ``serve.max_request_bytes``, or it is answered
(411 or 413, with a JSON reason) before a byte of it is read; the body is read whole
before MLflow sees it, so a client that hangs up half-way costs one log line and nobody
else's time; and an error answer carries its message, never a stack trace.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Awaitable, Callable, MutableMapping
from http import HTTPStatus
from typing import Any

logger = logging.getLogger(__name__)

REGISTERED_NAME = "alexnet_cifar10"

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class ServeError(Exception):
    """What ``kedro serve`` cannot start with, in one line."""


class BodyLimit:
    """An ASGI app in front of another: refuses a request body of unknown length (411)
    or of more than ``max_bytes`` (413) unread, reads an accepted body whole before the
    app sees it (a client gone before its end is dropped in one line), and strips the
    stack trace from the app's error answers."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length", b"")
        if not length.isdigit():
            return await _refuse(send, 411, "the request must state its Content-Length")
        if int(length) > self.max_bytes:
            message = (
                f"a body of {int(length):,} bytes is over the limit of {self.max_bytes:,} "
                "(serve.max_request_bytes)"
            )
            return await _refuse(send, 413, message)
        body = await _whole_body(receive)
        if body is None:
            logger.info("A client hung up before the end of its request body; dropped.")
            return None

        async def replay() -> MutableMapping[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        return await self.app(scope, replay, _without_stack_traces(send))


async def _whole_body(receive: Receive) -> bytes | None:
    """The request's body, or None if the client disconnected before its end."""
    parts = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(parts)


def _without_stack_traces(send: Send) -> Send:
    """``send`` for an app whose JSON error answers may hold a ``stack_trace`` (MLflow's
    do): those answers lose it, and their Content-Length follows."""
    start: MutableMapping[str, Any] = {}

    async def filtered(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start" and message["status"] >= HTTPStatus.BAD_REQUEST:
            start.update(message)  # held until the body is known
            return None
        if start and message["type"] == "http.response.body":
            body = message.get("body", b"")
            try:
                answer = json.loads(body)
                answer.pop("stack_trace", None)
                body = json.dumps(answer).encode()
            except (ValueError, AttributeError):  # not a JSON object: as it was
                pass
            headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
            await send({**start, "headers": [*headers, (b"content-length", b"%d" % len(body))]})
            start.clear()
            return await send({**message, "body": body})
        return await send(message)

    return filtered


async def _refuse(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error_code": "BAD_REQUEST", "message": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def registered_version(tracking_uri: str, wanted: str | None, alias: str) -> Any:
    """The registered model version to serve: ``wanted``, or the one holding ``alias``."""
    from mlflow import MlflowClient  # MLflow starts with the command

    client = MlflowClient(tracking_uri)
    found = client.search_model_versions(f"name = '{REGISTERED_NAME}'")
    if not found:
        raise ServeError(
            f"No model is registered as {REGISTERED_NAME} in {tracking_uri}: every tracked "
            "training run registers one (kedro run)."
        )
    versions = {str(version.version): version for version in found}
    if wanted is None:
        # The search leaves each version's aliases empty; the registered model has them.
        held = client.get_registered_model(REGISTERED_NAME).aliases.get(alias)
        if held is None:
            newest = max(versions, key=int)
            raise ServeError(
                f"No version of {REGISTERED_NAME} is @{alias}: none has passed the promotion "
                f"gates (promotion_report.json says why); serve one by number with "
                f"--model-version (the newest is {newest})."
            )
        return versions[str(held)]
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


def serve(tracking_uri: str, wanted: str | None, alias: str, host: str, port: int) -> None:
    """Load the registered model version (``wanted``, or the one holding ``alias``) and
    answer on ``host:port`` until stopped."""
    import mlflow

    check_port(host, port)
    # MLflow's own switch: no progress bars while it copies the model's files.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    mlflow.set_tracking_uri(tracking_uri)
    version = registered_version(tracking_uri, wanted, alias)
    model = mlflow.pyfunc.load_model(f"models:/{REGISTERED_NAME}/{version.version}")
    held = "" if wanted else f"@{alias}, "
    answer(model, host, port, f"{REGISTERED_NAME} {held}version {version.version}")


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
