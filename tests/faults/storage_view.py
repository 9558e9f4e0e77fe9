"""Read a task hub straight from storage, by the DTFx layout, to check what a fault left behind.

Nothing here goes through `durable_ext`: lease blobs, History and Instances rows and queue counts are
read with the Azure SDK, by the names of `reference/dtfx-azure-storage.md` §1–§4, so the checks hold
whatever the worker believes about itself.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from azure.core.exceptions import ResourceNotFoundError

from tests.storage.raw_state import RawStorage

__all__ = ["HubView", "HistoryFacts", "wait_for", "POLL"]

POLL = 0.2
T = TypeVar("T")


async def wait_for(
    probe: Callable[[], Awaitable[T]],
    done: Callable[[T], bool],
    timeout: float,
    what: str,
    poll: float = POLL,
) -> tuple[T, float]:
    """Call `probe` until `done(value)`; the value and the seconds it took. Fails after `timeout`
    with the last value seen, so the message says what state things were stuck in."""
    began = time.monotonic()
    deadline = began + timeout
    while True:
        value = await probe()
        if done(value):
            return value, time.monotonic() - began
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not reached within {timeout:.0f} s; last seen {value!r}")
        await asyncio.sleep(poll)


@dataclass(slots=True)
class HistoryFacts:
    """What one instance's History partition says, once its invariants have been checked."""

    instance_id: str
    execution_id: str
    rows: int
    output: Any
    completed_activity_inputs: list[Any] = field(default_factory=list)
    """The inputs of the activities whose TaskCompleted is in the history."""
    duplicate_responses: int = 0
    """Response rows (TaskCompleted, SubOrchestrationInstanceCompleted) for an already answered
    task: legal (DTFx appends a re-delivered response and replay ignores it), counted for the log."""


