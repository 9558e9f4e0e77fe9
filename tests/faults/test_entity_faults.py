"""Entities under worker crashes (worker processes on one hub, as in test_worker_kill.py).

* A burst of 1,000 signals to one entity while its workers die: the first dies at the worst moment
  of a batch (fault point `before-inbound-delete`: state committed, messages not yet deleted, so
  they come back), the next is SIGKILLed mid-burst. The counter ends at exactly 1,000: no signal
  lost, none applied twice.
* An orchestration whose worker is SIGKILLed inside a critical section: after recovery it goes on,
  leaves the section and the entity is unlocked (the operation queued meanwhile then runs).
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
from pathlib import Path
from typing import Any

import pytest

from durable_ext import EntityId, OrchestrationRuntimeStatus
from durable_ext.orchestration.entity_messages import SchedulerState
from durable_ext.runtime import Runtime
from tests.azurite import AzuriteInstance
from tests.faults.storage_view import wait_for
from tests.faults.worker_processes import WorkerCluster
from tests.worker.conftest import fast_options
from tests.worker.fault_app import registry

pytestmark = pytest.mark.slow

SIGNALS = 1000
DEADLINE = 120.0  # two lease expiries (15 s) and visibility timeouts (10 s) on a slow box


def client_runtime(connection: str, hub: str) -> Runtime:
    return Runtime(
        registry, connection=connection, hub=hub, options=fast_options(), run_worker=False
    )


async def scheduler(rt: Runtime, entity: EntityId) -> SchedulerState:
    row = await rt.hub.instances.get(str(entity))
    return SchedulerState.from_text(row.input if row is not None else None)


async def counter(rt: Runtime, entity: EntityId) -> int:
    state = await scheduler(rt, entity)
    return json.loads(state.state) if state.state else 0


async def queued(rt: Runtime) -> int:
    return sum(await asyncio.gather(*(q.count() for q in rt.hub.control_queues)))


async def test_a_burst_of_signals_survives_killed_workers_exactly_once(
    azurite: AzuriteInstance, hub_name: str, tmp_path: Path
) -> None:
    connection = azurite.connection_string
    entity = EntityId("SlowCounter", "burst")
    with WorkerCluster(connection, hub_name, tmp_path, tmp_path / "activities.log") as cluster:
        async with client_runtime(connection, hub_name) as rt:
            await rt.hub.create_if_not_exists()
            cluster.start("w1", {"DURABLE_EXT_FAULT_POINTS": "before-inbound-delete:0.5"})
            for start in range(0, SIGNALS, 50):
                await asyncio.gather(
                    *(rt.client.signal_entity(entity, "add", 1) for _ in range(start, start + 50))
                )
            assert await asyncio.to_thread(cluster["w1"].wait, DEADLINE) == 137
            died_at = await counter(rt, entity)
            assert died_at < SIGNALS

            cluster.start("w2")
            mid_burst, _ = await wait_for(
                lambda: counter(rt, entity), lambda n: n >= died_at + 200, DEADLINE, "w2 runs", 0.05
            )
            cluster["w2"].send(signal.SIGKILL)
            assert await asyncio.to_thread(cluster["w2"].wait, 10) == -signal.SIGKILL
            assert mid_burst < SIGNALS, "the kill must land mid-burst"
            print(f"w1 died (fault point) at {died_at}, w2 was killed at {mid_burst}")

            cluster.start("w3")
            await wait_for(lambda: queued(rt), lambda n: n == 0, DEADLINE, "queues drained", 0.2)
            assert await counter(rt, entity) == SIGNALS
            state = await scheduler(rt, entity)
            assert not state.queue and state.locked_by is None
        dropped = sum(dropped_copies(w.stderr_path) for w in cluster.workers.values())
        assert dropped > 0, "the crash must have left applied signals to come back"


def dropped_copies(log: Path) -> int:
    """Redelivered requests the entity recognised, from a worker's DEBUG log."""
    found = re.findall(r"operations, (\d+) copies dropped", log.read_text(errors="replace"))
    return sum(int(n) for n in found)


async def test_a_lock_holder_killed_mid_section_releases_after_recovery(
    azurite: AzuriteInstance, hub_name: str, tmp_path: Path
) -> None:
    connection = azurite.connection_string
    entity = EntityId("SlowCounter", "L")
    with WorkerCluster(connection, hub_name, tmp_path, tmp_path / "activities.log") as cluster:
        async with client_runtime(connection, hub_name) as rt:
            await rt.hub.create_if_not_exists()
            cluster.start("w1")
            await rt.client.start_new("locked_section", "holder", "L")
            await wait_for(lambda: counter(rt, entity), lambda n: n == 1, DEADLINE, "first add")
            await rt.client.signal_entity(entity, "add", 100)

            def waits_behind_the_lock(state: SchedulerState) -> bool:
                return state.locked_by == "holder" and len(state.queue) == 1

            await wait_for(
                lambda: scheduler(rt, entity), waits_behind_the_lock, DEADLINE, "signal queued"
            )
            cluster["w1"].send(signal.SIGKILL)
            assert await asyncio.to_thread(cluster["w1"].wait, 10) == -signal.SIGKILL

            cluster.start("w2")
            await rt.client.raise_event("holder", "go")
            status: Any = await rt.client.wait_for_completion("holder", DEADLINE, 0.5)
            assert (status.runtime_status, status.output) == (
                OrchestrationRuntimeStatus.Completed,
                "released",
            )
            await wait_for(lambda: counter(rt, entity), lambda n: n == 102, DEADLINE, "unlocked")
            state = await scheduler(rt, entity)
            assert state.locked_by is None and not state.queue
