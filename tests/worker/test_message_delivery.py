"""At-least-once delivery on real queues: duplicated, early (out-of-order) and orphaned messages
(spec /work/shared/reference/dtfx-azure-storage.md §5.3, §5.7).

Messages are injected with the hub's own sender, the way a crashed worker or a .NET peer would
leave them; outcomes are read back from raw storage. Waiting is always a poll with a deadline.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from durable_ext import DurableOrchestrationContext, OrchestrationRuntimeStatus
from durable_ext.orchestration.history import (
    EventRaised,
    ExecutionSuspended,
    ExecutionTerminated,
    HistoryEvent,
    OrchestrationInstance,
    OrchestratorCompleted,
    TaskCompleted,
    TaskScheduled,
)
from durable_ext.runtime import Runtime
from durable_ext.storage.keys import escape_key
from durable_ext.storage.messages import MessageData
from durable_ext.worker import FunctionRegistry
from tests.azurite import AzuriteInstance
from tests.storage.raw_state import RawStorage, make_runtime, wait_until

COMPLETED = OrchestrationRuntimeStatus.Completed
RUNNING = OrchestrationRuntimeStatus.Running
RUN_TIMEOUT = 60.0
# An abandoned message comes back after 2^dequeueCount s (2, 4, 8, 16, ...): leave room for a few.
DRAIN_TIMEOUT = 90.0


def control_queues(hub: str) -> list[str]:
    return [f"{hub.lower()}-control-{i:02d}" for i in range(4)]


async def wait_for_drained_queues(
    raw: RawStorage, hub: str, timeout: float = DRAIN_TIMEOUT
) -> None:
    """Wait until every control queue and the work-item queue is empty (visible or not)."""

    async def drained() -> bool:
        names = [*control_queues(hub), f"{hub.lower()}-workitems"]
        counts = await asyncio.gather(*(raw.message_count(name) for name in names))
        return sum(counts) == 0

    await wait_until(drained, timeout=timeout, interval=0.1, what="the queues to drain")


async def wait_for_history(
    rt: Runtime, instance_id: str, condition: Callable[[list[HistoryEvent]], bool], what: str
) -> list[HistoryEvent]:
    """Poll the instance's history until `condition(history)` holds."""

    async def check() -> list[HistoryEvent]:
        history = await rt.client.get_history(instance_id)
        return history if condition(history) else []

    return await wait_until(check, timeout=RUN_TIMEOUT, what=what)


async def current_execution(rt: Runtime, instance_id: str) -> str:
    row = await rt.hub.instances.get(instance_id)
    assert row is not None and row.execution_id
    return row.execution_id


def of_type(history: list[HistoryEvent], kind: type[HistoryEvent]) -> list[Any]:
    return [e for e in history if isinstance(e, kind)]


def episode_done(history: list[HistoryEvent]) -> bool:
    """The last checkpointed episode is complete (history ends with OrchestratorCompleted)."""
    return bool(history) and isinstance(history[-1], OrchestratorCompleted)


def waiting_after_step(history: list[HistoryEvent]) -> bool:
    """The instance has checkpointed the activity result and now waits for "go"."""
    return bool(of_type(history, TaskCompleted)) and episode_done(history)


# -- (a) a response delivered twice ------------------------------------------------------------------


def step_then_go(ctx: DurableOrchestrationContext) -> Any:
    a = yield ctx.call_activity("step", 1)
    b = yield ctx.wait_for_external_event("go")
    return [a, b]


async def test_duplicate_task_completed_is_ignored(
    azurite: AzuriteInstance, raw: RawStorage, hub_name: str
) -> None:
    calls: list[int] = []

    def step(value: int) -> str:
        calls.append(value)
        return f"real-{value}"

    registry = FunctionRegistry()
    registry.add_orchestrator("step_then_go", step_then_go)
    registry.add_activity("step", step)
    instance_id = "dup^1"
    async with make_runtime(registry, azurite, hub_name) as rt:
        await rt.client.start_new("step_then_go", instance_id)
        await wait_for_history(rt, instance_id, waiting_after_step, "the activity result")
        execution_id = await current_execution(rt, instance_id)

        copy = MessageData(
            TaskCompleted(task_scheduled_id=0, result='"dup"'),
            OrchestrationInstance(instance_id, execution_id),
        )
        await rt.hub.send_to_instance(copy)
        await wait_for_drained_queues(raw, hub_name)  # the duplicate was consumed
        status = await rt.client.get_status(instance_id)
        assert status.runtime_status is RUNNING, "a duplicate must not complete anything"

        await rt.client.raise_event(instance_id, "go", "went")
        status = await rt.client.wait_for_completion(instance_id, timeout=RUN_TIMEOUT)
        history = await rt.client.get_history(instance_id)
        await wait_for_drained_queues(raw, hub_name)

    assert status.runtime_status is COMPLETED
    assert status.output == ["real-1", "went"], "the first (real) result wins"
    assert calls == [1], "the activity ran once"
    assert len(of_type(history, TaskScheduled)) == 1, "the duplicate scheduled nothing new"
    completions = of_type(history, TaskCompleted)
    assert {c.task_scheduled_id for c in completions} == {0}
    assert completions[0].result == '"real-1"'
    # DTFx appends a duplicate completion to history (ignored by replay); dropping it is fine too.
    assert len(completions) in (1, 2)

    rows = await raw.partition(f"{hub_name}History", escape_key(instance_id))
    sentinel = rows[-1]
    assert sentinel["RowKey"] == "sentinel" and sentinel["ExecutionId"] == execution_id
    assert [r["RowKey"] for r in rows[:-1]] == [f"{i:016X}" for i in range(len(rows) - 1)]


