"""A worker never acts on a partition it may no longer own, with either partition manager.

* A partition stolen while one of its episodes is held between its outbound send and its history
  write (a stall point): the episode writes nothing once it goes on, is given back, and nothing of
  the instance stays cached.
* A replay that blocks the event loop for longer than the lease interval: the ownership thread
  keeps renewing, so the worker keeps its partitions and the episode commits.
* 1 -> 3 -> 1 workers on one hub (table manager): partitions move by draining, so no two workers
  ever run episodes of one instance at once (no checkpoint conflict), and everything completes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.storage.blob.aio import BlobLeaseClient

from durable_ext import DurableOrchestrationContext
from durable_ext.fault_points import stalled
from durable_ext.orchestration.status import OrchestrationRuntimeStatus
from durable_ext.runtime import Runtime
from durable_ext.worker import FunctionRegistry
from tests.azurite import AzuriteInstance
from tests.faults.storage_view import HubView
from tests.faults.test_split_brain import ids_on_partition
from tests.wait import wait_for
from tests.worker.conftest import fast_options
from tests.worker.fault_app import expected_chain
from tests.worker.fault_app import registry as fault_registry

PARTITION = 0
ALL = frozenset(range(4))
MANAGERS = ["table", "legacy"]


async def steal(view: HubView, hub: str, index: int, manager: str) -> None:
    """Make `intruder` the owner of partition `index`, as another worker would."""
    h = hub.lower()
    queue = f"{h}-control-{index:02d}"
    if manager == "table":
        table = view.tables.get_table_client(f"{hub}Partitions")
        row = await table.get_entity("", queue)
        row["CurrentOwner"] = "intruder"
        row["ExpiresAt"] = datetime.now(UTC) + timedelta(minutes=5)
        await table.upsert_entity(row)
        return
    blob = view.blobs.get_blob_client(f"{h}-leases", f"default/{queue}")
    await BlobLeaseClient(blob).break_lease(lease_break_period=0)
    lease = BlobLeaseClient(blob)
    await lease.acquire(60)
    content = {"PartitionId": queue, "Owner": "intruder", "Token": lease.id, "Epoch": 99}
    await blob.upload_blob(json.dumps(content), overwrite=True, lease=lease)


@pytest.mark.parametrize("manager", MANAGERS)
async def test_an_episode_whose_partition_is_stolen_midway_writes_nothing(
    azurite: AzuriteInstance, hub_name: str, manager: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="durable_ext")
    options = fast_options(worker_id="a", use_legacy_partition_management=manager == "legacy")
    reached, go_on = asyncio.Event(), asyncio.Event()

    async def hold_first() -> None:
        if not reached.is_set():
            reached.set()
            await go_on.wait()

    instance_id = ids_on_partition("stolen", 1, PARTITION)[0]
    async with (
        Runtime(
            fault_registry, connection=azurite.connection_string, hub=hub_name, options=options
        ) as rt,
        HubView(azurite.connection_string, hub_name) as view,
    ):
        worker = rt.worker
        assert worker is not None
        with stalled("after-outbound-send", hold_first):
            await rt.client.start_new("chain", instance_id, {"steps": 2, "ms": 10})
            await asyncio.wait_for(reached.wait(), 30)

            await steal(view, hub_name, PARTITION, manager)
            await wait_for(lambda: PARTITION not in worker.leases.owned, 15)
            assert not worker.orchestrations.fence.may_act(PARTITION)
            go_on.set()
            await wait_for(lambda: worker.orchestrations.in_flight == 0, 15)

        history = await rt.hub.history.load(instance_id)
        assert history.events == [], "the stale episode wrote its history"
        assert len(worker.orchestrations.cache) == 0
        assert not worker.orchestrations.owns(instance_id)
        messages = [r.getMessage() for r in caplog.records]
        assert any("abandoning this episode" in m for m in messages), messages
        assert worker.leases.owned == ALL - {PARTITION}


BLOCK_SECONDS = 4.5
TABLE_LEASE = timedelta(seconds=3)


def blocking_registry(blocked: list[float]) -> FunctionRegistry:
    """`blocking` computes (blocks the event loop) for longer than the lease interval once."""

    def blocking(ctx: DurableOrchestrationContext) -> Any:
        if not blocked:
            started = time.monotonic()
            time.sleep(BLOCK_SECONDS)  # a long replay: CPU work in orchestrator code
            blocked.append(time.monotonic() - started)
        value = yield ctx.call_activity("echo", "after")
        return value

    registry = FunctionRegistry()
    registry.add_orchestrator("blocking", blocking)
    registry.add_activity("echo", lambda value: value)
    return registry


async def test_a_replay_longer_than_the_lease_interval_keeps_the_partitions(
    azurite: AzuriteInstance, hub_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="durable_ext")
    blocked: list[float] = []
    options = fast_options(
        worker_id="a",
        lease_interval=TABLE_LEASE,
        lease_acquire_interval=timedelta(seconds=0.5),
    )
    async with Runtime(
        blocking_registry(blocked),
        connection=azurite.connection_string,
        hub=hub_name,
        options=options,
    ) as rt:
        worker = rt.worker
        assert worker is not None and worker.leases.owned == ALL
        instance_id = await rt.client.start_new("blocking")
        status = await rt.client.wait_for_completion(instance_id, timeout=30)

        assert status.runtime_status is OrchestrationRuntimeStatus.Completed
        assert status.output == "after"
        assert blocked and blocked[0] > TABLE_LEASE.total_seconds()
        assert worker.leases.owned == ALL
    messages = [r.getMessage() for r in caplog.records]
    lost = [m for m in messages if "Stopped processing" in m or "abandoning this episode" in m]
    assert not [m for m in lost if "gave it up" not in m], lost  # only the final stop


@pytest.mark.slow
async def test_one_three_one_workers_never_run_one_instance_twice(
    azurite: AzuriteInstance, hub_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Orchestrations run while workers go 1 -> 3 -> 1: every partition is handed over drained,
    so no checkpoint ever meets another worker's write, and all complete exactly."""
    caplog.set_level(logging.INFO, logger="durable_ext")
    connection = azurite.connection_string
    steps = 6

    def worker(worker_id: str) -> Runtime:
        options = fast_options(worker_id=worker_id, drain_timeout=timedelta(seconds=20))
        return Runtime(fault_registry, connection=connection, hub=hub_name, options=options)

    async with worker("a") as a, HubView(connection, hub_name) as view:
        assert a.worker is not None
        ids = [f"moving{n}" for n in range(16)]
        for instance_id in ids:
            await a.client.start_new("chain", instance_id, {"steps": steps, "ms": 200})
        async with worker("b") as b, worker("c") as c:
            workers = [w.worker for w in (a, b, c) if w.worker is not None]

            def spread() -> bool:
                owned = [w.leases.owned for w in workers]
                return all(owned) and sum(map(len, owned)) == 4

            await wait_for(spread, 30)
        await wait_for(lambda: a.worker is not None and a.worker.leases.owned == ALL, 30)
        for instance_id in ids:
            status = await a.client.wait_for_completion(instance_id, timeout=60)
            assert status.runtime_status is OrchestrationRuntimeStatus.Completed, status
        await view.check_all_completed(dict.fromkeys(ids, expected_chain(steps)))
    messages = [r.getMessage() for r in caplog.records]
    assert any("Draining partition" in m for m in messages)
    conflicts = [m for m in messages if "checkpointed by another worker" in m]
    assert not conflicts, conflicts


