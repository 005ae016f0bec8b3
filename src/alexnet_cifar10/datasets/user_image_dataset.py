"""Kedro dataset that decodes one image file from a person, who may have put anything there.

kedro-datasets' ``pillow.ImageDataset`` hands the file to every decoder Pillow has (EPS
among them, which runs the external Ghostscript program), decodes it whole under
Pillow's default guard (images up to ~179 megapixels only raise a warning), and returns
the first frame of an animation without saying so. This dataset, read-only, decodes with
``pictures.decode_image`` (its limits are listed there) and refuses a file it cannot read
before decoding it. A refused file is a ``DatasetError`` caused by an
``ImageRefusedError`` whose message says why in a few words, so that a caller can record
it and carry on with the next file.
"""

from __future__ import annotations

from typing import Any

from kedro.io.core import DatasetError, get_filepath_str

from alexnet_cifar10.datasets.atomic import FileVersionedDataset
from alexnet_cifar10.pictures import (
    MAX_FILE_BYTES,
    MAX_PIXELS,
    SAFE_FORMATS,
    ImageRefusedError,
    UserImage,
    decode_image,
)


class UserImageDataset(FileVersionedDataset):
    """Loads one image file as a ``UserImage``, or refuses it (``ImageRefusedError``,
    which Kedro raises as the cause of a ``DatasetError``).

    Example catalog entry (usually the ``dataset`` of an ``ImageFolderDataset``)::

        photo:
          type: alexnet_cifar10.datasets.UserImageDataset
          filepath: data/01_raw/user_images/cat.jpg
          load_args:
            formats: [JPEG, PNG]
            max_pixels: 67108864
            max_file_bytes: 268435456
            draft_size: 128

    ``load_args``: ``formats`` (Pillow format names whose decoders may run; default
    ``SAFE_FORMATS``), ``max_pixels`` (default 64 Mi), ``max_file_bytes`` (256 MiB) and
    ``draft_size`` (default None: every pixel decoded).
    """

    DEFAULT_LOAD_ARGS: dict[str, Any] = {
        "formats": list(SAFE_FORMATS),
        "max_pixels": MAX_PIXELS,
        "max_file_bytes": MAX_FILE_BYTES,
        "draft_size": None,
    }

    def save(self, data: Any) -> None:
        raise DatasetError(f"{type(self).__name__} is read-only: it never writes images.")

    def load(self) -> UserImage:
        path = get_filepath_str(self._get_load_path(), self._protocol)
        return decode_image(self._read(path), self._load_args)

    def _read(self, path: str) -> bytes:
        limit = self._load_args["max_file_bytes"]
        try:
            size = self._fs.size(path)
            if size is not None and size > limit:
                raise ImageRefusedError(
                    f"file of {size:,} bytes is over the limit of {limit:,} (max_file_bytes)"
                )
            with self._fs.open(path, mode="rb") as handle:
                content = handle.read(limit + 1)
        except FileNotFoundError as error:
            raise ImageRefusedError(
                "the file disappeared before it could be read (moved or deleted during the "
                "run, or a broken link)"
            ) from error
        except OSError as error:
            raise ImageRefusedError(
                f"the file could not be read: {error.strerror or error}"
            ) from error
        if len(content) > limit:
            raise ImageRefusedError(f"file grew over the limit of {limit:,} bytes while read")
        return content
