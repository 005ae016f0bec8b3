"""Unit tests of ``kedro serve``'s pieces: the body limit in front of MLflow's server, the
registered version it picks, the port it checks."""

from __future__ import annotations

import asyncio
import json
import socket
from types import SimpleNamespace

import pytest

from alexnet_cifar10 import server


async def _answer(app: object, headers: list[tuple[bytes, bytes]], method: str = "POST") -> dict:
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    await app({"type": "http", "method": method, "headers": headers}, receive, send)
    return {
        "status": sent[0]["status"],
        "body": b"".join(m.get("body", b"") for m in sent[1:]),
    }


async def _inner(scope: dict, receive: object, send: object) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"inner"})


@pytest.mark.parametrize(
    ("headers", "status", "reason"),
    [
        ([(b"content-length", b"100")], 200, None),
        ([(b"content-length", b"101")], 413, "a body of 101 bytes is over the limit of 100"),
        ([(b"transfer-encoding", b"chunked")], 411, "must state its Content-Length"),
        ([(b"content-length", b"-5")], 411, "must state its Content-Length"),
    ],
)
def test_a_body_over_the_limit_or_of_unknown_length_is_refused_unread(
    headers: list, status: int, reason: str | None
) -> None:
    answer = asyncio.run(_answer(server.BodyLimit(_inner, 100), headers))
    assert answer["status"] == status
    if reason is None:
        assert answer["body"] == b"inner"
    else:
        assert reason in json.loads(answer["body"])["message"]


def test_a_get_needs_no_length() -> None:
    answer = asyncio.run(_answer(server.BodyLimit(_inner, 100), [], method="GET"))
    assert answer["status"] == 200


def test_the_alias_holder_is_served_unless_a_version_is_named(monkeypatch) -> None:
    found = [SimpleNamespace(version=v) for v in ("1", "10", "9")]
    client = SimpleNamespace(
        search_model_versions=lambda query: found,
        get_registered_model=lambda name: SimpleNamespace(aliases={"champion": 9}),
    )
    monkeypatch.setattr("mlflow.MlflowClient", lambda uri: client)
    assert server.registered_version("sqlite:///x.db", None, "champion").version == "9"
    assert server.registered_version("sqlite:///x.db", "10", "champion").version == "10"
    with pytest.raises(server.ServeError, match="No version of alexnet_cifar10 is @other.*is 10"):
        server.registered_version("sqlite:///x.db", None, "other")
    with pytest.raises(server.ServeError, match="No version 3 .* versions are: 1, 9, 10"):
        server.registered_version("sqlite:///x.db", "3", "champion")
    client.search_model_versions = lambda query: []
    with pytest.raises(server.ServeError, match="No model is registered as alexnet_cifar10"):
        server.registered_version("sqlite:///x.db", None, "champion")


def test_a_port_in_use_is_named() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(server.ServeError, match=f"Cannot listen on 127.0.0.1:{port}"):
            server.check_port("127.0.0.1", port)


def test_a_port_left_by_a_stopped_server_can_be_listened_on_again() -> None:
    with socket.socket() as listening:
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = listening.accept()
        accepted.close()  # the server side closes first: its end waits in TIME_WAIT
        client.close()
    server.check_port("127.0.0.1", port)


def test_a_client_gone_before_the_end_of_its_body_is_dropped_in_one_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The app never sees such a request, so nothing waits on it or logs a traceback."""
    reached: list[dict] = []

    async def app(scope: dict, receive: object, send: object) -> None:
        reached.append(scope)

    messages = iter([{"type": "http.request", "body": b"{", "more_body": True},
                     {"type": "http.disconnect"}])  # fmt: skip

    async def receive() -> dict:
        return next(messages)

    async def send(message: dict) -> None:
        raise AssertionError("nothing is answered to a client that is gone")

    scope = {"type": "http", "method": "POST", "headers": [(b"content-length", b"10")]}
    with caplog.at_level("INFO", logger=server.__name__):
        asyncio.run(server.BodyLimit(app, 100)(scope, receive, send))
    assert reached == []
    assert caplog.messages == ["A client hung up before the end of its request body; dropped."]


def test_an_error_answer_loses_its_stack_trace_and_keeps_its_message() -> None:
    async def failing(scope: dict, receive: object, send: object) -> None:
        answer = {"error_code": "BAD_REQUEST", "message": "no picture", "stack_trace": "..."}
        body = json.dumps(answer).encode()
        headers = [(b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 400, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    answer = asyncio.run(_answer(server.BodyLimit(failing, 100), [(b"content-length", b"2")]))
    assert answer["status"] == 400
    assert json.loads(answer["body"]) == {"error_code": "BAD_REQUEST", "message": "no picture"}
