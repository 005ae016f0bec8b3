"""kedro-datasets datasets whose versioned saves are crash-safe (see ``atomic``)."""

from __future__ import annotations

from kedro_datasets.json import JSONDataset as _JSONDataset
from kedro_datasets.matplotlib import MatplotlibDataset as _MatplotlibDataset
from kedro_datasets.pandas import CSVDataset as _CSVDataset
from kedro_datasets.pandas import ParquetDataset as _ParquetDataset
from kedro_datasets.yaml import YAMLDataset as _YAMLDataset

from alexnet_cifar10.datasets.atomic import AtomicVersionMixin


class JSONDataset(AtomicVersionMixin, _JSONDataset):
    """``json.JSONDataset`` with crash-safe versioned saves."""


class CSVDataset(AtomicVersionMixin, _CSVDataset):
    """``pandas.CSVDataset`` with crash-safe versioned saves."""


class MatplotlibDataset(AtomicVersionMixin, _MatplotlibDataset):
    """``matplotlib.MatplotlibDataset`` with crash-safe versioned saves (single figures)."""


class ParquetDataset(AtomicVersionMixin, _ParquetDataset):
    """``pandas.ParquetDataset`` with crash-safe versioned saves (single files)."""


class YAMLDataset(AtomicVersionMixin, _YAMLDataset):
    """``yaml.YAMLDataset`` with crash-safe versioned saves."""