async def test_an_activity_handed_over_by_a_lost_partition_still_completes(
    azurite: AzuriteInstance, hub_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Activities belong to no partition: one an episode handed over in process, running when
    the episode's partition is stolen, still sends its result and deletes its work item."""
    caplog.set_level(logging.INFO, logger="durable_ext")
    reached, go_on = asyncio.Event(), asyncio.Event()

    async def hold_first() -> None:
        if not reached.is_set():
            reached.set()
            await go_on.wait()

    instance_id = ids_on_partition("handed", 1, PARTITION)[0]
    options = fast_options(worker_id="a")
    async with (
        Runtime(
            fault_registry, connection=azurite.connection_string, hub=hub_name, options=options
        ) as rt,
        HubView(azurite.connection_string, hub_name) as view,
    ):
        worker = rt.worker
        assert worker is not None
        with stalled("activity-start", hold_first):
            await rt.client.start_new("chain", instance_id, {"steps": 1, "ms": 10})
            await asyncio.wait_for(reached.wait(), 30)
            await steal(view, hub_name, PARTITION, "table")
            await wait_for(lambda: PARTITION not in worker.leases.owned, 15)
            go_on.set()
            await wait_for(lambda: worker.activities.in_flight == 0, 15)

        async def settled() -> bool:
            counts = await view.queue_counts()
            control = view.control_queues[PARTITION]
            return counts[view.work_item_queue] == 0 and counts[control] == 1

        await wait_for(settled, 15)  # the work item deleted, its result in the control queue
        refused = [r.getMessage() for r in caplog.records if "failed to complete" in r.getMessage()]
        assert not refused, refused
