"""A late Instances merge must not leave a finished instance looking Running.

A worker that stalls between its history write and its Instances merge (a zombie: SIGSTOP, a long
GC pause) can wake up after a newer owner has checkpointed the instance to its end and merged
`Completed`; its own merge, from the older episode, then overwrites the row with `Running`. The chaos
run found exactly this. The worker now checks a merge that came late (or after it lost the
partition) against the history and rebuilds a finished instance's row from it.

Here the stall is an Instances merge held back until the test, playing the newer owner, has
finished the instance in storage; the "late" threshold is set to 0 so that the check runs without
waiting a real second.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from durable_ext import DurableOrchestrationContext
from durable_ext.orchestration.history import (
    EventRaised,
    ExecutionCompleted,
    ExecutionStarted,
    OrchestrationInstance,
    OrchestrationStatus,
    OrchestratorCompleted,
    OrchestratorStarted,
)
from durable_ext.orchestration.status import OrchestrationRuntimeStatus
from durable_ext.storage.instance_store import InstanceColumns
from durable_ext.worker import FunctionRegistry, orchestration_dispatcher

DEADLINE = 30.0


def waits_for_approval(ctx: DurableOrchestrationContext) -> Any:
    return (yield ctx.wait_for_external_event("approval"))


async def _until(probe: Any, what: str) -> Any:
    end = time.monotonic() + DEADLINE
    while not (value := await probe()):
        assert time.monotonic() < end, what
        await asyncio.sleep(0.05)
    return value


@pytest.mark.parametrize("newer", ["same execution", "next execution"])
async def test_a_late_running_merge_does_not_hide_a_newer_completion(
    runtime: Any, monkeypatch: pytest.MonkeyPatch, newer: str
) -> None:
    """The newer owner finishes the instance: in the execution the zombie checkpointed, or in the
    next one (after a continue-as-new), whose ExecutionId the stale merge also overwrote."""
    monkeypatch.setattr(orchestration_dispatcher, "_LATE_MERGE_SECONDS", 0.0)
    registry = FunctionRegistry()
    registry.add_orchestrator("waits_for_approval", waits_for_approval)
    async with runtime(registry) as rt:
        instances = rt.hub.instances
        merge = instances.merge
        stalled = asyncio.Event()
        resume = asyncio.Event()
        stale_written = asyncio.Event()

        async def stalling_merge(instance_id: str, columns: InstanceColumns) -> None:
            running = columns.runtime_status is OrchestrationRuntimeStatus.Running
            if running and not stalled.is_set():
                stalled.set()
                await resume.wait()
                await merge(instance_id, columns)
                stale_written.set()
                return
            await merge(instance_id, columns)

        monkeypatch.setattr(instances, "merge", stalling_merge)
        instance_id = await rt.client.start_new("waits_for_approval")
        await asyncio.wait_for(stalled.wait(), DEADLINE)

        # The newer owner: finishes the instance in history, then merges Completed.
        loaded = await rt.hub.history.load(instance_id)
        assert loaded.execution_id is not None
        now = datetime.now(UTC)
        execution_id, first, events = loaded.execution_id, len(loaded.events), []
        if newer == "next execution":
            execution_id, first = uuid.uuid4().hex, 0
            events = [
                ExecutionStarted(
                    timestamp=now,
                    orchestration_instance=OrchestrationInstance(instance_id, execution_id),
                    name="waits_for_approval",
                    input="null",
                    generation=1,
                )
            ]
        ending = [
            OrchestratorStarted(timestamp=now),
            *events,
            EventRaised(timestamp=now, name="approval", input='"yes"'),
            ExecutionCompleted(
                timestamp=now, orchestration_status=OrchestrationStatus.Completed, result='"yes"'
            ),
            OrchestratorCompleted(timestamp=now),
        ]
        await rt.hub.history.append(instance_id, execution_id, ending, first, loaded.etag)
        await merge(
            instance_id,
            InstanceColumns(
                execution_id=execution_id,
                runtime_status=OrchestrationRuntimeStatus.Completed,
                output='"yes"',
                completed_time=now,
                last_updated_time=now,
            ),
        )

        resume.set()  # the zombie wakes up and writes its stale Running
        await asyncio.wait_for(stale_written.wait(), DEADLINE)

        async def completed() -> bool:
            row = await instances.get(instance_id, fetch_payloads=False)
            return row is not None and row.runtime_status is OrchestrationRuntimeStatus.Completed

        await _until(completed, "the row was left Running after the late merge")
        row = await instances.get(instance_id)
    assert row is not None and (row.output, row.execution_id) == ('"yes"', execution_id)
