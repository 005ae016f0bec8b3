"""Where a fit runs: the processes of a run, the share of each split every process feeds,
and the one-device path that leaves the network as it is."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import keras
import numpy as np
import pytest
from synthetic_cifar import make_split

from alexnet_cifar10 import distribution
from alexnet_cifar10.distribution import (
    Cluster,
    ClusterError,
    Placement,
    cluster,
    join_cluster,
    placement,
)

VARIABLES = (distribution.ADDRESSES, distribution.PROCESSES, distribution.PROCESS_ID)


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No KERAS_DISTRIBUTION_* variable unless the test sets it."""
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def fresh_join() -> Iterator[None]:
    """join_cluster runs once per process; let this test's call be the first."""
    join_cluster.cache_clear()
    yield
    join_cluster.cache_clear()


def _set(monkeypatch: pytest.MonkeyPatch, addresses: str, processes: str, index: str) -> None:
    for name, value in zip(VARIABLES, (addresses, processes, index), strict=True):
        monkeypatch.setenv(name, value)


def test_one_process_unless_the_variables_say_otherwise(environment: pytest.MonkeyPatch) -> None:
    assert cluster() == Cluster(processes=1, index=0)
    _set(environment, "10.0.0.1:1234", "4", "3")
    assert cluster() == Cluster(processes=4, index=3)


@pytest.mark.parametrize(
    ("addresses", "processes", "index", "line"),
    [
        (
            "h:1",
            "two",
            "0",
            "KERAS_DISTRIBUTION_NUM_PROCESSES must be a whole number; got 'two'.",
        ),
        (
            "h:1",
            "2",
            "2",
            "KERAS_DISTRIBUTION_NUM_PROCESSES=2 needs KERAS_DISTRIBUTION_JOB_ADDRESSES (the "
            "first process's host:port) and KERAS_DISTRIBUTION_PROCESS_ID between 0 and 1; "
            "got 'h:1' and '2'.",
        ),
    ],
)
def test_variables_that_describe_no_run_are_named(
    environment: pytest.MonkeyPatch, addresses: str, processes: str, index: str, line: str
) -> None:
    _set(environment, addresses, processes, index)
    with pytest.raises(ClusterError) as error:
        cluster()
    assert str(error.value) == line


@pytest.mark.usefixtures("fresh_join")
def test_several_processes_need_jax(environment: pytest.MonkeyPatch) -> None:
    _set(environment, "localhost:1", "2", "0")
    with pytest.raises(ClusterError, match="on the jax backend only .* got KERAS_BACKEND="):
        join_cluster()


@pytest.mark.usefixtures("fresh_join")
def test_a_single_process_joins_nothing(environment: pytest.MonkeyPatch) -> None:
    assert join_cluster() == Cluster()


def _ordered(size: int) -> dict[str, np.ndarray]:
    split = make_split(size)
    split["index"] = np.arange(size)
    return split


def test_a_split_loses_only_what_the_devices_cannot_share(
    caplog: pytest.LogCaptureFixture,
) -> None:
    three = Placement("data_parallel", ("gpu:0", "gpu:1", "gpu:2"), Cluster())
    with caplog.at_level(logging.WARNING):
        trimmed = three.trimmed(_ordered(100), "train")
    assert trimmed["index"].tolist() == list(range(99))
    assert caplog.messages == [
        "Left out the last 1 of 100 train images: the 3 devices split every batch evenly, "
        "the last partial one too."
    ]
    kept = _ordered(99)
    assert three.trimmed(kept, "train") is kept


def test_each_process_feeds_its_own_equal_share_of_every_batch() -> None:
    devices = ("cpu:0", "cpu:1", "cpu:2", "cpu:3")
    shares = [
        Placement("data_parallel", devices, Cluster(processes=2, index=index)) for index in (0, 1)
    ]
    split = shares[0].trimmed(_ordered(10), "train")
    first, second = (share.local(split)["index"].tolist() for share in shares)
    assert (first, second) == ([0, 2, 4, 6], [1, 3, 5, 7])
    assert [share.local_batch(64) for share in shares] == [32, 32]
    assert shares[0].per_device_batch(64) == 16
    assert shares[0].facts(64) == {
        "strategy": "data_parallel",
        "engine": distribution.ENGINES[keras.backend.backend()],
        "devices": list(devices),
        "processes": 2,
        "global_batch": 64,
        "per_device_batch": 16,
    }


def test_one_device_fits_the_network_it_was_given() -> None:
    where = placement("one_device")
    assert where.devices == (keras.distribution.list_devices()[0],)
    assert where.describe(64) == "one_device, 1 process, 64 images per device"
    split = make_split(5)
    assert where.trimmed(split, "train") is split
    assert where.local(split)["images"].shape[0] == 5
    network = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    with where.placed(network) as placed:
        assert placed is network
    assert where.gathered(network) is network
