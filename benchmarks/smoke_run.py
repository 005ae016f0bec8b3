"""`make quick` as a newcomer runs it: a fresh clone, then the smoke run, timed and measured.

    python benchmarks/smoke_run.py [--repeat 3] [--out benchmarks/results/make_quick_cpu.json]

Clones this checkout's HEAD into a temporary folder beside it (so that ../shared/data is
where `make data` looks) and runs `make quick` there on the packages already installed
(the clone's `make install` is marked done, and its own `src/` comes first on the path;
so pip's time is not in the figure), and records its wall time, the peak resident memory
of the largest process (Linux's ``ru_maxrss`` of that run's process tree: the `kedro`
process, whose memory is the run's), and what the run's own outputs say: test accuracy,
loss, ECE before and after temperature scaling, the temperature, the training's line.

In the last clone it then runs, timed the same way, the pipelines that read the smoke model
(`kedro run --env quick --pipelines robustness`, `features`, `export`) and
`kedro run --pipelines data_processing` on the real CIFAR-10 (twice), and keeps what their
outputs say: the robustness summary, the linear probe's metrics, the
ONNX parity report, the dataset report.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from result_file import write_result

ROOT = Path(__file__).resolve().parents[1]
# `kedro` arguments run in the last clone after the smoke run.
FOLLOW_UPS = {
    "robustness": ["run", "--env", "quick", "--pipelines", "robustness"],
    "features": ["run", "--env", "quick", "--pipelines", "features"],
    "export": ["run", "--env", "quick", "--pipelines", "export"],
    "data_processing": ["run", "--pipelines", "data_processing"],
    "data_processing again": ["run", "--pipelines", "data_processing"],
}


def newest(folder: Path, name: str) -> dict:
    """The newest version of a JSON output (Kedro's layout)."""
    version = sorted(p.name for p in (folder / name).iterdir() if (p / name).is_file())[-1]
    return json.loads((folder / name / version / name).read_text())


def timed(command: list[str], clone: Path) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (GB) of the largest process, and the output of ``command``."""
    env = {**os.environ, "PYTHONPATH": str(clone / "src"), "COLUMNS": "200"}
    with (clone / "command.log").open("w+") as log:
        started = time.perf_counter()
        run = subprocess.Popen(command, cwd=clone, env=env, stdout=log, stderr=subprocess.STDOUT)
        # This command's own usage (its largest process), not that of earlier ones.
        _, status, usage = os.wait4(run.pid, 0)
        seconds = time.perf_counter() - started
        log.seek(0)
        output = log.read()
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"{' '.join(command)} failed:\n{output[-6000:]}")
    return round(seconds, 1), round(usage.ru_maxrss * 1024 / 1e9, 2), output


def smoke_run(follow_ups: bool) -> dict:
    """One `make quick` in a fresh clone: wall time, peak memory, what its outputs say."""
    # A folder beside this checkout, so that the clone's ../shared is this one's.
    with tempfile.TemporaryDirectory(dir=ROOT.parent) as tmp:
        clone = Path(tmp)
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        (clone / ".make").mkdir()
        (clone / ".make" / "installed").touch()
        seconds, peak, output = timed(["make", "quick", f"PYTHON={sys.executable}"], clone)
        reporting = clone / "data" / "quick" / "08_reporting"
        metrics = newest(reporting, "test_metrics.json")
        calibration = newest(reporting, "calibration_metrics.json")
        trained = [line for line in output.splitlines() if "Trained " in line]
        run = {
            "wall_seconds": seconds,
            "peak_rss_gb": peak,
            "training_line": trained[-1].strip() if trained else None,
            "test_images": metrics["test_images"],
            "test_accuracy": metrics["accuracy"],
            "test_loss": metrics["loss"],
            "ece_before": calibration["before"]["ece"],
            "ece_after": calibration["after"]["ece"],
            "temperature": calibration["temperature"],
            "calibration": calibration,
        }
        if follow_ups:
            run["follow_ups"] = {}
            for name, command in FOLLOW_UPS.items():
                seconds, peak, _ = timed([sys.executable, "-m", "kedro", *command], clone)
                run["follow_ups"][name] = {
                    "command": " ".join(["kedro", *command]),
                    "wall_seconds": seconds,
                    "peak_rss_gb": peak,
                }
            run["robustness_summary"] = newest(
                clone / "data" / "quick" / "08_reporting", "robustness_summary.json"
            )
            run["linear_probe_metrics"] = newest(
                clone / "data" / "quick" / "08_reporting", "linear_probe_metrics.json"
            )
            run["export_parity"] = newest(
                clone / "data" / "quick" / "08_reporting", "export_parity.json"
            )
            run["dataset_report"] = newest(clone / "data" / "08_reporting", "dataset_report.json")
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/make_quick_cpu.json")
    # Fresh clones one after the other: time and memory vary from run to run.
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    runs = [smoke_run(follow_ups=index == args.repeat - 1) for index in range(args.repeat)]
    last = runs[-1]
    write_result(
        args.out,
        {
            "command": "make quick (kedro run --env quick) in a fresh clone",
            "wall_seconds_range": [
                min(r["wall_seconds"] for r in runs),
                max(r["wall_seconds"] for r in runs),
            ],
            "peak_rss_gb_range": [
                min(r["peak_rss_gb"] for r in runs),
                max(r["peak_rss_gb"] for r in runs),
            ],
            "runs": [
                {key: r[key] for key in ("wall_seconds", "peak_rss_gb", "test_accuracy")}
                for r in runs
            ],
            "last_run": {k: v for k, v in last.items() if k not in ("wall_seconds", "peak_rss_gb")},
        },
    )
    print(args.out.read_text())


if __name__ == "__main__":
    main()
