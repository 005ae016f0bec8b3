"""Helpers to check a web UI served by the project's tools in headless Chromium, offline.

A local server (kedro viz, the MLflow UI) is started on a free loopback port with every
proxy pointing at a closed local port, and Chromium (``/usr/bin/chromium``, via Playwright:
conftest's ``browser`` fixture) refuses and records every request that leaves 127.0.0.1 or
the disk. Screenshots go to the test's tmp folder; with ``UPDATE_SCREENSHOTS=1`` they are
also copied to docs/images/.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DOCS_IMAGES = REPO / "docs" / "images"
CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
VIEWPORT = {"width": 1920, "height": 1200}


def free_port() -> int:
    """A free local port below Linux's ephemeral range (32768 and up), where an outgoing
    connection of another test can take it between this check and the server's start
    (kedro viz then moves to the next port)."""
    for _ in range(100):
        port = random.randint(20_000, 32_000)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free local port")


def offline_env() -> dict[str, str]:
    """Extra environment of a server: no network beyond loopback."""
    dead_proxy = f"http://127.0.0.1:{free_port()}"  # nothing listens there: refused at once
    env = {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        env[name] = dead_proxy
    return env


def http_get(url: str, timeout: float = 10) -> bytes:
    """GET a loopback URL, ignoring any proxy of the environment."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=timeout) as response:
        return response.read()


def listening_addresses(port: int) -> set[str] | None:
    """Hex local addresses of the sockets listening on ``port``; None without /proc."""
    tables = [Path("/proc/net/tcp"), Path("/proc/net/tcp6")]
    if not tables[0].exists():
        return None
    found = set()
    for table in tables:
        if not table.exists():
            continue
        for line in table.read_text().splitlines()[1:]:
            fields = line.split()
            address, port_hex = fields[1].rsplit(":", 1)
            if fields[3] == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


def wait_until_served(
    server: subprocess.Popen, answer: Callable[[], Any], log: Path, limit: float = 120
) -> Any:
    """Call ``answer`` until it stops raising OSError; fail if the server dies or is slow."""
    started = time.monotonic()
    while True:
        assert server.poll() is None, log.read_text()[-4000:]
        assert time.monotonic() - started < limit, f"no answer in {limit} s: {log.read_text()}"
        try:
            return answer()
        except OSError:
            time.sleep(1)


# True once every element matching the selector has kept its place for STILL_FRAMES frames
# in a row: a zoom or plot transition moves them every frame until it ends.
STILL = """([selector, frames]) => {
    const now = JSON.stringify([...document.querySelectorAll(selector)].map((e) => {
        const b = e.getBoundingClientRect();
        return [b.x, b.y, b.width, b.height];
    }));
    const state = window.__stillLayout || {last: null, count: 0};
    state.count = now === state.last ? state.count + 1 : 0;
    state.last = now;
    window.__stillLayout = state;
    return state.count >= frames;
}"""
STILL_FRAMES = 15


def wait_until_still(page: Any, selector: str, timeout_ms: float = 30_000) -> None:
    """Wait for a page's animations to end: the elements of ``selector`` stop moving."""
    page.evaluate("() => { window.__stillLayout = undefined; }")
    page.wait_for_function(STILL, arg=[selector, STILL_FRAMES], polling="raf", timeout=timeout_ms)


def assert_loopback_only(port: int) -> None:
    addresses = listening_addresses(port)
    if addresses is not None:  # 0100007F is 127.0.0.1
        assert addresses == {"0100007F"}, f"listens on {addresses}, not 127.0.0.1 only"


def stop_server(server: subprocess.Popen, port: int) -> None:
    """Stop a server started in its own process group, children included; check the port
    is free again."""
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=20)
    stopped = time.monotonic() + 30  # its children may take a moment after the parent
    while listening_addresses(port) and time.monotonic() < stopped:
        time.sleep(0.5)
    assert listening_addresses(port) in (None, set()), "the server still listens"


class Session:
    """One browser tab with every non-local request refused and recorded."""

    def __init__(
        self, browser: Any, local_prefixes: tuple[str, ...], init_script: str | None = None
    ):
        self.context = browser.new_context(viewport=VIEWPORT)
        if init_script:
            self.context.add_init_script(init_script)
        self.requests: list[str] = []
        self.refused: list[str] = []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.set_default_timeout(30_000)
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.local_prefixes = (*local_prefixes, "data:", "blob:")

    def _route(self, route: Any) -> None:
        if route.request.url.startswith(self.local_prefixes):
            route.continue_()
        else:
            self.refused.append(route.request.url)
            route.abort()

    def assert_offline(self, allowed_failures: tuple[str, ...] = ()) -> None:
        """No request left the machine, except refused ones the page is known to try."""
        unexpected = [url for url in self.refused if not url.startswith(allowed_failures)]
        assert not unexpected, f"the page tried to reach the network: {unexpected}"

    def close(self) -> None:
        self.context.close()


def check_screenshots(screenshots: list[Path], publish: bool) -> None:
    """Real pictures; with UPDATE_SCREENSHOTS=1 and ``publish``, copied to docs/images/."""
    for path in screenshots:
        assert path.stat().st_size > 20_000, f"{path} looks blank"
    if publish and os.environ.get("UPDATE_SCREENSHOTS") == "1":
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        for path in screenshots:
            shutil.copy(path, DOCS_IMAGES / path.name)
