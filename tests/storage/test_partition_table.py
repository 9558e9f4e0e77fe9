"""The table partition manager (DTFx V3, `{Hub}Partitions`) against a real Azurite: the row
layout, claims, balancing over 1 -> 3 -> 1 workers with draining handovers, expiry, a stolen row,
ownership deadlines, and rows written by Durable Functions."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.core.credentials import AzureNamedKeyCredential
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableServiceClient

from durable_ext.storage.partition_ownership import margin_for
from durable_ext.storage.partition_table import TablePartitionManager
from tests.azurite import AzuriteInstance
from tests.wait import wait_for

PARTITIONS = 4
ALL = frozenset(range(PARTITIONS))
LEASE = timedelta(seconds=6)
ACQUIRE = timedelta(seconds=0.5)
SETTLE = 15.0
DRAIN_WORK = 0.2  # seconds each drain "settles its messages"


class Ledger:
    """Every callback of every worker of one hub, checked as it happens: a partition is acquired
    only when nobody has it, and taken from another worker only after that worker drained it."""

    def __init__(self) -> None:
        self.current: dict[int, str] = {}
        self.last: dict[int, str] = {}
        self.drained: dict[int, bool] = {}
        self.moves: list[tuple[int, str, str]] = []
        self.violations: list[str] = []

    def acquired(self, worker: str, index: int) -> None:
        if index in self.current:
            self.violations.append(f"{worker} acquired {index} held by {self.current[index]}")
        previous = self.last.get(index)
        if previous not in (None, worker):
            if not self.drained.get(index):
                self.violations.append(f"{worker} acquired {index} before {previous} drained it")
            self.moves.append((index, previous, worker))
        self.current[index] = worker
        self.drained[index] = False

    async def drain(self, worker: str, index: int) -> None:
        if self.current.get(index) != worker:
            self.violations.append(f"{worker} drained {index} it does not have")
        await asyncio.sleep(DRAIN_WORK)
        self.drained[index] = True

    def lost(self, worker: str, index: int) -> None:
        if self.current.get(index) != worker:
            self.violations.append(f"{worker} lost {index} it did not have")
        self.current.pop(index, None)
        self.last[index] = worker


class Cluster:
    """Table managers of one hub sharing a ledger; stopped without release at teardown."""

    def __init__(self, tables: TableServiceClient, hub_name: str) -> None:
        self.tables = tables
        self.hub_name = hub_name
        self.ledger = Ledger()
        self.managers: dict[str, TablePartitionManager] = {}

    def add(self, worker_id: str, **options: Any) -> TablePartitionManager:
        ledger = self.ledger

        async def acquired(index: int) -> None:
            ledger.acquired(worker_id, index)

        async def drain(index: int) -> None:
            await ledger.drain(worker_id, index)

        async def lost(index: int) -> None:
            ledger.lost(worker_id, index)

        settings: dict[str, Any] = {"lease_interval": LEASE, "acquire_interval": ACQUIRE}
        settings.update(options)
        manager = TablePartitionManager(
            self.tables,
            self.hub_name,
            PARTITIONS,
            worker_id,
            on_acquired=acquired,
            on_drain=drain,
            on_lost=lost,
            **settings,
        )
        self.managers[worker_id] = manager
        return manager

    async def start(self, worker_id: str, **options: Any) -> TablePartitionManager:
        manager = self.add(worker_id, **options)
        await manager.create_store()
        await manager.start()
        return manager

    async def close(self) -> None:
        for manager in self.managers.values():
            await manager.stop(release=False)

    @property
    def table(self) -> Any:
        return self.tables.get_table_client(f"{self.hub_name}Partitions")

    async def rows(self) -> dict[str, dict[str, Any]]:
        return {row["RowKey"]: row async for row in self.table.list_entities()}

    def row_key(self, index: int) -> str:
        return f"{self.hub_name.lower()}-control-{index:02d}"


@pytest.fixture
async def cluster(azurite: AzuriteInstance, hub_name: str) -> AsyncIterator[Cluster]:
    async with TableServiceClient.from_connection_string(azurite.connection_string) as tables:
        hub = Cluster(tables, hub_name)
        try:
            yield hub
        finally:
            await hub.close()


def spread(managers: list[TablePartitionManager]) -> bool:
    """Every partition owned by exactly one manager, each owning at least one."""
    owned = [m.owned for m in managers]
    union = frozenset().union(*owned)
    return sum(map(len, owned)) == PARTITIONS and union == ALL and all(owned)


async def test_first_worker_claims_every_row_in_the_dtfx_layout(cluster: Cluster) -> None:
    before = datetime.now(UTC)
    a = await cluster.start("worker-a")

    assert a.owned == ALL  # the first pass completes inside start()
    rows = await cluster.rows()
    assert sorted(rows) == [cluster.row_key(i) for i in sorted(ALL)]
    for row in rows.values():
        assert row["PartitionKey"] == ""
        assert row["CurrentOwner"] == "worker-a"
        assert "NextOwner" not in row
        assert row["IsDraining"] is False
        assert before - timedelta(seconds=1) <= row["OwnedSince"] <= row["LastRenewal"]
        # A claim writes a one-minute expiry; the same pass renews it to the lease interval.
        assert row["ExpiresAt"] - row["LastRenewal"] == LEASE
    for index in ALL:
        deadline = a.deadlines.deadline(index)
        assert deadline is not None
        left = deadline - time.monotonic()
        assert 0 < left <= LEASE.total_seconds() - margin_for(LEASE)


async def test_balancing_one_three_one_hands_every_partition_over_drained(
    cluster: Cluster,
) -> None:
    """1 -> 3 -> 1 workers: at every callback each partition has at most one owner, and every
    move waits for the previous owner's drain (steal -> drain -> release -> claim)."""
    a = await cluster.start("worker-a")
    b = await cluster.start("worker-b")
    c = await cluster.start("worker-c")

    await wait_for(lambda: spread([a, b, c]), SETTLE)
    await b.stop()
    await c.stop()
    await wait_for(lambda: a.owned == ALL, SETTLE)

    ledger = cluster.ledger
    assert not ledger.violations, ledger.violations
    assert {(src, dst) for _, src, dst in ledger.moves} >= {
        ("worker-a", "worker-b"),
        ("worker-a", "worker-c"),
        ("worker-b", "worker-a"),
        ("worker-c", "worker-a"),
    }, ledger.moves
    rows = await cluster.rows()
    assert {row["CurrentOwner"] for row in rows.values()} == {"worker-a"}
    assert not any(row["IsDraining"] or row.get("NextOwner") for row in rows.values()), rows


