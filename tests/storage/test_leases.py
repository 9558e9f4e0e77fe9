"""Partition leases (DTFx V1 blob leases) against a real Azurite: balancing, stealing, release,
crash expiry, lost leases and storage outages."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from azure.storage.blob.aio import BlobLeaseClient, BlobServiceClient

from durable_ext.storage.leases import PartitionLeaseManager
from durable_ext.storage.partition_ownership import margin_for
from tests.azurite import AzuriteInstance

PARTITIONS = 4
ALL = frozenset(range(PARTITIONS))
LEASE = timedelta(seconds=15)  # the shortest blob lease Azure (and Azurite) allows
RENEW = timedelta(seconds=1)
ACQUIRE = timedelta(seconds=0.5)
SETTLE = 10.0  # generous deadline for balancing that takes a few acquire passes


@dataclass
class Worker:
    """A manager plus the callbacks it made, in order."""

    manager: PartitionLeaseManager
    events: list[tuple[str, int]]

    @property
    def owned(self) -> frozenset[int]:
        return self.manager.owned

    def assert_callbacks_alternate(self) -> None:
        """Per partition: acquired, lost, acquired, ... never two of a kind in a row."""
        for index in ALL:
            kinds = [kind for kind, i in self.events if i == index]
            assert kinds == ["acquired", "lost"] * (len(kinds) // 2) + ["acquired"] * (
                len(kinds) % 2
            ), (
                index,
                kinds,
            )


class Cluster:
    """Workers of one hub; stops them all (without releasing) at teardown."""

    def __init__(self, blob_service: BlobServiceClient, hub_name: str) -> None:
        self.blob_service = blob_service
        self.hub_name = hub_name
        self.workers: list[Worker] = []

    def add(self, worker_id: str, *, fail_first_acquire: int | None = None) -> Worker:
        events: list[tuple[str, int]] = []
        failures = {fail_first_acquire} if fail_first_acquire is not None else set()

        async def on_acquired(index: int) -> None:
            events.append(("acquired", index))
            if index in failures:
                failures.discard(index)
                raise RuntimeError("listener failed to start")

        async def on_lost(index: int) -> None:
            events.append(("lost", index))

        manager = PartitionLeaseManager(
            self.blob_service,
            self.hub_name,
            PARTITIONS,
            worker_id,
            lease_interval=LEASE,
            renew_interval=RENEW,
            acquire_interval=ACQUIRE,
            on_acquired=on_acquired,
            on_lost=on_lost,
        )
        worker = Worker(manager, events)
        self.workers.append(worker)
        return worker

    async def start(self, worker_id: str) -> Worker:
        worker = self.add(worker_id)
        await worker.manager.create_lease_blobs()
        await worker.manager.start()
        return worker

    async def close(self) -> None:
        for worker in self.workers:
            await worker.manager.stop(release=False)

    def blob(self, index: int) -> Any:
        h = self.hub_name.lower()
        return self.blob_service.get_blob_client(f"{h}-leases", f"default/{h}-control-{index:02d}")

    async def read(self, index: int) -> tuple[dict[str, Any], str]:
        """(content, lease state) of a lease blob."""
        download = await self.blob(index).download_blob()
        return json.loads(await download.readall()), download.properties.lease.state


@pytest.fixture
async def blob_service(azurite: AzuriteInstance) -> AsyncIterator[BlobServiceClient]:
    async with BlobServiceClient.from_connection_string(azurite.connection_string) as client:
        yield client


@pytest.fixture
async def cluster(blob_service: BlobServiceClient, hub_name: str) -> AsyncIterator[Cluster]:
    hub = Cluster(blob_service, hub_name)
    try:
        yield hub
    finally:
        await hub.close()


async def wait_for(
    workers: Sequence[Worker], condition: Callable[[], bool], timeout: float
) -> bool:
    """Wait (on ownership changes, no polling) until `condition()` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        waits = [
            asyncio.create_task(w.manager.wait_until(changed_from(w.owned), remaining))
            for w in workers
        ]
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in waits:
            task.cancel()
    return True


def changed_from(before: frozenset[int]) -> Callable[[frozenset[int]], bool]:
    return lambda owned: owned != before


def balanced(workers: Iterable[Worker]) -> Callable[[], bool]:
    """Every partition owned by exactly one worker, each owns at least one and at most its share."""
    workers = list(workers)
    share = math.ceil(PARTITIONS / len(workers))

    def check() -> bool:
        counts = [len(w.owned) for w in workers]
        union = frozenset().union(*(w.owned for w in workers))
        return sum(counts) == PARTITIONS and union == ALL and all(1 <= c <= share for c in counts)

    return check


