"""Kedro's own session runs the project: a mistyped pipeline is named in its answer."""

from __future__ import annotations

from pathlib import Path

import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project


def test_kedros_own_session_names_a_mistyped_pipeline(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No ImportError about a module that does not exist: Kedro's own answer."""
    monkeypatch.chdir(project)  # where kedro-mlflow's hook opens the project's store
    bootstrap_project(project)
    with KedroSession.create(project_path=project, env="test") as kedro_session:
        with pytest.raises(ValueError, match="Failed to find the pipeline named 'evalute'"):
            kedro_session.run(pipeline_names=["evalute"])
