"""Starting the backend quietly, and commands that never start it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from kedro_cli import kedro

import alexnet_cifar10

BACKEND_MODULES = ("keras", "tensorflow", "jax")
# The folder this process imports the package from (src/, or a mutation run's copy of
# it): the child Python checks the same code.
SOURCE_ROOT = Path(alexnet_cifar10.__file__).parents[1]


def _python(code: str) -> subprocess.CompletedProcess:
    path = os.pathsep.join(filter(None, [str(SOURCE_ROOT), os.environ.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "PYTHONPATH": path},
    )


@pytest.mark.slow
def test_start_up_noise_is_held_back() -> None:
    result = _python(
        """
        from alexnet_cifar10.backend import start_quietly
        print(start_quietly())
        """
    )
    assert result.returncode == 0, result.stderr
    assert "cpu:0" in result.stdout.lower()
    assert result.stderr == ""


@pytest.mark.slow
def test_a_failed_start_shows_what_it_held_back() -> None:
    result = _python(
        """
        import os, sys, importlib
        from alexnet_cifar10 import backend

        def broken(name):
            os.write(2, b"the backend said why\\n")
            raise ImportError(name)

        backend.importlib.import_module = broken
        try:
            backend.start_quietly()
        except ImportError:
            sys.exit(3)
        """
    )
    assert result.returncode == 3
    assert "the backend said why" in result.stderr


def test_registry_catalog_and_pipelines_load_without_the_backend() -> None:
    """What `kedro registry list`, `kedro catalog` and `kedro viz` import: settings,
    pipelines, nodes and datasets. None of it may start Keras."""
    result = _python(
        """
        import sys
        import alexnet_cifar10.settings
        from alexnet_cifar10.pipeline_registry import producers, register_pipelines
        from alexnet_cifar10.datasets import KerasModelDataset
        from kedro.framework.project import configure_project
        configure_project("alexnet_cifar10")
        register_pipelines()
        producers()
        KerasModelDataset(filepath="m.keras")
        print(sorted(m for m in sys.modules if m.split(".")[0] in {modules}))
        """.replace("{modules}", repr(set(BACKEND_MODULES)))
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.slow
def test_kedro_registry_list_does_not_start_the_backend(project) -> None:
    result = kedro(project, "registry", "list")
    assert result.returncode == 0, result.stderr
    assert "- evaluate" in result.stdout
    assert "I0000" not in result.stdout + result.stderr