async def assert_storage_matches(cluster: Cluster, workers: Iterable[Worker]) -> None:
    """The lease blobs name the worker that owns each partition and are leased."""
    for worker in workers:
        for index in worker.owned:
            content, state = await cluster.read(index)
            assert (content["Owner"], state) == (worker.manager.worker_id, "leased")


async def test_single_manager_takes_every_partition(cluster: Cluster) -> None:
    a = await cluster.start("worker-a")

    assert a.owned == ALL  # the first acquire pass completes inside start()
    h = cluster.hub_name.lower()
    for index in ALL:
        content, state = await cluster.read(index)
        assert state == "leased"
        assert content["PartitionId"] == f"{h}-control-{index:02d}"
        assert content["Owner"] == "worker-a"
        assert content["Epoch"] == 1
        # The Token in the content is the blob's lease id: renewing with it works.
        await BlobLeaseClient(cluster.blob(index), content["Token"]).renew()
    assert sorted(a.events) == [("acquired", index) for index in sorted(ALL)]
    for index in ALL:  # the ownership deadline: the acquire's start + lease - margin
        deadline = a.manager.deadlines.deadline(index)
        assert deadline is not None
        assert 0 < deadline - time.monotonic() <= LEASE.total_seconds() - margin_for(LEASE)


async def test_partitions_spread_over_two_then_three_workers(cluster: Cluster) -> None:
    a = await cluster.start("worker-a")
    b = await cluster.start("worker-b")

    assert await wait_for([a, b], balanced([a, b]), SETTLE), (a.owned, b.owned)
    assert len(a.owned) == len(b.owned) == 2
    await assert_storage_matches(cluster, [a, b])

    c = await cluster.start("worker-c")

    assert await wait_for([a, b, c], balanced([a, b, c]), SETTLE), (a.owned, b.owned, c.owned)
    assert sorted(len(w.owned) for w in (a, b, c)) == [1, 1, 2]
    await assert_storage_matches(cluster, [a, b, c])
    for worker in (a, b, c):
        worker.assert_callbacks_alternate()


async def test_graceful_stop_hands_partitions_over_at_once(cluster: Cluster) -> None:
    a = await cluster.start("worker-a")
    b = await cluster.start("worker-b")
    assert await wait_for([a, b], balanced([a, b]), SETTLE)
    released, seen = a.owned, len(a.events)

    await a.manager.stop()
    stopped = time.monotonic()

    assert a.owned == frozenset()
    assert sorted(a.events[seen:]) == [("lost", index) for index in sorted(released)]
    a.assert_callbacks_alternate()
    assert await b.manager.wait_until(
        lambda owned: owned == ALL, timeout=4 * ACQUIRE.total_seconds() + 1
    )
    assert time.monotonic() - stopped < LEASE.total_seconds() / 2  # not by expiry
    await assert_storage_matches(cluster, [b])


@pytest.mark.slow
async def test_crashed_worker_partitions_move_when_its_leases_expire(cluster: Cluster) -> None:
    a = await cluster.start("worker-a")
    b = await cluster.start("worker-b")
    assert await wait_for([a, b], balanced([a, b]), SETTLE)
    orphaned = a.owned

    await a.manager.stop(release=False)  # loops gone, leases left on storage
    crashed = time.monotonic()
    for index in orphaned:
        content, state = await cluster.read(index)
        assert (content["Owner"], state) == ("worker-a", "leased")

    assert not await b.manager.wait_until(lambda owned: owned == ALL, timeout=5)
    assert await b.manager.wait_until(lambda owned: owned == ALL, timeout=LEASE.total_seconds() + 3)
    took = time.monotonic() - crashed
    assert LEASE.total_seconds() - 2 * RENEW.total_seconds() <= took <= LEASE.total_seconds() + 3
    await assert_storage_matches(cluster, [b])
    for index in orphaned:
        content, _ = await cluster.read(index)
        assert content["Epoch"] == 2  # a took it once, b once


