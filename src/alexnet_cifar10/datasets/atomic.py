"""Crash-safe saves for versioned fsspec datasets.

Kedro loads the newest version folder that holds the dataset's file. A save that is
killed half-way would leave such a folder with a half-written file, and the next run
would load it. Here every save writes to a hidden staging name in the version folder
and renames it into place only once complete: a rename within one folder is atomic on
local disks, and on object stores an object only becomes visible once fully written.
A version folder without the complete file is never matched by Kedro's lookup.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
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


class AtomicVersionMixin:
    """Mix into an fsspec-backed versioned dataset (before it in the bases).

    For a kedro-datasets dataset, the mixin's ``save`` runs the dataset's own save against
    a staging path: it must write through ``self._get_save_path()`` and keep its filesystem
    in ``self._fs`` and protocol in ``self._protocol``, as they all do. A dataset that
    defines its own ``save`` writes inside ``with self._staged_save() as path:`` instead.
    """

    _staging_path: PurePosixPath | None = None
    _fs: Any
    _protocol: str
    _filepath: PurePosixPath

    @property
    def location(self) -> str:
        """The folder of the dataset's versions (named after its file)."""
        return get_filepath_str(self._filepath, self._protocol)

    def path_of(self, version: str) -> str:
        """Where one version's file is: Kedro's layout, <filepath>/<version>/<file name>."""
        return get_filepath_str(self._filepath / version / self._filepath.name, self._protocol)

    def saved_versions(self) -> list[str]:
        """The names of the version folders saved there, oldest first."""
        return sorted(PurePosixPath(path).name for path in self._fs.glob(f"{self.location}/*"))

    def _get_save_path(self) -> PurePosixPath:
        if self._staging_path is not None:
            return self._staging_path
        return super()._get_save_path()  # type: ignore[misc]

    def resolve_load_version(self) -> str | None:
        """During a staged save, the version being saved: Kedro's consistency check after
        the wrapped dataset's own save must not look for the file before it is published."""
        if self._staging_path is not None:
            return self.resolve_save_version()  # type: ignore[attr-defined,no-any-return]
        return super().resolve_load_version()  # type: ignore[misc,no-any-return]

    @contextmanager
    def _staged_save(self) -> Iterator[str]:
        """Yield the staging path to write to; rename it into place if the body succeeds."""
        final_path = super()._get_save_path()  # type: ignore[misc]
        staging = final_path.parent / f".{final_path.name}.{uuid.uuid4().hex}.partial"
        staging_str = get_filepath_str(staging, self._protocol)
        self._staging_path = staging
        try:
            yield staging_str
            self._staging_path = None
            self._fs.mv(staging_str, get_filepath_str(final_path, self._protocol))
        finally:
            self._staging_path = None
            if self._fs.exists(staging_str):
                self._fs.rm(staging_str)

    def save(self, data: Any) -> None:
        """Run the parent dataset's own save against the staging path."""
        with self._staged_save():
            super().save(data)  # type: ignore[misc]


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
