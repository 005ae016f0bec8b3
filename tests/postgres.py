"""A throw-away PostgreSQL server for the tests: initdb into a temporary folder, on a free
loopback port, stopped and removed afterwards. PostgreSQL refuses to run as root: as root
the server runs as the ``postgres`` user (the Debian package's)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from browser import free_port


def _binary(name: str) -> str | None:
    """A PostgreSQL program on PATH, or in Debian's versioned folder."""
    return shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))), None
    )


def available() -> bool:
    return _binary("initdb") is not None and _binary("pg_ctl") is not None


def _as_server_user(*command: str) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else list(command)


def _run(command: list[str]) -> None:
    subprocess.run(command, check=True, capture_output=True, text=True, timeout=120)


@contextmanager
def server(database: str) -> Iterator[str]:
    """Start a server with ``database`` in it; yield its URL (user postgres, no password:
    the server trusts local connections)."""
    folder = Path(tempfile.mkdtemp(prefix="pg-test-"))
    data = folder / "data"
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
    port = free_port()
    try:
        _run(_as_server_user(_binary("initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"))
        options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        _run(
            _as_server_user(
                _binary("pg_ctl"),
                "-D",
                str(data),
                "-o",
                options,
                "-l",
                str(folder / "log"),
                "-w",
                "start",
            )
        )
        try:
            createdb = [_binary("createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres"]
            _run([*createdb, database])
            yield f"postgresql://postgres@127.0.0.1:{port}/{database}"
        finally:
            _run(_as_server_user(_binary("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
