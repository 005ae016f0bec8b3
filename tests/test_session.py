"""The project's session: a save version of its own for every run, pipelines by name."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from kedro.io.core import VERSION_FORMAT, generate_timestamp

from alexnet_cifar10.pipeline_registry import UnknownPipelineError
from alexnet_cifar10.session import LAST_VERSION, ProjectSession, claim_save_version


def _claims(project: str, count: int) -> list[str]:
    return [claim_save_version(Path(project)) for _ in range(count)]


def test_sessions_started_together_take_versions_of_their_own(tmp_path: Path) -> None:
    """Four processes claiming 25 versions each, as fast as they can: 100 distinct
    versions, each a version Kedro itself could have drawn."""
    with ProcessPoolExecutor(4) as pool:
        claimed = [v for part in pool.map(_claims, [str(tmp_path)] * 4, [25] * 4) for v in part]
    assert len(set(claimed)) == 100
    for version in claimed:
        datetime.strptime(version, VERSION_FORMAT)  # raises for any other form
        assert len(version) == len(generate_timestamp())
    assert (tmp_path / LAST_VERSION).read_text() == max(claimed)


def test_a_version_is_now_or_the_millisecond_after_the_last_one(tmp_path: Path) -> None:
    before = generate_timestamp()
    first = claim_save_version(tmp_path)
    assert before <= first <= generate_timestamp()
    # A version taken ahead of the clock (another machine's, say) is followed, not repeated.
    ahead = datetime.now(tz=timezone.utc) + timedelta(seconds=5)
    (tmp_path / LAST_VERSION).write_text(ahead.strftime(VERSION_FORMAT)[:-4] + "Z")
    later = claim_save_version(tmp_path)
    expected = (ahead + timedelta(milliseconds=1)).strftime(VERSION_FORMAT)[:-4] + "Z"
    assert later == expected


@pytest.fixture
def session(project: Path) -> ProjectSession:
    bootstrap_project(project)
    return ProjectSession.create(project_path=project, env="test")


def test_a_session_saves_under_the_version_it_claimed(session: ProjectSession) -> None:
    version = (Path(session._project_path) / LAST_VERSION).read_text()
    assert session.session_id == session.store["session_id"] == version


def test_a_mistyped_pipeline_lists_the_pipelines(session: ProjectSession) -> None:
    with pytest.raises(UnknownPipelineError) as raised:
        session.run(pipeline_names=["evalute"])
    assert str(raised.value) == (
        "No pipeline named 'evalute'; the pipelines are: __default__, data_processing, "
        "evaluate, export, features, predict, robustness, training."
    )


def test_kedros_own_session_names_a_mistyped_pipeline_too(project: Path) -> None:
    """No ImportError about a module that does not exist: Kedro's own answer."""
    bootstrap_project(project)
    with KedroSession.create(project_path=project, env="test") as kedro_session:
        with pytest.raises(ValueError, match="Failed to find the pipeline named 'evalute'"):
            kedro_session.run(pipeline_names=["evalute"])
