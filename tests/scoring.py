"""A client of MLflow's scoring server, and a server in a subprocess read as it writes."""

from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

from kedro_cli import start_kedro


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def post(port: int, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request(
        "POST", "/invocations", body, {"Content-Type": "application/json", **(headers or {})}
    )
    response = connection.getresponse()
    status, text = response.status, response.read()
    connection.close()
    return status, json.loads(text)


def split(rows: list) -> bytes:
    return json.dumps({"dataframe_split": {"columns": ["image"], "data": rows}}).encode()


def b64(content: bytes) -> str:
    return base64.b64encode(content).decode("ascii")


class Server:
    """A `kedro serve` subprocess whose output is read as it comes (a full pipe would
    stop it)."""

    def __init__(
        self,
        project: Path,
        port: int,
        command: list[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        """`kedro serve --env test` in ``project``, or ``command`` there with ``env``
        (another server that listens on ``port``)."""
        self.port, self.lines = port, []
        self.started = time.monotonic()
        self.process = (
            start_kedro(project, "serve", "--env", "test", "--port", str(port))
            if command is None
            else subprocess.Popen(
                command,
                cwd=project,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)

    def wait_ready(self, timeout: float = 60) -> float:
        while time.monotonic() - self.started < timeout:
            assert self.process.poll() is None, "".join(self.lines)[-4000:]
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                connection.request("GET", "/ping")
                if connection.getresponse().status == 200:
                    return time.monotonic() - self.started
            except OSError:
                time.sleep(0.2)
        raise AssertionError("no answer to /ping:\n" + "".join(self.lines)[-4000:])

    def stop(self) -> None:
        os.kill(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