# -- (b) a response that arrives before its scheduling event is in history ---------------------------


def go_then_slow(ctx: DurableOrchestrationContext) -> Any:
    yield ctx.wait_for_external_event("go")
    return (yield ctx.call_activity("slow", 1))


async def test_early_task_completed_waits_for_its_task_scheduled(
    azurite: AzuriteInstance, raw: RawStorage, hub_name: str
) -> None:
    calls: list[int] = []

    async def slow(value: int) -> str:
        calls.append(value)
        await asyncio.sleep(0.5)  # the activity's own work, not synchronisation
        return f"real-{value}"

    registry = FunctionRegistry()
    registry.add_orchestrator("go_then_slow", go_then_slow)
    registry.add_activity("slow", slow)
    instance_id = "early^1"
    async with make_runtime(registry, azurite, hub_name) as rt:
        await rt.client.start_new("go_then_slow", instance_id)
        await wait_for_history(rt, instance_id, episode_done, "the first episode")
        execution_id = await current_execution(rt, instance_id)
        queue = control_queues(hub_name)[rt.hub.partition_of(instance_id)]

        early = MessageData(
            TaskCompleted(task_scheduled_id=0, result='"early"'),
            OrchestrationInstance(instance_id, execution_id),
        )
        await rt.hub.send_to_instance(early)

        async def abandoned_by_the_worker() -> bool:
            """The early message is visible again after having been dequeued (so the worker
            saw it, did not apply it and abandoned it with back-off)."""
            peeked = await raw.peek(queue)
            return any(m.dequeue_count and m.dequeue_count >= 1 for m in peeked)

        await wait_until(
            abandoned_by_the_worker,
            timeout=RUN_TIMEOUT,
            interval=0.01,
            what="the worker to dequeue and abandon the early TaskCompleted",
        )
        history = await rt.client.get_history(instance_id)
        assert not of_type(history, TaskCompleted), "applied before its TaskScheduled exists"
        assert not of_type(history, TaskScheduled)
        status = await rt.client.get_status(instance_id)
        assert status.runtime_status is RUNNING
        assert await raw.message_count(queue) == 1, "abandoned, not deleted"

        await rt.client.raise_event(instance_id, "go")
        status = await rt.client.wait_for_completion(instance_id, timeout=RUN_TIMEOUT)
        # Whichever completion is processed first wins; the other is a duplicate. Both must
        # leave the queues (the loser is discarded once its back-off expires).
        await wait_for_drained_queues(raw, hub_name)
        history = await rt.client.get_history(instance_id)
        final = await rt.client.get_status(instance_id)

    assert status.runtime_status is COMPLETED
    assert status.output in ("early", "real-1")
    assert calls == [1], "the activity was scheduled and ran exactly once"
    scheduled = of_type(history, TaskScheduled)
    assert [e.event_id for e in scheduled] == [0]
    completions = of_type(history, TaskCompleted)
    assert completions and {c.task_scheduled_id for c in completions} == {0}
    # Exactly one completion was applied: the first in history is the one the output shows.
    assert completions[0].result == f'"{status.output}"'
    first_completion = history.index(completions[0])
    assert history.index(scheduled[0]) < first_completion
    assert final.output == status.output and final.runtime_status is COMPLETED


# -- (c) messages nobody can take --------------------------------------------------------------------


async def bump_dequeue_count(raw: RawStorage, queue: str, times: int) -> None:
    """Dequeue every message of `queue` `times` times and make it visible again at once, as if
    workers had received and abandoned it (no worker may be running on the hub)."""
    client = raw.queues.get_queue_client(queue)
    for _ in range(times):
        async for message in client.receive_messages(max_messages=32, visibility_timeout=30):
            await client.update_message(message.id, message.pop_receipt, visibility_timeout=0)