async def test_graceful_stop_drains_then_releases_so_others_claim_at_once(
    cluster: Cluster,
) -> None:
    a = await cluster.start("worker-a")
    b = await cluster.start("worker-b")
    await wait_for(lambda: spread([a, b]), SETTLE)

    await a.stop()
    stopped = time.monotonic()

    assert a.owned == frozenset()
    await wait_for(lambda: b.owned == ALL, SETTLE)
    assert time.monotonic() - stopped < LEASE.total_seconds()  # released, not expired
    assert not cluster.ledger.violations, cluster.ledger.violations


async def test_a_crashed_worker_rows_are_claimed_once_expired(cluster: Cluster) -> None:
    a = await cluster.start("worker-a")
    await a.stop(release=False)  # the rows still name worker-a
    crashed = time.monotonic()

    b = await cluster.start("worker-b")
    assert b.owned == frozenset()
    await wait_for(lambda: b.owned == ALL, LEASE.total_seconds() + SETTLE)
    assert time.monotonic() - crashed >= LEASE.total_seconds() - 1


async def test_a_stolen_row_is_lost_at_the_next_pass_and_its_deadline_cleared(
    cluster: Cluster,
) -> None:
    a = await cluster.start("worker-a")
    victim = cluster.row_key(2)
    row = await cluster.table.get_entity("", victim)
    row["CurrentOwner"] = "intruder"
    row["ExpiresAt"] = datetime.now(UTC) + timedelta(minutes=5)
    await cluster.table.update_entity(row, mode=UpdateMode.REPLACE)

    await wait_for(lambda: 2 not in a.owned, SETTLE)

    assert a.deadlines.deadline(2) is None
    assert cluster.ledger.current.get(2) is None
    assert a.owned == ALL - {2}
    assert (await cluster.table.get_entity("", victim))["CurrentOwner"] == "intruder"


async def test_rows_written_by_durable_functions_are_taken_over(cluster: Cluster) -> None:
    """A hub that a Durable Functions app served: rows naming its (gone) worker, expired, one
    being handed to a worker that no longer exists. This worker claims them all."""
    table = cluster.table
    await cluster.tables.create_table(f"{cluster.hub_name}Partitions")
    past = datetime.now(UTC) - timedelta(minutes=1)
    for index in ALL:
        entity: dict[str, Any] = {
            "PartitionKey": "",
            "RowKey": cluster.row_key(index),
            "CurrentOwner": "RD0003FF12AB34",
            "OwnedSince": past - timedelta(hours=1),
            "LastRenewal": past,
            "ExpiresAt": past,
            "IsDraining": index == 3,
        }
        if index == 3:
            entity["NextOwner"] = "RD0003FF99CD56"
        await table.create_entity(entity)

    a = await cluster.start("worker-a")

    assert a.owned == ALL
    rows = await cluster.rows()
    assert {row["CurrentOwner"] for row in rows.values()} == {"worker-a"}
    assert not any(row.get("NextOwner") or row["IsDraining"] for row in rows.values())


async def test_rows_of_another_partition_count_are_refused(cluster: Cluster) -> None:
    await cluster.tables.create_table(f"{cluster.hub_name}Partitions")
    await cluster.table.create_entity(
        {"PartitionKey": "", "RowKey": cluster.row_key(7), "IsDraining": False}
    )
    with pytest.raises(ValueError, match="another partition count"):
        await cluster.add("worker-a").create_store()


def test_intervals_are_checked() -> None:
    key = AzureNamedKeyCredential("devstoreaccount1", "a2V5")
    tables = TableServiceClient("http://127.0.0.1:1/devstoreaccount1", credential=key)
    with pytest.raises(ValueError, match="acquire_interval"):
        TablePartitionManager(
            tables, "Hub", 4, "w", lease_interval=timedelta(seconds=5), acquire_interval=LEASE
        )
    with pytest.raises(ValueError, match="partition_count"):
        TablePartitionManager(tables, "Hub", 17, "w")
