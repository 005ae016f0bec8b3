"""Custom Kedro datasets of the project."""

from alexnet_cifar10.datasets.cifar10_dataset import CIFAR10Data, CIFAR10Dataset
from alexnet_cifar10.datasets.exported_model_dataset import OnnxModelDataset, SavedModelDataset
from alexnet_cifar10.datasets.image_folder_dataset import ImageFolderDataset
from alexnet_cifar10.datasets.kedro_datasets_atomic import (
    CSVDataset,
    JSONDataset,
    MatplotlibDataset,
    ParquetDataset,
    YAMLDataset,
)
from alexnet_cifar10.datasets.keras_model_dataset import KerasModelDataset, TrainedModelDataset
from alexnet_cifar10.datasets.npz_dataset import NpzDataset
from alexnet_cifar10.datasets.served_model_dataset import ModelAliasDataset, ServedModelDataset
from alexnet_cifar10.datasets.user_image_dataset import UserImageDataset
from alexnet_cifar10.pictures import ImageRefusedError, UserImage

__all__ = [
    "CIFAR10Data",
    "CIFAR10Dataset",
    "CSVDataset",
    "ImageFolderDataset",
    "ImageRefusedError",
    "JSONDataset",
    "KerasModelDataset",
    "MatplotlibDataset",
    "ModelAliasDataset",
    "NpzDataset",
    "OnnxModelDataset",
    "ParquetDataset",
    "SavedModelDataset",
    "ServedModelDataset",
    "TrainedModelDataset",
    "UserImage",
    "UserImageDataset",
    "YAMLDataset",
]
