"""Helpers to drive the kedro CLI in a throw-away project, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ENV = {
    **os.environ,
    "KEDRO_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
    "COLUMNS": "200",
    "PYTHONUNBUFFERED": "1",
}


def kedro(
    project: Path,
    *args: str,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """Run ``kedro ARGS`` in ``project`` and wait for it."""
    return subprocess.run(
        [sys.executable, "-m", "kedro", *args],
        cwd=project,
        env={**ENV, **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def start_kedro(
    project: Path,
    *args: str,
    env: dict[str, str] | None = None,
) -> subprocess.Popen:
    """Start ``kedro ARGS`` in ``project``; stdout and stderr merged, line-buffered text."""
    return subprocess.Popen(
        [sys.executable, "-m", "kedro", *args],
        cwd=project,
        env={**ENV, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )


def read_until(process: subprocess.Popen, marker: str) -> str:
    """Read the process's output until a line contains ``marker``; return what was read."""
    seen = []
    assert process.stdout is not None
    for line in process.stdout:
        seen.append(line)
        if marker in line:
            return "".join(seen)
    raise AssertionError(f"{marker!r} never appeared; output was:\n{''.join(seen)[-4000:]}")


def versions(project: Path, layer: str, name: str) -> list[str]:
    """Version folders of ``data/layer/name`` holding a complete file, oldest first."""
    root = project / "data" / layer / name
    return sorted(p.name for p in root.iterdir() if (p / name).is_file()) if root.exists() else []
