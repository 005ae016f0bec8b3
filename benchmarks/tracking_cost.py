"""Wall time of `kedro run --env test` with MLflow tracking on against tracking off.

    python benchmarks/tracking_cost.py [--runs 3] [--keep DIR]

In a throw-away copy of the project with the tests' synthetic CIFAR-10 archive
(tests/kedro_cli.make_project): a first tracked run creates the data and the MLflow store
(timed, reported apart: a new SQLite database is created once per project), then
``--runs`` runs with tracking off and ``--runs`` with tracking on, alternating, each a
fresh ``python -m kedro run --env test`` as a user types it. The switch is kedro-mlflow's
own: tracking off lists every pipeline under ``tracking.disable_tracking.pipelines`` in
conf/test/mlflow.yml; tracking on is conf/base/mlflow.yml as it is. With kedro-mlflow
installed, Kedro imports MLflow for its command-line plugin in both arms, so the
difference is what tracking itself costs (opening the store, the MLflow run, its records).
Ratio = on / off, of the median runs and of the fastest ones (the least disturbed, on a
shared machine), and the median difference between each tracked run and the untracked run
just before it.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from kedro_cli import ENV, make_project  # noqa: E402

# Every pipeline of the project: the packages of src/alexnet_cifar10/pipelines.
PIPELINES = sorted(
    path.parent.name for path in (ROOT / "src/alexnet_cifar10/pipelines").glob("*/pipeline.py")
)

from result_file import write_result  # noqa: E402


def kedro_run(project: Path, tracking: bool) -> float:
    """Seconds of one `kedro run --env test`, tracking on or off; stops on failure."""
    switch = project / "conf" / "test" / "mlflow.yml"
    if tracking:
        switch.unlink(missing_ok=True)
    else:
        every = ", ".join(["__default__", *PIPELINES])
        switch.write_text(f"tracking:\n  disable_tracking:\n    pipelines: [{every}]\n")
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "kedro", "run", "--env", "test"],
        cwd=project,
        env=ENV,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(result.stdout[-3000:] + result.stderr[-3000:])
    tracked = "Tracking this run in MLflow" in result.stdout + result.stderr
    if tracked != tracking:
        raise SystemExit(f"the run was {'' if tracked else 'not '}tracked")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per arm")
    parser.add_argument("--keep", type=Path, help="make the project copy here and keep it")
    parser.add_argument("--out", type=Path, help="also write the figures here as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        project = make_project((args.keep or Path(scratch)) / "project")
        cpu = platform.processor() or platform.machine()
        print(
            f"{os.cpu_count()}-core {cpu} CPU, Python {platform.python_version()}, "
            f"Kedro {version('kedro')}, kedro-mlflow {version('kedro-mlflow')}, "
            f"MLflow {version('mlflow')}, TensorFlow {version('tensorflow')}"
        )
        first = kedro_run(project, tracking=True)
        print(f"first run, new MLflow store: {first:.1f} s")
        seconds: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(args.runs):
            for tracking in (False, True):
                seconds[tracking].append(kedro_run(project, tracking))
                print(f"tracking {'on ' if tracking else 'off'}: {seconds[tracking][-1]:.1f} s")
    # Each tracked run follows an untracked one: their difference drifts least with the load.
    pairs = [on - off for off, on in zip(seconds[False], seconds[True], strict=True)]
    print(f"tracked minus the untracked run before it: median {statistics.median(pairs):.1f} s")
    for name, pick in (("median", statistics.median), ("fastest", min)):
        off, on = pick(seconds[False]), pick(seconds[True])
        print(
            f"{name}: off {off:.1f} s, on {on:.1f} s: tracking adds {on - off:.1f} s a run, "
            f"ratio on/off {on / off:.2f}"
        )
    if args.out:
        write_result(
            args.out,
            {
                "command": "kedro run --env test, MLflow tracking off and on",
                "first_run_seconds": first,
                "off_seconds": seconds[False],
                "on_seconds": seconds[True],
                "median_ratio": statistics.median(seconds[True])
                / statistics.median(seconds[False]),
                "fastest_ratio": min(seconds[True]) / min(seconds[False]),
                "median_added_seconds": statistics.median(pairs),
            },
        )


if __name__ == "__main__":
    main()