async def test_messages_for_unknown_instances_are_discarded(
    azurite: AzuriteInstance, raw: RawStorage, hub_name: str
) -> None:
    """Orphans: a suspend, a terminate, an event and a response for ids that never started.
    Responses and events get the DTFx grace (abandoned until dequeued more than 5 times); the
    test pre-dequeues those 5 times itself so it need not wait out 2+4+8+16+32 s of back-off."""
    registry = FunctionRegistry()
    registry.add_orchestrator("step_then_go", step_then_go)
    registry.add_activity("step", lambda value: value)
    now = datetime.now(UTC)
    orphans: dict[str, HistoryEvent] = {
        "ghost-suspend": ExecutionSuspended(timestamp=now, reason="why"),
        "ghost-terminate": ExecutionTerminated(timestamp=now, input="stop"),
        "ghost-event": EventRaised(timestamp=now, name="go", input='"boo"'),
        "ghost-response": TaskCompleted(timestamp=now, task_scheduled_id=0, result='"late"'),
    }
    async with make_runtime(registry, azurite, hub_name, run_worker=False) as rt:
        for instance_id, event in orphans.items():
            await rt.hub.send_to_instance(MessageData(event, OrchestrationInstance(instance_id)))
    for queue in control_queues(hub_name):
        await bump_dequeue_count(raw, queue, 5)

    async with make_runtime(registry, azurite, hub_name) as rt:
        await wait_for_drained_queues(raw, hub_name)
        for instance_id in orphans:
            assert not await rt.client.get_status(instance_id)
            assert await rt.client.get_history(instance_id) == []

    assert await raw.all_rows(f"{hub_name}History") == []
    assert await raw.all_rows(f"{hub_name}Instances") == []


async def test_messages_for_a_completed_instance_are_discarded(
    azurite: AzuriteInstance, raw: RawStorage, hub_name: str
) -> None:
    calls: list[int] = []

    def step(value: int) -> str:
        calls.append(value)
        return f"real-{value}"

    registry = FunctionRegistry()
    registry.add_orchestrator("step_then_go", step_then_go)
    registry.add_activity("step", step)
    instance_id = "done^1"
    key = escape_key(instance_id)
    async with make_runtime(registry, azurite, hub_name) as rt:
        await rt.client.start_new("step_then_go", instance_id)
        await wait_for_history(rt, instance_id, waiting_after_step, "the activity result")
        await rt.client.raise_event(instance_id, "go", 1)
        status = await rt.client.wait_for_completion(instance_id, timeout=RUN_TIMEOUT)
        assert status.output == ["real-1", 1]
        await wait_for_drained_queues(raw, hub_name)
        history_before = await raw.partition(f"{hub_name}History", key)
        instance_before = await raw.partition(f"{hub_name}Instances", key)
        execution_id = history_before[-1]["ExecutionId"]

        now = datetime.now(UTC)
        late: list[tuple[HistoryEvent, str | None]] = [
            (EventRaised(timestamp=now, name="go", input="2"), None),
            (EventRaised(timestamp=now, name="go", input="3"), execution_id),
            (TaskCompleted(timestamp=now, task_scheduled_id=0, result='"late"'), execution_id),
            (TaskCompleted(timestamp=now, task_scheduled_id=7, result='"other"'), "0" * 32),
            (ExecutionSuspended(timestamp=now, reason="too late"), None),
        ]
        for event, target_execution in late:
            await rt.hub.send_to_instance(
                MessageData(event, OrchestrationInstance(instance_id, target_execution))
            )
        await wait_for_drained_queues(raw, hub_name)
        after = await rt.client.get_status(instance_id)

    assert after.runtime_status is COMPLETED and after.output == ["real-1", 1]
    assert calls == [1]
    assert await raw.partition(f"{hub_name}History", key) == history_before, "history untouched"
    assert await raw.partition(f"{hub_name}Instances", key) == instance_before, "row untouched"
    assert len(await raw.all_rows(f"{hub_name}Instances")) == 1


@pytest.mark.slow
async def test_orphan_response_is_retried_with_back_off_then_discarded(
    azurite: AzuriteInstance, raw: RawStorage, hub_name: str
) -> None:
    """In real time: a TaskCompleted for an instance that never started is abandoned with the
    2^dequeueCount back-off (2+4+8+16+32 s) and discarded on its 6th delivery, not kept forever."""
    registry = FunctionRegistry()
    registry.add_orchestrator("step_then_go", step_then_go)
    async with make_runtime(registry, azurite, hub_name) as rt:
        began = time.monotonic()
        await rt.hub.send_to_instance(
            MessageData(
                TaskCompleted(task_scheduled_id=0, result='"orphan"'),
                OrchestrationInstance("ghost", "0" * 32),
            )
        )
        await wait_for_drained_queues(raw, hub_name, timeout=120)
        elapsed = time.monotonic() - began
        assert not await rt.client.get_status("ghost")
    assert 2 + 4 + 8 + 16 + 32 - 1 <= elapsed < 2 + 4 + 8 + 16 + 32 + 64, elapsed
    assert await raw.all_rows(f"{hub_name}History") == []
    assert await raw.all_rows(f"{hub_name}Instances") == []
