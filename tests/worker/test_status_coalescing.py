"""Instances status coalescing (`WorkerOptions.instance_status_refresh`).

While an orchestration runs and neither its runtime status nor its custom status changes, a
checkpoint skips the Instances merge unless the last one is older than the refresh interval, so
the row's LastUpdatedTime may lag; every visible change, and the end, is written at once.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from typing import Any

from durable_ext import DurableOrchestrationContext
from durable_ext.orchestration.history import OrchestratorStarted, TaskCompleted
from durable_ext.orchestration.status import OrchestrationRuntimeStatus
from durable_ext.worker import FunctionRegistry

DEADLINE = 60.0


def steps_then_wait(ctx: DurableOrchestrationContext) -> Any:
    """Three activities, a custom status, two more, then wait for `go`."""
    for n in range(3):
        yield ctx.call_activity("step", n)
    ctx.set_custom_status("halfway")
    for n in range(3, 5):
        yield ctx.call_activity("step", n)
    yield ctx.wait_for_external_event("go")
    return "done"


def registry() -> FunctionRegistry:
    reg = FunctionRegistry()
    reg.add_orchestrator("steps_then_wait", steps_then_wait)
    reg.add_activity("step", lambda n: n)
    return reg


async def _episode_times_once_waiting(rt: Any, instance_id: str) -> list[datetime]:
    """The OrchestratorStarted times of the history, once all five activities are recorded."""
    end = time.monotonic() + DEADLINE
    while True:
        events = (await rt.hub.history.load(instance_id)).events
        if sum(isinstance(e, TaskCompleted) for e in events) == 5:
            return [e.timestamp for e in events if isinstance(e, OrchestratorStarted)]
        assert time.monotonic() < end, "the five activities did not complete in time"
        await asyncio.sleep(0.05)


async def _row(rt: Any, instance_id: str) -> Any:
    return await rt.hub.instances.get(instance_id, fetch_payloads=False)


async def test_unchanged_status_is_not_rewritten_within_the_refresh_interval(runtime) -> None:
    async with runtime(registry(), instance_status_refresh=timedelta(hours=1)) as rt:
        instance_id = await rt.client.start_new("steps_then_wait")
        episodes = await _episode_times_once_waiting(rt, instance_id)
        row = await _row(rt, instance_id)
        # Episodes: start, step 0 done, 1 done, 2 done (custom status set), 3 done, 4 done.
        assert len(episodes) == 6, episodes
        assert (row.runtime_status, row.custom_status) == (
            OrchestrationRuntimeStatus.Running,
            '"halfway"',
        )
        assert row.last_updated_time == episodes[3], (
            "LastUpdatedTime should be that of the episode that set the custom status, the last "
            f"visible change: {row.last_updated_time} not in {episodes}"
        )
        await rt.client.raise_event(instance_id, "go")
        status = await rt.client.wait_for_completion(instance_id, timeout=DEADLINE)
        final = await _row(rt, instance_id)
    assert status.output == "done"
    assert final.runtime_status is OrchestrationRuntimeStatus.Completed
    assert final.last_updated_time > episodes[-1]


async def test_a_zero_refresh_writes_the_row_at_every_checkpoint(runtime) -> None:
    async with runtime(registry(), instance_status_refresh=timedelta(0)) as rt:
        instance_id = await rt.client.start_new("steps_then_wait")
        episodes = await _episode_times_once_waiting(rt, instance_id)
        end = time.monotonic() + DEADLINE
        while (row := await _row(rt, instance_id)).last_updated_time != episodes[-1]:
            assert time.monotonic() < end, f"the last checkpoint was not merged: {row}"
            await asyncio.sleep(0.05)
        await rt.client.raise_event(instance_id, "go")
        status = await rt.client.wait_for_completion(instance_id, timeout=DEADLINE)
    assert len(episodes) == 6, episodes
    assert status.output == "done"
