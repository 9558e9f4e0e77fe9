"""A worker killed after writing an event into history, before deleting its message (issue 10,
point 4): the message comes back, and the event must not be applied a second time.

A client's raise carries the microsecond it was raised at; history keeps it, so a copy of an
applied client event is recognised and dropped. The crash is real: a worker process exits with 137
at `before-inbound-delete` (history and Instances row written, inbound messages not deleted).
"""

from __future__ import annotations

import asyncio

from durable_ext.orchestration.history import EventRaised
from tests.azurite import AzuriteInstance
from tests.reliability.chaos_app import APPROVAL_EVENT, RECEIVED, expected_approval
from tests.reliability.test_stale_starts import DEADLINE, client_only, crash_at, worker

VISIBILITY_SECONDS = 2.0


async def test_an_event_applied_before_a_crash_is_not_applied_again(
    azurite: AzuriteInstance, hub_name: str
) -> None:
    connection = azurite.connection_string
    instance_id = "event-crash"
    async with client_only(connection, hub_name) as rt:
        await rt.client.start_new("approval", instance_id, {"events": 2})
        await rt.client.raise_event(instance_id, APPROVAL_EVENT, 0)

    # The start and the event in one episode: committed, then the worker dies.
    await asyncio.to_thread(
        crash_at, "before-inbound-delete", connection, hub_name, VISIBILITY_SECONDS
    )

    async with worker(connection, hub_name, visibility_seconds=VISIBILITY_SECONDS) as rt:
        control = rt.hub.control_queue_for(instance_id)
        end = asyncio.get_running_loop().time() + DEADLINE
        while await control.count() and asyncio.get_running_loop().time() < end:
            await asyncio.sleep(0.2)  # the left-over messages come back after their visibility
        assert await control.count() == 0, "the crashed worker's messages were not settled"
        await rt.client.raise_event(instance_id, APPROVAL_EVENT, 1)
        status = await rt.client.wait_for_completion(instance_id, timeout=DEADLINE)
        history = (await rt.hub.history.load(instance_id)).events

    output = status.output
    assert {k: v for k, v in output.items() if k != RECEIVED} == expected_approval(2)
    assert output[RECEIVED] == [0, 1], f"events received: {output[RECEIVED]}"
    assert sum(isinstance(e, EventRaised) for e in history) == 2
