"""Crash-safe saves for versioned fsspec datasets.

Kedro loads the newest version folder that holds the dataset's file. A save killed
half-way would leave such a folder with a half-written file, and the next run would load
it. Here every save writes to a hidden staging name in the version folder and renames it
into place only once complete: a rename within one folder is atomic on local disks, and
on object stores an object only becomes visible once fully written. A version folder
without the complete file is never matched by Kedro's lookup.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
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

# This machine, in the names of staging files and of MLflow runs' processes (no dots: they
# would split a staging file's name in the wrong places).
HOST = socket.gethostname().replace(".", "-")


def filesystem(filepath: str, credentials: dict | None, fs_args: dict | None) -> Any:
    """The fsspec filesystem of ``filepath``, opened as kedro-datasets open theirs (fsspec
    caches filesystems, so for those it is the dataset's own)."""
    protocol, _ = get_protocol_and_path(filepath)
    args = {key: value for key, value in (fs_args or {}).items() if "open_args" not in key}
    if protocol == "file":
        args.setdefault("auto_mkdir", True)
    return fsspec.filesystem(protocol, **(credentials or {}), **args)


def running(pid: int) -> bool:
    """Whether process ``pid`` of this machine still runs."""
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        pass
    return True


def _sweep(fs: Any, final: str) -> None:
    """Remove what saves killed outright (kill -9: no cleanup ran) left beside earlier
    versions: staging files of processes of this machine that no longer run, and their
    then empty version folders."""
    folder, _, name = final.rpartition("/")
    for leftover in fs.glob(f"{folder.rpartition('/')[0]}/*/.{name}.*.partial"):
        # .<name>.<host>.<pid>.<uuid>.partial
        host, pid, *_ = PurePosixPath(leftover).name.removeprefix(f".{name}.").split(".")
        if host == HOST and pid.isdigit() and not running(int(pid)):
            fs.rm(leftover, recursive=True)
            if not fs.ls(parent := PurePosixPath(leftover).parent.as_posix()):
                fs.rmdir(parent)


@contextmanager
def staged(fs: Any, final: str) -> Iterator[str]:
    """Yield a hidden staging path beside ``final``, renamed to ``final`` if the body
    succeeds and removed if it fails. The name says which process writes it, so that a
    later save removes it if that process was killed before it could."""
    _sweep(fs, final)
    folder, _, name = final.rpartition("/")
    staging = f"{folder}/.{name}.{HOST}.{os.getpid()}.{uuid.uuid4().hex}.partial"
    try:
        yield staging
        fs.mv(staging, final)
    finally:
        if fs.exists(staging):
            fs.rm(staging, recursive=True)


class VersionFolders:
    """Where a versioned file dataset keeps its versions: Kedro's layout,
    ``<filepath>/<version>/<file name>``, with the dataset's protocol; and which version a
    load reads."""

    _filepath: PurePosixPath
    _folder_protocol: str
    _folder_fs: Any
    _version: Version | None

    def resolve_load_version(self) -> str | None:
        """The version this run saved, once it has saved it; otherwise Kedro's choice (the
        ``--load-versions`` pin, else the newest). Kedro's newest alone would let a run's
        evaluate read a model that another run in the same folder saved meanwhile."""
        own = self._version.save if self._version and not self._version.load else None
        if own and self._folder_fs.exists(self.path_of(own)):
            return own
        return super().resolve_load_version()  # type: ignore[misc]

    @property
    def location(self) -> str:
        """The folder of the dataset's versions (named after its file)."""
        return get_filepath_str(self._filepath, self._folder_protocol)

    def path_of(self, version: str) -> str:
        """Where one version's file is."""
        path = self._filepath / version / self._filepath.name
        return get_filepath_str(path, self._folder_protocol)


class AtomicVersionMixin(VersionFolders):
    """Mix into a kedro-datasets dataset (just before it in the bases): a save runs that
    dataset's own save, unversioned, on a staging file, then renames it into the version
    folder. Only the dataset's constructor arguments and its save are used."""

    def __init__(self, *, filepath: str, **kwargs: Any) -> None:
        super().__init__(filepath=filepath, **kwargs)
        # The kedro-datasets class that this one makes crash-safe.
        self._stock = next(
            c for c in type(self).__mro__ if c.__module__.startswith("kedro_datasets")
        )
        self._arguments = {key: value for key, value in kwargs.items() if key != "version"}
        self._folder_protocol = get_protocol_and_path(filepath)[0]
        self._folder_fs = filesystem(filepath, kwargs.get("credentials"), kwargs.get("fs_args"))

    def save(self, data: Any) -> None:
        """The stock save into a staging file, renamed into the version folder."""
        final = get_filepath_str(self._get_save_path(), self._folder_protocol)
        with staged(self._folder_fs, final) as staging:
            self._stock(filepath=staging, **self._arguments).save(data)


class FileVersionedDataset(VersionFolders, AbstractVersionedDataset[Any, Any]):
    """Base of the project's own single-file versioned datasets: fsspec set-up, load and
    save arguments over class defaults, crash-safe saves (write inside
    ``with self.staged_save() as path:``) and ``exists``."""

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
        """Creates the dataset: ``filepath`` on any fsspec protocol (``s3://``,
        ``memory://``), ``load_args`` and ``save_args`` over the class defaults, Kedro's
        ``version``, ``credentials`` and ``fs_args`` for the filesystem, ``metadata``."""
        protocol, path = get_protocol_and_path(filepath, version)
        self._protocol = self._folder_protocol = protocol
        self._fs = self._folder_fs = filesystem(filepath, credentials, fs_args)
        self._load_args = {**self.DEFAULT_LOAD_ARGS, **(load_args or {})}
        self._save_args = {**self.DEFAULT_SAVE_ARGS, **(save_args or {})}
        self.metadata = metadata
        super().__init__(
            filepath=PurePosixPath(path),
            version=version,
            exists_function=self._fs.exists,
            glob_function=self._fs.glob,
        )

    def staged_save(self) -> Any:
        """A context manager yielding the path to write this save to (see ``staged``)."""
        return staged(self._fs, get_filepath_str(self._get_save_path(), self._protocol))

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
            return self._fs.exists(get_filepath_str(self._get_load_path(), self._protocol))
        except DatasetError:  # no version at all
            return False
