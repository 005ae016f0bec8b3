"""Custom Kedro datasets of the project."""

from alexnet_cifar10.datasets.cifar10_dataset import CIFAR10Data, CIFAR10Dataset
from alexnet_cifar10.datasets.kedro_datasets_atomic import (
    CSVDataset,
    JSONDataset,
    MatplotlibDataset,
)
from alexnet_cifar10.datasets.keras_model_dataset import KerasModelDataset
from alexnet_cifar10.datasets.npz_dataset import NpzDataset

__all__ = [
    "CIFAR10Data",
    "CIFAR10Dataset",
    "CSVDataset",
    "JSONDataset",
    "KerasModelDataset",
    "MatplotlibDataset",
    "NpzDataset",
]
