"""Starting the deep-learning backend without its start-up noise.

TensorFlow 2.21 writes lines such as 'oneDNN custom operations are on', 'Could not find
cuda drivers' and 'failed call to cuInit' to the process's standard error from C++,
before its own log settings apply; none of them is something a user can act on. They
are held back while Keras starts and picks its devices, and shown only if that fails.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from alexnet_cifar10.distribution import join_cluster


@contextmanager
def _stderr_held_back() -> Iterator[None]:
    """Point file descriptor 2 (C++ code writes there too) at a temporary file; replay
    what it caught if the body fails."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            caught.seek(0)
            os.write(2, caught.read())
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


# Ten minutes: longer than any step of this project's fits on a loaded machine.
VIRTUAL_DEVICE_TIMEOUT = "--xla_cpu_collective_call_terminate_timeout_seconds=600"


@functools.cache
def start_quietly() -> list[str]:
    """Import Keras and its backend, join the run's other processes if it has several
    (``KERAS_DISTRIBUTION_*``), and list the devices, quietly, once; return the devices."""
    # Keeps TensorFlow's later C++ info and warning lines quiet too, unless set by the user.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # Virtual CPU devices (XLA's --xla_force_host_platform_device_count) meet in each
    # all-reduce, and XLA aborts the process (SIGABRT, "Termination timeout for all
    # reduce") when one lags past its timeout: on a loaded machine a device's thread can.
    # JAX reads XLA_FLAGS when it starts, so here, unless the user set the timeout.
    flags = os.environ.get("XLA_FLAGS", "")
    if "host_platform_device_count" in flags and "collective_call_terminate" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {VIRTUAL_DEVICE_TIMEOUT}".strip()
    with _stderr_held_back():
        # Keras imports TensorFlow whenever it is installed, whatever the backend (to seed
        # it, and for its data adapters): start it here too rather than noisily later.
        with contextlib.suppress(ImportError):  # not installed: Keras runs without it
            importlib.import_module("tensorflow")
        keras = importlib.import_module("keras")
        # Before the devices are listed: jax.distributed.initialize must come before JAX
        # starts its backends, and the list must hold every process's devices.
        join_cluster()
        return keras.distribution.list_devices()
