"""Data-parallel training on two devices of this CPU, each backend in its own Python (the
device count is fixed when the backend starts), and two JAX processes training one model."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from kedro_cli import ENV, kedro, make_project, model_card, start_kedro, versions
from test_run import VERSIONED

from alexnet_cifar10.backend import VIRTUAL_DEVICE_TIMEOUT
from alexnet_cifar10.datasets import KerasModelDataset

pytestmark = pytest.mark.slow

# XLA's backend optimisations take longer to compile than they save in these few steps.
FAST_COMPILE = "--xla_backend_optimization_level=0"
TWO_JAX_DEVICES = {
    "KERAS_BACKEND": "jax",
    # two_device_fit.py starts JAX itself: the timeout that a kedro run sets (backend.py).
    "XLA_FLAGS": " ".join(
        ["--xla_force_host_platform_device_count=2", FAST_COMPILE, VIRTUAL_DEVICE_TIMEOUT]
    ),
}
ENGINES = {"jax": "keras.distribution.DataParallel", "tensorflow": "tf.distribute.MirroredStrategy"}
# How far the two-device fit's weights may be from the one-device fit's, after two SGD
# steps of the same global batch from the same network and seed, without dropout
# (two_device_fit.py says why): |w2 - w1| as a share of |w1 - w0| (how far training moved
# them), and the largest single difference.
# - JAX: one program over a batch sharded on two devices; only the order of the sums
#   changes. Measured: 1.1e-05 and 2.9e-07 (the tolerance leaves 100 times that).
# - TensorFlow: BatchNorm is synchronized over the replicas (statistics of the whole
#   batch), and MirroredStrategy sums the replicas' gradients. Measured: 4.0e-03 and
#   1.2e-04.
TOLERANCE = {"jax": (1e-3, 1e-5), "tensorflow": (0.05, 1e-3)}


@pytest.mark.parametrize("backend", ["jax", "tensorflow"])
def test_two_devices_train_the_model_one_device_trains(backend: str, tmp_path: Path) -> None:
    env = TWO_JAX_DEVICES if backend == "jax" else {"KERAS_BACKEND": "tensorflow"}
    result = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("two_device_fit.py")), str(tmp_path)],
        env={**ENV, **env},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    run = json.loads((tmp_path / "result.json").read_text())
    assert run["devices_in_fit"] == 2
    assert run["devices_after"] == [1], "the saved model is a plain one-device model"
    assert run["distribution"] == {
        "strategy": "data_parallel",
        "engine": ENGINES[backend],
        "devices": ["cpu:0", "cpu:1"],
        "processes": 1,
        "global_batch": 16,
        "per_device_batch": 8,
    }
    announce = [line for line in run["log"] if line.startswith("Training on cpu:0, cpu:1 (")]
    assert len(announce) == 1
    assert (
        f"; data_parallel with {ENGINES[backend]}, 1 process, 8 images per device)" in (announce[0])
    )
    assert (
        "Left out the last 1 of 17 validation images: the 2 devices split every batch evenly, "
        "the last partial one too."
    ) in run["log"]
    relative, largest = TOLERANCE[backend]
    assert run["relative_difference"] < relative
    assert run["max_difference"] < largest
    # Loaded here, on this process's one device (TensorFlow), it predicts as it did there.
    model = KerasModelDataset(filepath=str(tmp_path / "model.keras")).load()
    predictions = model.predict(np.load(tmp_path / "probe.npy"), verbose=0)
    np.testing.assert_allclose(predictions, np.load(tmp_path / "predictions.npy"), atol=1e-5)


def test_a_batch_the_devices_cannot_split_is_refused_before_any_node(project: Path) -> None:
    result = kedro(
        project, "run", "--env", "test",
        "--params", "training.distribution=data_parallel,training.batch_size=33",
        env=TWO_JAX_DEVICES,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-3000:]
    assert result.log.splitlines()[-1].endswith(
        "Run stopped: Parameter 'training.batch_size' must be a multiple of the 2 devices that "
        "data_parallel splits every batch over (say 32 or 34); got 33."
    )
    assert "Traceback" not in output
    assert not (project / "data" / "test" / "05_model_input").exists()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


def test_two_processes_train_one_model_and_write_one_set_of_versions(tmp_path: Path) -> None:
    """Two machines, as far as the run can tell: two JAX processes with one CPU device
    each and a project copy each, joined through the KERAS_DISTRIBUTION_* variables."""
    projects = [make_project(tmp_path / f"machine{index}") for index in range(2)]
    cluster = {
        "KERAS_BACKEND": "jax",
        "XLA_FLAGS": FAST_COMPILE,
        # Collectives between CPU processes: gloo, the default of JAX 0.10, named for others.
        "JAX_CPU_COLLECTIVES_IMPLEMENTATION": "gloo",
        "KERAS_DISTRIBUTION_JOB_ADDRESSES": f"localhost:{_free_port()}",
        "KERAS_DISTRIBUTION_NUM_PROCESSES": "2",
    }
    params = "training.distribution=data_parallel,training.jit_compile=true"
    command = ("run", "--env", "test", "--params", params)
    runs = [
        start_kedro(project, *command, env={**cluster, "KERAS_DISTRIBUTION_PROCESS_ID": str(i)})
        for i, project in enumerate(projects)
    ]
    try:
        outputs = [run.communicate(timeout=600)[0] for run in runs]
    finally:
        # If one process fails, the other would wait for it until JAX's own time-out.
        for run in runs:
            run.kill()
    for run, output in zip(runs, outputs, strict=True):
        assert run.returncode == 0, output[-4000:]
    first, second = projects
    written = {
        f"{layer}/{name}": versions(first, layer, name)
        for layer, names in VERSIONED.items()
        for name in names
    }
    # Every dataset once, all of them the one run's version.
    assert len({tuple(found) for found in written.values()}) == 1, written
    [version] = written["06_models/alexnet.keras"]
    saved = sorted(p.name for p in (second / "data").iterdir() if not p.name.startswith("."))
    assert saved == ["01_raw"]
    assert (
        "Process 1 of 2 saves nothing: process 0 saves this run's 24 outputs."
        in (second / "info.log").read_text()
    )
    facts = model_card(first, version)["run"]
    assert facts["distribution"]["processes"] == 2
    assert len(facts["distribution"]["devices"]) == 2
    assert facts["distribution"]["per_device_batch"] == 16