class HubView(RawStorage):
    """Storage clients for one task hub, opened from a connection string."""

    def __init__(self, connection_string: str, hub: str, partition_count: int = 4) -> None:
        super().__init__(connection_string)
        self.hub = hub
        self.partition_count = partition_count

    # -- names (reference §1) -----------------------------------------------------------------
    @property
    def control_queues(self) -> list[str]:
        return [f"{self.hub.lower()}-control-{i:02d}" for i in range(self.partition_count)]

    @property
    def work_item_queue(self) -> str:
        return f"{self.hub.lower()}-workitems"

    # -- leases (reference §4.1, §4.2) --------------------------------------------------------
    async def lease_owners(self) -> dict[int, str | None]:
        """Per partition, its owner: the `CurrentOwner` of its `{Hub}Partitions` row while that
        has not expired (table manager), else the `Owner` named in its lease blob while the blob
        is leased (legacy manager); None when nobody owns it."""
        if f"{self.hub}Partitions".lower() in {name.lower() for name in await self.table_names()}:
            return await self.partition_row_owners()
        container = self.blobs.get_container_client(f"{self.hub.lower()}-leases")

        async def owner(index: int) -> str | None:
            blob = container.get_blob_client(f"default/{self.control_queues[index]}")
            try:
                download = await blob.download_blob()
                content = json.loads(await download.readall())
            except ResourceNotFoundError:
                return None
            if download.properties.lease.state != "leased":
                return None
            return content.get("Owner") or None

        owners = await asyncio.gather(*(owner(i) for i in range(self.partition_count)))
        return dict(enumerate(owners))

    async def partition_row_owners(self) -> dict[int, str | None]:
        """Per partition, the unexpired `CurrentOwner` of its `{Hub}Partitions` row."""
        rows = {row["RowKey"]: row for row in await self.all_rows(f"{self.hub}Partitions")}
        now = datetime.now(UTC)
        owners: dict[int, str | None] = {}
        for index, queue in enumerate(self.control_queues):
            row = rows.get(queue, {})
            expires = row.get("ExpiresAt")
            live = expires is not None and expires > now
            owners[index] = (row.get("CurrentOwner") or None) if live else None
        return owners

    # -- queues -------------------------------------------------------------------------------
    async def queue_counts(self) -> dict[str, int]:
        """Approximate message count (visible or not) of every control queue and the work items."""
        names = [*self.control_queues, self.work_item_queue]

        async def count(name: str) -> int:
            properties = await self.queues.get_queue_client(name).get_queue_properties()
            return int(properties.approximate_message_count or 0)

        counts = await asyncio.gather(*(count(name) for name in names))
        return dict(zip(names, counts, strict=True))

    # -- tables (reference §2.2, §2.4) --------------------------------------------------------
    async def history_rows(self, instance_id: str) -> list[dict[str, Any]]:
        """Every row of the instance's History partition (ids here never need key escaping)."""
        table = self.tables.get_table_client(f"{self.hub}History")
        pages = table.query_entities("PartitionKey eq @pk", parameters={"pk": instance_id})
        return [dict(row) async for row in pages]

    async def instance_row(self, instance_id: str) -> dict[str, Any] | None:
        table = self.tables.get_table_client(f"{self.hub}Instances")
        try:
            return dict(await table.get_entity(instance_id, ""))
        except ResourceNotFoundError:
            return None

    async def check_completed(self, instance_id: str, expected_output: Any) -> HistoryFacts:
        """Assert the History and Instances rows of a completed instance are whole and agree.

        History: a sentinel naming the execution, event rows at RowKeys 0..n-1 (16-digit upper-case
        hex, no gap) all of that execution (any rows past them are an older, longer execution's,
        which readers never reach), exactly one ExecutionStarted, exactly one
        ExecutionCompleted (status Completed, the expected result), no task or sub-orchestration
        scheduled twice, every response answering something scheduled. Instances: Completed, same
        execution, same output.
        """
        rows = await self.history_rows(instance_id)
        sentinels = [r for r in rows if r["RowKey"] == "sentinel"]
        assert len(sentinels) == 1, f"{instance_id}: {len(sentinels)} sentinel rows"
        sentinel = sentinels[0]
        execution_id = sentinel["ExecutionId"]
        assert sentinel.get("IsCheckpointComplete") is True, (instance_id, sentinel)
        ordered = sorted((r for r in rows if r["RowKey"] != "sentinel"), key=lambda r: r["RowKey"])
        keys = [r["RowKey"] for r in ordered]
        assert keys == [f"{i:016X}" for i in range(len(ordered))], (
            f"{instance_id}: RowKeys are not 0..{len(ordered) - 1} without gaps: {keys}"
        )
        events = [*itertools.takewhile(lambda r: r.get("ExecutionId") == execution_id, ordered)]
        stale = {r.get("ExecutionId") for r in ordered[len(events) :]}
        assert execution_id not in stale, f"{instance_id}: rows of {execution_id} after a gap"

        def of_type(name: str) -> list[dict[str, Any]]:
            return [r for r in events if r["EventType"] == name]

        assert len(of_type("ExecutionStarted")) == 1, f"{instance_id}: ExecutionStarted count"
        completed = of_type("ExecutionCompleted")
        assert len(completed) == 1, (
            f"{instance_id}: {len(completed)} ExecutionCompleted rows at "
            f"{[r['RowKey'] for r in completed]}"
        )
        assert completed[0]["OrchestrationStatus"] == "Completed", completed[0]
        assert json.loads(completed[0]["Result"]) == expected_output, (instance_id, completed[0])

        scheduled = _unique_ids(instance_id, of_type("TaskScheduled"), "TaskScheduled")
        created = _unique_ids(
            instance_id,
            of_type("SubOrchestrationInstanceCreated"),
            "SubOrchestrationInstanceCreated",
        )
        answered: set[int] = set()
        duplicates = 0
        inputs: list[Any] = []
        for row in of_type("TaskCompleted"):
            task = int(row["TaskScheduledId"])
            assert task in scheduled, f"{instance_id}: TaskCompleted for unscheduled task {task}"
            if task in answered:
                duplicates += 1
                continue
            answered.add(task)
            inputs.append(json.loads(scheduled[task]["Input"]))
        assert answered == set(scheduled), (
            f"{instance_id}: unanswered tasks {set(scheduled) - answered}"
        )
        sub_answered: set[int] = set()
        for row in of_type("SubOrchestrationInstanceCompleted"):
            task = int(row["TaskScheduledId"])
            assert task in created, f"{instance_id}: sub-orchestration response for {task}"
            if task in sub_answered:
                duplicates += 1
            sub_answered.add(task)
        assert sub_answered == set(created), (instance_id, set(created) - sub_answered)
        assert not of_type("TaskFailed") and not of_type("SubOrchestrationInstanceFailed")

        instance = await self.instance_row(instance_id)
        assert instance is not None, f"{instance_id}: no Instances row"
        assert instance["RuntimeStatus"] == "Completed", (instance_id, instance["RuntimeStatus"])
        assert instance["ExecutionId"] == execution_id, (instance_id, instance["ExecutionId"])
        assert json.loads(instance["Output"]) == expected_output, (instance_id, instance["Output"])
        return HistoryFacts(
            instance_id=instance_id,
            execution_id=execution_id,
            rows=len(events),
            output=expected_output,
            completed_activity_inputs=inputs,
            duplicate_responses=duplicates,
        )

    async def check_all_completed(self, expected: Mapping[str, Any]) -> dict[str, HistoryFacts]:
        """`check_completed` for every instance id → expected output."""
        facts = await asyncio.gather(
            *(self.check_completed(instance_id, output) for instance_id, output in expected.items())
        )
        return {fact.instance_id: fact for fact in facts}


def _unique_ids(
    instance_id: str, rows: Iterable[dict[str, Any]], kind: str
) -> dict[int, dict[str, Any]]:
    """Rows by EventId; an EventId seen twice means a decision was recorded twice."""
    by_id: dict[int, dict[str, Any]] = {}
    for row in rows:
        event_id = int(row["EventId"])
        assert event_id not in by_id, f"{instance_id}: {kind} #{event_id} recorded twice"
        by_id[event_id] = row
    return by_id
