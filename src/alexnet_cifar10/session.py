"""The project's Kedro session (``SESSION_CLASS`` in settings.py)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from kedro.framework.session import KedroSession
from kedro.io.core import VERSION_FORMAT, generate_timestamp
from kedro.utils import find_kedro_project

from alexnet_cifar10.lazy import LazyModule
from alexnet_cifar10.pipeline_registry import check_pipeline_names

filelock = LazyModule("filelock")

# The newest save version a session of this project has taken, and its lock.
LAST_VERSION = Path("data") / ".last_save_version"


def _after(version: str) -> str:
    """The save version one millisecond after ``version``."""
    later = datetime.strptime(version, VERSION_FORMAT) + timedelta(milliseconds=1)
    return later.strftime(VERSION_FORMAT)[:-4] + "Z"


def claim_save_version(project_path: Path) -> str:
    """Now, as a Kedro save version, or the millisecond after the newest one an earlier
    session of this project took, whichever is later."""
    record = project_path / LAST_VERSION
    record.parent.mkdir(parents=True, exist_ok=True)
    with filelock.FileLock(f"{record}.lock", timeout=60):
        version = generate_timestamp()
        if record.is_file():
            version = max(version, _after(record.read_text().strip()))
        record.write_text(version)
    return version


class ProjectSession(KedroSession):
    """A ``KedroSession`` whose runs never share a save version, and which lists the
    pipelines when asked to run one that does not exist.

    Kedro's save version is the session's start time to the millisecond, so two runs
    started together (a seed sweep with ``&``) could draw the same one, and the second
    would stop at its first save. Each session here claims a version no earlier session
    of the project has taken (``claim_save_version``), under a lock.
    """

    def __init__(  # noqa: PLR0913
        self,
        session_id: str,
        package_name: str | None = None,
        project_path: Path | str | None = None,
        save_on_close: bool = False,
        conf_source: str | None = None,
    ) -> None:
        # Kedro's own default for the project path, resolved here to claim the version in it.
        root = Path(project_path or find_kedro_project(Path.cwd()) or Path.cwd()).resolve()
        super().__init__(claim_save_version(root), package_name, root, save_on_close, conf_source)

    def run(  # type: ignore[override]
        self,
        pipeline_name: str | None = None,
        pipeline_names: list[str] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Kedro's run, after checking that every pipeline it names exists."""
        check_pipeline_names(pipeline_names or ([pipeline_name] if pipeline_name else []))
        return super().run(pipeline_name=pipeline_name, pipeline_names=pipeline_names, **kwargs)
