"""A worker that stalls right after writing a new execution must not erase a newer owner's rows.

After a continue-as-new from a long execution to a short one, the partition still holds the long
execution's surplus rows past the short one's end. The engine used to delete them with `If-Match: *`
right after its fenced sentinel write. A worker that stalled between the two (here: the stall point
`after-sentinel-write`) woke up and deleted whatever sat at those RowKeys by then: the rows a newer
owner of the instance had written meanwhile, the instance's completion among them. Now nothing is
deleted; loading stops at the first row of another ExecutionId (as DTFx does).

The stalled worker's Instances merge (Running) then comes late; it is checked against history, which
must still show the newer owner's completion for the row to end up Completed.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from durable_ext import DurableOrchestrationContext
from durable_ext.fault_points import stalled
from durable_ext.orchestration.history import (
    EventRaised,
    ExecutionCompleted,
    ExecutionStarted,
    OrchestrationStatus,
    OrchestratorCompleted,
    OrchestratorStarted,
    TaskCompleted,
)
from durable_ext.orchestration.status import OrchestrationRuntimeStatus
from durable_ext.runtime import Runtime
from durable_ext.storage.history_store import row_key
from durable_ext.storage.instance_store import InstanceColumns
from durable_ext.storage.keys import escape_key
from durable_ext.storage.task_hub import TaskHub
from durable_ext.worker import FunctionRegistry, orchestration_dispatcher
from tests.azurite import AzuriteInstance
from tests.storage.raw_state import RawStorage
from tests.worker.conftest import fast_options

DEADLINE = 20.0
STEPS = 4


def long_then_short(ctx: DurableOrchestrationContext) -> Any:
    """ "long": STEPS activities, wait for "next", continue as new; "short": wait for "finish"."""
    if ctx.get_input() == "long":
        for step in range(STEPS):
            yield ctx.call_activity("step", step)
        yield ctx.wait_for_external_event("next")
        ctx.continue_as_new("short")
        return None
    return (yield ctx.wait_for_external_event("finish"))


def registry() -> FunctionRegistry:
    functions = FunctionRegistry()
    functions.add_orchestrator("long_then_short", long_then_short)
    functions.add_activity("step", lambda n: n)
    return functions


async def _until(probe: Any, what: str) -> Any:
    end = time.monotonic() + DEADLINE
    while not (value := await probe()):
        assert time.monotonic() < end, what
        await asyncio.sleep(0.05)
    return value


async def test_a_stalled_writer_leaves_the_new_owners_rows_alone(
    azurite: AzuriteInstance, raw: RawStorage, hub_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Check the stalled worker's Instances merge against history at once (no real second late).
    monkeypatch.setattr(orchestration_dispatcher, "_LATE_MERGE_SECONDS", 0.0)
    instance_id = "stale-rows"
    reached = asyncio.Event()
    resume = asyncio.Event()

    settled = asyncio.Event()

    async def hold_once() -> None:
        if not reached.is_set():
            reached.set()
            await resume.wait()

    async def mark_settled() -> None:
        if resume.is_set():
            settled.set()

    connection = azurite.connection_string
    async with Runtime(
        registry(), connection=connection, hub=hub_name, options=fast_options()
    ) as rt:
        await rt.client.start_new("long_then_short", instance_id, "long")

        async def long_execution_waiting() -> bool:
            events = await rt.client.get_history(instance_id)
            return sum(isinstance(e, TaskCompleted) for e in events) == STEPS

        await _until(long_execution_waiting, "the long execution to wait for 'next'")
        old = await rt.hub.history.load(instance_id)

        with (
            stalled("after-sentinel-write", hold_once),
            stalled("before-inbound-delete", mark_settled),
        ):
            await rt.client.raise_event(instance_id, "next")
            await asyncio.wait_for(reached.wait(), DEADLINE)

            # The newer owner: loads the short execution and finishes it, rows and status.
            async with TaskHub(rt.hub.connection, hub_name) as owner:
                loaded = await owner.history.load(instance_id)
                assert loaded.execution_id != old.execution_id
                started = loaded.events[1]
                assert isinstance(started, ExecutionStarted) and started.input == '"short"'
                first = len(loaded.events)
                assert first + 4 < len(old.events), "the new rows lie in the old surplus range"
                now = datetime.now(UTC)
                ending = [
                    OrchestratorStarted(timestamp=now),
                    EventRaised(timestamp=now, name="finish", input='"new owner"'),
                    ExecutionCompleted(
                        timestamp=now,
                        orchestration_status=OrchestrationStatus.Completed,
                        result='"new owner"',
                    ),
                    OrchestratorCompleted(timestamp=now),
                ]
                await owner.history.append(
                    instance_id, loaded.execution_id, ending, first, loaded.etag
                )
                await owner.instances.merge(
                    instance_id,
                    InstanceColumns(
                        execution_id=loaded.execution_id,
                        runtime_status=OrchestrationRuntimeStatus.Completed,
                        output='"new owner"',
                        completed_time=now,
                        last_updated_time=now,
                    ),
                )
            resume.set()  # the stalled worker goes on with its episode
            await asyncio.wait_for(settled.wait(), DEADLINE)

        status = await rt.client.get_status(instance_id)
        events = await rt.client.get_history(instance_id)
        rows = await raw.partition(f"{hub_name}History", escape_key(instance_id))

    by_key = {r["RowKey"]: r for r in rows}
    for offset, event in enumerate(ending):
        row = by_key.get(row_key(first + offset))
        assert row is not None, f"the new owner's row {first + offset} was deleted"
        assert (row["ExecutionId"], row["EventType"]) == (
            loaded.execution_id,
            type(event).__name__,
        )
    assert status.runtime_status.value == "Completed", status.to_json()
    assert status.output == "new owner"
    assert [type(e) for e in events[first:]] == [type(e) for e in ending]
