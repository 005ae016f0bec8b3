"""`make quick` as a newcomer runs it: a fresh clone, then the smoke run, timed and measured.

    python benchmarks/smoke_run.py [--out benchmarks/results/make_quick_cpu.json]

Clones this checkout's HEAD into a temporary folder beside it (so that ../shared/data is
where `make data` looks) and runs `make quick` there on the packages already installed
(the clone's `make install` is marked done, and its own `src/` comes first on the path;
so pip's time is not in the figure), and records its wall time, the peak resident memory
of the largest process (Linux's ``ru_maxrss`` of the waited-for children: the `kedro`
process, whose memory is the run's), and what the run's own outputs say: test accuracy,
loss, ECE before and after temperature scaling, the temperature, the training's line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def newest(folder: Path, name: str) -> dict:
    """The newest version of a JSON output (Kedro's layout)."""
    version = sorted(p.name for p in (folder / name).iterdir() if (p / name).is_file())[-1]
    return json.loads((folder / name / version / name).read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/make_quick_cpu.json")
    args = parser.parse_args()
    # A folder beside this checkout, so that the clone's ../shared is this one's.
    with tempfile.TemporaryDirectory(dir=ROOT.parent) as tmp:
        clone = Path(tmp)
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        (clone / ".make").mkdir()
        (clone / ".make" / "installed").touch()
        env = {**os.environ, "PYTHONPATH": str(clone / "src"), "COLUMNS": "200"}
        started = time.perf_counter()
        run = subprocess.run(
            ["make", "quick", f"PYTHON={sys.executable}"],
            cwd=clone,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.perf_counter() - started
        if run.returncode:
            raise SystemExit(f"make quick failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        outputs = clone / "data" / "quick"
        metrics = newest(outputs / "08_reporting", "test_metrics.json")
        calibration = newest(outputs / "08_reporting", "calibration_metrics.json")
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=clone, capture_output=True, text=True, check=True
        ).stdout.strip()
    trained = [line for line in run.stdout.splitlines() if "Trained " in line]
    result = {
        "command": "make quick (kedro run --env quick) in a fresh clone",
        "script": " ".join(["python", "benchmarks/smoke_run.py", *sys.argv[1:]]),
        "commit": commit,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "wall_seconds": round(seconds, 1),
        "peak_rss_gb": round(peak_kib * 1024 / 1e9, 2),
        "training_line": trained[-1].strip() if trained else None,
        "test_images": metrics["test_images"],
        "test_accuracy": metrics["accuracy"],
        "test_loss": metrics["loss"],
        "ece_before": calibration["before"]["ece"],
        "ece_after": calibration["after"]["ece"],
        "temperature": calibration["temperature"],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    for key, value in result.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
