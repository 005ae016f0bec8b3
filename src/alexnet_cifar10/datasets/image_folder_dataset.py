"""Kedro dataset for a folder of pictures a person fills by hand."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any

import fsspec
from kedro.io.core import AbstractDataset, DatasetError
from kedro_datasets.partitions import PartitionedDataset

from alexnet_cifar10.datasets.user_image_dataset import UserImageDataset
from alexnet_cifar10.pictures import SAFE_FORMATS, ImageRefusedError, UserImage


def _hidden(partition: str) -> bool:
    return any(part.startswith(".") for part in PurePosixPath(partition).parts)


def _refused_if_unreadable(load: Callable[[], UserImage]) -> Callable[[], UserImage]:
    """``load``, with a file the dataset could not load refused (its reason: the last line
    of Kedro's message), so that a caller records it and goes on with the next file."""

    def checked() -> UserImage:
        try:
            return load()
        except DatasetError as error:
            raise ImageRefusedError(str(error).splitlines()[-1]) from error

    return checked


class ImageFolderDataset(PartitionedDataset):
    """Every file under a folder (sub-folders too), each read by ``UserImageDataset``.

    kedro-datasets' ``partitions.PartitionedDataset`` with two differences for a folder
    that a person fills: hidden files and folders (``.DS_Store``, ``.ipynb_checkpoints/``)
    are left out, and an empty or missing folder is a one-line error that says where to
    put the pictures. Loading returns ``{relative file path: load function}``; a file is
    only read when its function is called, and one it cannot read raises
    ``ImageRefusedError`` saying why.

    Example catalog entry::

        user_images:
          type: alexnet_cifar10.datasets.ImageFolderDataset
          path: data/01_raw/user_images
          dataset:
            type: alexnet_cifar10.datasets.UserImageDataset
            load_args:
              max_pixels: 67108864
    """

    def __init__(
        self,
        *,
        path: str,
        dataset: str | type[AbstractDataset] | dict[str, Any] = UserImageDataset,
        **kwargs: Any,
    ) -> None:
        """Creates the dataset; ``dataset`` defaults to ``UserImageDataset``, the other
        arguments are ``PartitionedDataset``'s."""
        super().__init__(path=path, dataset=dataset, **kwargs)
        self._folder = path

    def _nothing_to_read(self) -> str:
        filesystem, folder = fsspec.core.url_to_fs(self._folder)
        state = "is empty" if filesystem.isdir(folder) else "does not exist"
        formats = ", ".join(SAFE_FORMATS)
        return (
            f"No pictures: the folder '{self._folder}' {state}. Put the pictures "
            f"there ({formats}; any size, sub-folders too), or point the catalog entry's "
            "`path` at the folder that holds them."
        )

    def load(self) -> dict[str, Callable[[], UserImage]]:
        try:
            partitions = super().load()
        except DatasetError:  # kedro-datasets' "No partitions found"
            partitions = {}
        visible = {
            name: _refused_if_unreadable(load)
            for name, load in partitions.items()
            if not _hidden(name)
        }
        if not visible:
            raise DatasetError(self._nothing_to_read())
        return visible

    def _exists(self) -> bool:
        filesystem, folder = fsspec.core.url_to_fs(self._folder)
        files = filesystem.find(folder) if filesystem.isdir(folder) else []
        return any(
            not _hidden(PurePosixPath(path).relative_to(folder).as_posix()) for path in files
        )