async def test_broken_lease_is_lost_then_owned_by_exactly_one_worker(cluster: Cluster) -> None:
    a = await cluster.start("worker-a")
    b = await cluster.start("worker-b")
    assert await wait_for([a, b], balanced([a, b]), SETTLE)
    victim = min(a.owned)
    before, _ = await cluster.read(victim)

    await BlobLeaseClient(cluster.blob(victim)).break_lease(lease_break_period=0)

    def lost_and_rebalanced() -> bool:
        return ("lost", victim) in a.events and balanced([a, b])()

    assert await wait_for([a, b], lost_and_rebalanced, SETTLE), (a.events, b.owned)
    after, _ = await cluster.read(victim)
    assert after["Epoch"] == before["Epoch"] + 1
    await assert_storage_matches(cluster, [a, b])
    a.assert_callbacks_alternate()
    b.assert_callbacks_alternate()


async def test_create_lease_blobs_is_idempotent_and_race_safe(cluster: Cluster) -> None:
    workers = [cluster.add(f"worker-{n}") for n in range(3)]

    await asyncio.gather(*(w.manager.create_lease_blobs() for w in workers for _ in range(2)))

    h = cluster.hub_name.lower()
    container = cluster.blob_service.get_container_client(f"{h}-leases")
    names = [blob.name async for blob in container.list_blobs()]
    assert names == [f"default/{h}-control-{index:02d}" for index in sorted(ALL)]
    for index in ALL:
        assert await cluster.read(index) == (
            {"PartitionId": f"{h}-control-{index:02d}", "Owner": "", "Token": "", "Epoch": 0},
            "available",
        )

    await workers[0].manager.start()
    await asyncio.gather(*(w.manager.create_lease_blobs() for w in workers))
    for index in ALL:
        content, state = await cluster.read(index)
        assert (content["Owner"], content["Epoch"], state) == ("worker-0", 1, "leased")


async def test_restarted_worker_reclaims_its_live_leases(cluster: Cluster) -> None:
    first = await cluster.start("worker-a")
    await first.manager.stop(release=False)

    again = await cluster.start("worker-a")

    assert again.owned == ALL  # at once, not after the leases expire
    for index in ALL:
        content, _ = await cluster.read(index)
        assert (content["Owner"], content["Epoch"]) == ("worker-a", 1)


async def test_failed_on_acquired_releases_the_partition_and_retries(cluster: Cluster) -> None:
    a = cluster.add("worker-a", fail_first_acquire=2)
    await a.manager.create_lease_blobs()

    await a.manager.start()

    assert await a.manager.wait_until(lambda owned: owned == ALL, timeout=SETTLE)
    assert [kind for kind, index in a.events if index == 2] == ["acquired", "lost", "acquired"]
    content, _ = await cluster.read(2)
    assert content["Epoch"] == 2


@pytest.mark.slow
async def test_manager_survives_storage_outage(
    private_azurite: AzuriteInstance, hub_name: str
) -> None:
    async with BlobServiceClient.from_connection_string(
        private_azurite.connection_string
    ) as service:
        cluster = Cluster(service, hub_name)
        try:
            a = await cluster.start("worker-a")
            assert a.owned == ALL

            await asyncio.to_thread(private_azurite.stop)
            down = time.monotonic()
            # Failed renewals count as renewed until the ownership deadline: the last renewal
            # sent plus the lease interval, less the safety margin.
            assert await a.manager.wait_until(
                lambda owned: not owned, timeout=LEASE.total_seconds() + 5
            )
            earliest = LEASE.total_seconds() - margin_for(LEASE) - 2 * RENEW.total_seconds()
            assert time.monotonic() - down >= earliest

            await asyncio.to_thread(private_azurite.start)

            assert await a.manager.wait_until(lambda owned: owned == ALL, timeout=SETTLE)
            await assert_storage_matches(cluster, [a])
            a.assert_callbacks_alternate()
        finally:
            await cluster.close()


def test_lease_interval_must_fit_azure_blob_lease_limits() -> None:
    service = BlobServiceClient("http://127.0.0.1:1/devstoreaccount1")
    for lease in (timedelta(seconds=14), timedelta(seconds=61), timedelta(seconds=15.5)):
        with pytest.raises(ValueError, match="lease_interval"):
            PartitionLeaseManager(service, "Hub", 4, "w", lease_interval=lease)
    with pytest.raises(ValueError, match="renew_interval"):
        PartitionLeaseManager(service, "Hub", 4, "w", lease_interval=LEASE, renew_interval=LEASE)
    with pytest.raises(ValueError, match="partition_count"):
        PartitionLeaseManager(service, "Hub", 17, "w")
