"""A worker dies holding an activity result it handed to its own orchestration in memory.

With in-process handoff the worker sends a work item to itself (held invisible), runs it, and gives
the result straight to its orchestration dispatcher: no queue message carries the result; the work
item stays in its queue until the checkpoint that records the result deletes it. Here the worker
process exits with 137 right after that handoff (`after-activity-response`), before any checkpoint
records the result (the activity takes long enough for the checkpoint that scheduled it to finish
first, so the control queues are empty then). Nothing may be lost: the work item comes back when
its hold ends, the activity runs again and the orchestration completes, each result recorded once.
"""

from __future__ import annotations

import asyncio

from azure.storage.queue.aio import QueueClient

from durable_ext.orchestration.history import ExecutionCompleted, TaskCompleted, TaskScheduled
from tests.azurite import AzuriteInstance
from tests.reliability.test_stale_starts import DEADLINE, client_only, crash_at, worker
from tests.worker.fault_app import expected_chain

HOLD_SECONDS = 3.0


async def _visible_and_hidden(connection: str, queue_name: str) -> tuple[int, int]:
    """(messages visible now, messages in the queue at all) of one queue."""
    async with QueueClient.from_connection_string(connection, queue_name) as queue:
        visible = len(await queue.peek_messages(max_messages=32))
        total = (await queue.get_queue_properties()).approximate_message_count or 0
    return visible, total


async def test_a_result_handed_over_in_memory_survives_the_worker_dying(
    azurite: AzuriteInstance, hub_name: str
) -> None:
    connection = azurite.connection_string
    instance_id = "handoff-crash"
    async with client_only(connection, hub_name) as rt:
        await rt.client.start_new("chain", instance_id, {"steps": 2, "ms": 500})

    await asyncio.to_thread(crash_at, "after-activity-response", connection, hub_name, HOLD_SECONDS)

    control = [f"{hub_name.lower()}-control-{i:02d}" for i in range(4)]
    in_control = [await _visible_and_hidden(connection, name) for name in control]
    work_items = await _visible_and_hidden(connection, f"{hub_name.lower()}-workitems")
    assert sum(total for _, total in in_control) == 0, (
        f"the result went through a control queue, not in memory: {in_control}"
    )
    assert work_items == (0, 1), f"the work item should wait, held, in its queue: {work_items}"

    async with worker(connection, hub_name, visibility_seconds=HOLD_SECONDS) as rt:
        status = await rt.client.wait_for_completion(instance_id, timeout=DEADLINE)
        history = (await rt.hub.history.load(instance_id)).events
        left = [await _visible_and_hidden(connection, name) for name in [*control]]
        left.append(await _visible_and_hidden(connection, f"{hub_name.lower()}-workitems"))

    assert status.runtime_status.value == "Completed", status.to_json()
    assert status.output == expected_chain(2)
    scheduled = [e.event_id for e in history if isinstance(e, TaskScheduled)]
    completed = [e.task_scheduled_id for e in history if isinstance(e, TaskCompleted)]
    assert scheduled == completed == [0, 1], (scheduled, completed)
    assert sum(isinstance(e, ExecutionCompleted) for e in history) == 1
    assert all(total == 0 for _, total in left), f"messages left behind: {left}"
