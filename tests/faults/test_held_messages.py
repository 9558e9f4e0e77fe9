"""Messages a worker holds in memory stay invisible however long they wait (issue 10, point 3).

The visibility timeouts and the handoff hold are shrunk to 2 s, and a stall point holds the worker
for three times that: before an episode applies an external event, and before an activity runs.
Without renewal the held message reappears, is received again (DequeueCount 2) and is applied or
run a second time. With renewal it stays hidden (DequeueCount 1), and a copy forced back into the
queue meanwhile replaces the held message instead of being processed again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from azure.storage.queue.aio import QueueClient

from durable_ext import (
    DurableOrchestrationContext,
    DurableOrchestrationStatus,
    OrchestrationRuntimeStatus,
)
from durable_ext.fault_points import stalled
from durable_ext.orchestration.history import EventRaised, TaskCompleted
from durable_ext.runtime import Runtime
from durable_ext.storage.queues import ReceivedMessage
from durable_ext.worker import FunctionRegistry
from tests.storage.raw_state import wait_until
from tests.worker.conftest import fast_options

VISIBILITY = timedelta(seconds=2)
STALL_SECONDS = 3 * VISIBILITY.total_seconds()
DEADLINE = 60.0


def _registry(executions: dict[str, int]) -> FunctionRegistry:
    def approval(context: DurableOrchestrationContext) -> Any:
        first = yield context.wait_for_external_event("Approval")
        done = yield context.wait_for_external_event("Done")
        return [first, done]

    def one_activity(context: DurableOrchestrationContext) -> Any:
        return (yield context.call_activity("count", context.instance_id))

    def count(instance_id: str) -> int:
        executions[instance_id] = executions.get(instance_id, 0) + 1
        return executions[instance_id]

    registry = FunctionRegistry()
    registry.add_orchestrator("approval", approval)
    registry.add_orchestrator("one_activity", one_activity)
    registry.add_activity("count", count)
    return registry


def _runtime(
    azurite: Any, hub_name: str, registry: FunctionRegistry, *, client_handoff: bool = False
) -> Runtime:
    """Events from the client are received from the queue (the path under test) unless
    `client_handoff`: then they are sent held and handed over in memory."""
    options = fast_options(
        client_handoff=client_handoff,
        control_queue_visibility_timeout=VISIBILITY,
        work_item_queue_visibility_timeout=VISIBILITY,
        handoff_hold=VISIBILITY,
    )
    return Runtime(registry, connection=azurite.connection_string, hub=hub_name, options=options)


def _held(rt: Runtime, predicate: Callable[[ReceivedMessage], bool]) -> list[ReceivedMessage]:
    assert rt.worker is not None
    return [m for m in rt.worker.held.messages() if predicate(m)]


def _is_event(name: str) -> Callable[[ReceivedMessage], bool]:
    return lambda m: isinstance(m.data.event, EventRaised) and m.data.event.name == name


async def _start_waiting(rt: Runtime, instance_id: str) -> None:
    await rt.client.start_new("approval", instance_id)

    async def running() -> bool:
        status = await rt.client.get_status(instance_id)
        return status.runtime_status is OrchestrationRuntimeStatus.Running

    await wait_until(running, timeout=DEADLINE, what="the orchestration to run")


async def _raised_events(rt: Runtime, instance_id: str, name: str) -> int:
    events = (await rt.hub.history.load(instance_id)).events
    return sum(isinstance(e, EventRaised) and e.name == name for e in events)


async def _approve_while_stalled(
    rt: Runtime, instance_id: str, hook: Callable[[], Awaitable[None]]
) -> tuple[DurableOrchestrationStatus, int]:
    """Raise "Approval" with episodes stalled by `hook`, then "Done"; the final status and how
    many Approval events history holds."""
    with stalled("episode-start", hook):
        await rt.client.raise_event(instance_id, "Approval", "yes")
        await wait_until(
            lambda: _raised_events(rt, instance_id, "Approval"),
            timeout=DEADLINE,
            what="the event to be applied",
        )
    await rt.client.raise_event(instance_id, "Done", "ok")
    status = await rt.client.wait_for_completion(instance_id, timeout=DEADLINE)
    return status, await _raised_events(rt, instance_id, "Approval")


@pytest.mark.parametrize("client_handoff", [False, True], ids=["received", "handed-over"])
async def test_an_event_held_three_visibility_timeouts_is_applied_once(
    azurite: Any, hub_name: str, client_handoff: bool
) -> None:
    """Received (dequeued once) or handed over by the client in this process (never dequeued)."""
    instance_id = "held-event"
    seen: list[int] = []

    async with _runtime(azurite, hub_name, _registry({}), client_handoff=client_handoff) as rt:
        await _start_waiting(rt, instance_id)

        async def hold_episode() -> None:
            held = _held(rt, _is_event("Approval"))
            if held:
                await asyncio.sleep(STALL_SECONDS)  # the fault: a worker frozen this long
                seen.extend(m.dequeue_count for m in _held(rt, _is_event("Approval")))

        status, applied = await _approve_while_stalled(rt, instance_id, hold_episode)

    expected = [0] if client_handoff else [1]
    assert seen == expected, f"the held event was received again while held: {seen}"
    assert status.runtime_status is OrchestrationRuntimeStatus.Completed, status.to_json()
    assert status.output == ["yes", "ok"]
    assert applied == 1


async def test_a_copy_of_a_held_message_replaces_it(azurite: Any, hub_name: str) -> None:
    instance_id = "held-copy"
    receipts: list[tuple[str, int]] = []

    async with _runtime(azurite, hub_name, _registry({})) as rt:
        await _start_waiting(rt, instance_id)
        queue_name = rt.hub.control_queue_for(instance_id).name

        async def force_a_copy() -> None:
            held = _held(rt, _is_event("Approval"))
            if not held:
                return
            message = held[0]
            receipts.append((message.pop_receipt, message.dequeue_count))
            # As if the hold had lapsed: visible at once, so the poller receives a copy.
            async with (
                QueueClient.from_connection_string(azurite.connection_string, queue_name) as queue,
                message.lock,
            ):
                updated = await queue.update_message(
                    message.message_id, message.pop_receipt, visibility_timeout=0
                )
                message.pop_receipt = updated.pop_receipt

            async def copy_arrived() -> bool:
                return message.dequeue_count == 2

            await wait_until(copy_arrived, timeout=DEADLINE, what="a copy to arrive")
            receipts.append((message.pop_receipt, message.dequeue_count))

        status, applied = await _approve_while_stalled(rt, instance_id, force_a_copy)
        left = await rt.hub.control_queue_for(instance_id).count()

    assert len(receipts) == 2 and receipts[0][1] == 1 and receipts[1][1] == 2, receipts
    assert receipts[0][0] != receipts[1][0], "the copy's pop receipt should replace the held one"
    assert status.output == ["yes", "ok"], status.to_json()
    assert applied == 1
    assert left == 0, "the copy should have been deleted with the held message"


async def test_an_activity_result_held_three_visibility_timeouts_is_applied_once(
    azurite: Any, hub_name: str
) -> None:
    """The result of an activity handed to the orchestration in memory (its work item held) waits
    three handoff holds for its episode: the work item must not reappear and run again."""
    instance_id = "held-result"
    executions: dict[str, int] = {}
    seen: list[int] = []

    async with _runtime(azurite, hub_name, _registry(executions)) as rt:

        def is_result(message: ReceivedMessage) -> bool:
            return isinstance(message.data.event, TaskCompleted)

        async def hold_result() -> None:
            if _held(rt, is_result):
                await asyncio.sleep(STALL_SECONDS)  # the fault: a worker frozen this long
                seen.extend(m.dequeue_count for m in _held(rt, is_result))

        with stalled("episode-start", hold_result):
            await rt.client.start_new("one_activity", instance_id)
            status = await rt.client.wait_for_completion(instance_id, timeout=DEADLINE)
        history = (await rt.hub.history.load(instance_id)).events

    assert status.runtime_status is OrchestrationRuntimeStatus.Completed, status.to_json()
    assert executions == {instance_id: 1}, f"the activity ran {executions} times"
    assert status.output == 1
    assert seen == [0], f"the held work item was received again while held: {seen}"
    assert sum(isinstance(e, TaskCompleted) for e in history) == 1
