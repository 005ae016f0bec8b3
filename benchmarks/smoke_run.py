"""`make quick` as a newcomer runs it: a fresh clone, then the smoke run, timed and measured.

    python benchmarks/smoke_run.py [--repeat 3] [--out benchmarks/results/make_quick_cpu.json]

Clones this checkout's HEAD into a temporary folder beside it (so that ../shared/data is
where `make data` looks) and runs `make quick` there on the packages already installed
(the clone's `make install` is marked done, and its own `src/` comes first on the path;
so pip's time is not in the figure), and records its wall time, the peak resident memory
of the largest process (Linux's ``ru_maxrss`` of that run's process tree: the `kedro`
process, whose memory is the run's), and what the run's own outputs say: test accuracy,
loss, ECE before and after temperature scaling, the temperature, the training's line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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


def smoke_run() -> dict:
    """One `make quick` in a fresh clone: wall time, peak memory, what its outputs say."""
    # A folder beside this checkout, so that the clone's ../shared is this one's.
    with tempfile.TemporaryDirectory(dir=ROOT.parent) as tmp:
        clone = Path(tmp)
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        (clone / ".make").mkdir()
        (clone / ".make" / "installed").touch()
        env = {**os.environ, "PYTHONPATH": str(clone / "src"), "COLUMNS": "200"}
        with (clone / "make_quick.log").open("w+") as log:
            started = time.perf_counter()
            run = subprocess.Popen(
                ["make", "quick", f"PYTHON={sys.executable}"],
                cwd=clone,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            # This run's own usage (its largest process), not that of earlier repeats.
            _, status, usage = os.wait4(run.pid, 0)
            seconds = time.perf_counter() - started
            log.seek(0)
            output = log.read()
        if os.waitstatus_to_exitcode(status):
            raise SystemExit(f"make quick failed:\n{output[-6000:]}")
        outputs = clone / "data" / "quick"
        metrics = newest(outputs / "08_reporting", "test_metrics.json")
        calibration = newest(outputs / "08_reporting", "calibration_metrics.json")
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=clone, capture_output=True, text=True, check=True
        ).stdout.strip()
    trained = [line for line in output.splitlines() if "Trained " in line]
    return {
        "commit": commit,
        "wall_seconds": round(seconds, 1),
        "peak_rss_gb": round(usage.ru_maxrss * 1024 / 1e9, 2),
        "training_line": trained[-1].strip() if trained else None,
        "test_images": metrics["test_images"],
        "test_accuracy": metrics["accuracy"],
        "test_loss": metrics["loss"],
        "ece_before": calibration["before"]["ece"],
        "ece_after": calibration["after"]["ece"],
        "temperature": calibration["temperature"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/make_quick_cpu.json")
    # Fresh clones one after the other: time and memory vary from run to run.
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    runs = [smoke_run() for _ in range(args.repeat)]
    result = {
        "command": "make quick (kedro run --env quick) in a fresh clone",
        "script": " ".join(["python", "benchmarks/smoke_run.py", *sys.argv[1:]]),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "wall_seconds_range": [
            min(r["wall_seconds"] for r in runs),
            max(r["wall_seconds"] for r in runs),
        ],
        "peak_rss_gb_range": [
            min(r["peak_rss_gb"] for r in runs),
            max(r["peak_rss_gb"] for r in runs),
        ],
        **{
            key: value
            for key, value in runs[-1].items()
            if key not in ("wall_seconds", "peak_rss_gb")
        },
        "runs": [
            {
                "wall_seconds": r["wall_seconds"],
                "peak_rss_gb": r["peak_rss_gb"],
                "test_accuracy": r["test_accuracy"],
            }
            for r in runs
        ],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    for key, value in result.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
