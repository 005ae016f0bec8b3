"""Crash-safe saves for versioned fsspec datasets.

Kedro loads the newest version folder that holds the dataset's file. A save that is
killed half-way would leave such a folder with a half-written file, and the next run
would load it. Here every save writes to a hidden staging name in the version folder
and renames it into place only once complete: a rename within one folder is atomic on
local disks, and on object stores an object only becomes visible once fully written.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from copy import deepcopy
from pathlib import PurePosixPath
from typing import Any

import fsspec
from kedro.io.core import (
    AbstractVersionedDataset,
    DatasetError,
    Version,
    get_filepath_str,
    get_protocol_and_path,
)

logger = logging.getLogger(__name__)


class AtomicVersionMixin:
    """Mix into an fsspec-backed versioned dataset (before it in the bases).

    For a kedro-datasets dataset, the mixin's ``save`` runs the dataset's own save against
    a staging path: it must write through ``self._get_save_path()`` and keep its filesystem
    in ``self._fs`` and protocol in ``self._protocol``, as they all do. A dataset that
    defines its own ``save`` writes inside ``with self._staged_save() as path:`` instead.
    """

    _staging_path: PurePosixPath | None = None
    # The version this dataset object saved: the run reads back its own save.
    _saved_version: str | None = None
    _fs: Any
    _protocol: str
    _filepath: PurePosixPath
    _glob_function: Callable[[str], Any]
    _exists_function: Callable[[str], bool]

    def _get_save_path(self) -> PurePosixPath:
        if self._staging_path is not None:
            return self._staging_path
        return super()._get_save_path()  # type: ignore[misc]

    @contextmanager
    def _staged_save(self) -> Iterator[str]:
        """Yield the staging path to write to; rename it into place if the body succeeds."""
        final_path = super()._get_save_path()  # type: ignore[misc]
        staging = final_path.parent / f".{final_path.name}.{uuid.uuid4().hex}.partial"
        staging_str = get_filepath_str(staging, self._protocol)
        self._staging_path = staging
        try:
            yield staging_str
            self._publish(staging_str, get_filepath_str(final_path, self._protocol))
            self._saved_version = self.resolve_save_version()  # type: ignore[attr-defined]
        finally:
            self._staging_path = None
            if self._fs.exists(staging_str):
                self._fs.rm(staging_str)

    def _publish(self, staging: str, final: str) -> None:
        if self._protocol != "file":
            self._fs.mv(staging, final)
            return
        try:
            # A hard link never replaces an existing file, unlike a rename: two runs that
            # drew the same version timestamp cannot overwrite each other.
            os.link(staging, final)
        except FileExistsError as exc:
            raise DatasetError(
                f"'{final}' already exists: another run saved the same version at the same "
                "moment. Nothing was overwritten; run again."
            ) from exc
        except OSError:
            os.replace(staging, final)  # a filesystem without hard links

    def save(self, data: Any) -> None:
        """Run the parent dataset's own save against the staging path."""
        with self._staged_save():
            # The parent's unwrapped save: Kedro's version bookkeeping wraps this method.
            super().save.__wrapped__(self, data)  # type: ignore[misc]

    def _fetch_latest_load_version(self) -> str:
        # After a save, a load without a --load-versions pin reads that save back, not a
        # newer version that another run, started at the same time, saved meanwhile.
        if self._saved_version is not None:
            return self._saved_version
        version: str = super()._fetch_latest_load_version()  # type: ignore[misc]
        filename = self._filepath.name
        pattern = str(self._filepath / "*")
        for folder in sorted(self._glob_function(pattern), reverse=True):
            name = PurePosixPath(folder).name
            if name <= version:
                break
            if not self._exists_function(str(PurePosixPath(folder) / filename)):
                logger.warning(
                    "Skipped incomplete version %s of %s (no complete '%s' in it: "
                    "a save was interrupted); loading version %s instead.",
                    name,
                    self._filepath,
                    filename,
                    version,
                )
        return version


class FileVersionedDataset(AtomicVersionMixin, AbstractVersionedDataset[Any, Any]):
    """Base of the project's own single-file versioned datasets: fsspec set-up, load and
    save arguments over class defaults, crash-safe saves (write inside
    ``with self._staged_save() as path:``) and ``exists``."""

    DEFAULT_LOAD_ARGS: dict[str, Any] = {}
    DEFAULT_SAVE_ARGS: dict[str, Any] = {}

    def __init__(  # noqa: PLR0913
        self,
        *,
        filepath: str,
        load_args: dict[str, Any] | None = None,
        save_args: dict[str, Any] | None = None,
        version: Version | None = None,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Creates the dataset.

        Args:
            filepath: Where the file lives; any fsspec protocol (``s3://``, ``memory://``).
            load_args: Passed to the loader, over ``DEFAULT_LOAD_ARGS``.
            save_args: Passed to the writer, over ``DEFAULT_SAVE_ARGS``.
            version: Load and save versions (Kedro fills it for ``versioned: true``).
            credentials: Passed to the fsspec filesystem.
            fs_args: Extra fsspec filesystem arguments.
            metadata: Free-form metadata, used by kedro-viz.
        """
        protocol, path = get_protocol_and_path(filepath, version)
        fs_args = deepcopy(fs_args) or {}
        if protocol == "file":
            fs_args.setdefault("auto_mkdir", True)
        self._protocol = protocol
        self._fs = fsspec.filesystem(protocol, **(credentials or {}), **fs_args)
        self._load_args = {**self.DEFAULT_LOAD_ARGS, **(load_args or {})}
        self._save_args = {**self.DEFAULT_SAVE_ARGS, **(save_args or {})}
        self.metadata = metadata
        super().__init__(
            filepath=PurePosixPath(path),
            version=version,
            exists_function=self._fs.exists,
            glob_function=self._fs.glob,
        )

    def _describe(self) -> dict[str, Any]:
        return {
            "filepath": self._filepath,
            "protocol": self._protocol,
            "load_args": self._load_args,
            "save_args": self._save_args,
            "version": self._version,
        }

    def _exists(self) -> bool:
        try:
            load_path = get_filepath_str(self._get_load_path(), self._protocol)
        except DatasetError:
            return False
        return self._fs.exists(load_path)
