"""The test suite as CI runs it: a fresh clone, then `make test-fast` and `bash .ci/run`.

    python benchmarks/test_suite.py [--out benchmarks/results/test_suite_cpu.json]

Clones this checkout's HEAD beside it (so that ../shared/data is the real CIFAR-10 the
tests may use), marks its `make install-test` done (the packages already installed here,
its own `src/` first on the path, so pip's time is not in the figure), and runs the fast
tier, then CI's entry point; records each one's wall time, what pytest counted and its
exit status. A failing suite is recorded too, and the script then exits 1.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from result_file import write_result

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {
    "make test-fast": ["make", "test-fast", f"PYTHON={sys.executable}"],
    "bash .ci/run": ["bash", ".ci/run"],
}
COUNTS = re.compile(r"(\d+) (passed|failed|skipped|errors?|deselected)")


def run(command: list[str], clone: Path) -> dict:
    """Wall seconds, pytest's counts of its last summary line and the exit status."""
    env = {**os.environ, "PYTHONPATH": str(clone / "src"), "PYTHON": sys.executable}
    started = time.perf_counter()
    result = subprocess.run(
        command, cwd=clone, env=env, capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - started
    summary = [line for line in result.stdout.splitlines() if COUNTS.search(line)]
    counts = {kind: int(n) for n, kind in COUNTS.findall(summary[-1])} if summary else {}
    if result.returncode:
        print(result.stdout[-4000:], result.stderr[-2000:], file=sys.stderr)
    return {"wall_seconds": round(seconds, 1), "exit_status": result.returncode, **counts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/test_suite_cpu.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=ROOT.parent) as tmp:
        clone = Path(tmp)
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        (clone / ".make").mkdir()
        for stamp in ("installed", "installed-test"):
            (clone / ".make" / stamp).touch()
        runs = {name: run(command, clone) for name, command in COMMANDS.items()}
    write_result(args.out, runs)
    print(args.out.read_text())
    if any(r["exit_status"] for r in runs.values()):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
