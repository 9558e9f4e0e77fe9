"""Failures after a checkpoint's history write (issue 10, point 4): once history holds an episode,
its inbound messages are deleted, never put back (a redelivered event would be applied twice).

Lost answer: the history transaction reaches storage and commits, but its response is lost on the
way back, so the transport retries it and storage answers 412: the sentinel's ETag has moved,
because of our own first attempt. That must count as committed, not as another worker's checkpoint.

Failed Instances merge: storage refuses the merge that follows the history write (past the
transport's retries). The event is still deleted as applied; the row is brought up to date later.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from durable_ext import DurableOrchestrationContext, OrchestrationRuntimeStatus
from durable_ext.orchestration.history import EventRaised
from durable_ext.runtime import Runtime
from durable_ext.worker import FunctionRegistry
from tests.azurite import AzuriteInstance
from tests.lossy_link import LossyLink
from tests.storage.raw_state import wait_until
from tests.worker.conftest import fast_options

DEADLINE = 60.0


def _twice(context: DurableOrchestrationContext) -> Any:
    first = yield context.wait_for_external_event("A")
    second = yield context.task_any(
        [context.wait_for_external_event("A"), context.wait_for_external_event("B")]
    )
    return [first, second.result]


def _request_line(chunk: bytes) -> bytes:
    return chunk.split(b"\r\n", 1)[0]


def _is_history_batch(chunk: bytes) -> bool:
    return chunk.startswith(b"POST ") and b"/$batch " in _request_line(chunk)


def _is_instances_merge(chunk: bytes) -> bool:
    return chunk.startswith(b"MERGE ") and b"Instances(" in _request_line(chunk)


@contextlib.asynccontextmanager
async def _waiting_behind_a_link(
    azurite: AzuriteInstance, hub_name: str, instance_id: str, **options: Any
) -> AsyncIterator[tuple[Runtime, LossyLink]]:
    """A worker whose table requests go through a LossyLink, and `_twice` waiting for "A"."""
    table = urlsplit(azurite.table_endpoint)
    link = await LossyLink(table.hostname or "127.0.0.1", table.port or 0).start()
    connection = azurite.connection_string.replace(
        azurite.table_endpoint, f"http://127.0.0.1:{link.port}{table.path}"
    )
    registry = FunctionRegistry()
    registry.add_orchestrator("twice", _twice)
    try:
        async with Runtime(
            registry, connection=connection, hub=hub_name, options=fast_options(**options)
        ) as rt:
            await rt.client.start_new("twice", instance_id)

            async def running() -> bool:
                status = await rt.client.get_status(instance_id)
                return status.runtime_status is OrchestrationRuntimeStatus.Running

            await wait_until(running, timeout=DEADLINE, what="the orchestration to run")
            yield rt, link
    finally:
        await link.close()


async def _raise_b_and_finish(rt: Runtime, instance_id: str) -> None:
    """Once event A is settled: raise B, and check A and B were each applied once."""
    await rt.client.raise_event(instance_id, "B", "second")
    status = await rt.client.wait_for_completion(instance_id, timeout=DEADLINE)
    history = (await rt.hub.history.load(instance_id)).events
    raised = [e.name for e in history if isinstance(e, EventRaised)]
    assert raised == ["A", "B"], f"events in history: {raised}"
    assert status.runtime_status is OrchestrationRuntimeStatus.Completed, status.to_json()
    assert status.output == ["first", "second"]


async def test_a_retried_checkpoint_that_meets_its_own_write_is_committed(
    azurite: AzuriteInstance, hub_name: str
) -> None:
    instance_id = "lost-answer"
    async with _waiting_behind_a_link(azurite, hub_name, instance_id) as (rt, link):
        link.lose_next_response(_is_history_batch)
        await rt.client.raise_event(instance_id, "A", "first")
        control = rt.hub.control_queue_for(instance_id)

        async def settled() -> bool:
            return link.lost == 1 and await control.count() == 0

        # Deleted as applied, or (the bug) put back, received again and applied again.
        await wait_until(settled, timeout=DEADLINE, what="event A to be settled")
        await _raise_b_and_finish(rt, instance_id)


async def test_a_failed_instances_merge_after_the_history_write_still_deletes_the_event(
    azurite: AzuriteInstance, hub_name: str
) -> None:
    instance_id = "merge-refused"
    refresh_every_checkpoint = timedelta(0)
    async with _waiting_behind_a_link(
        azurite, hub_name, instance_id, instance_status_refresh=refresh_every_checkpoint
    ) as (rt, link):
        link.refuse(_is_instances_merge, times=4)  # the first try and the transport's 3 retries
        await rt.client.raise_event(instance_id, "A", "first")
        control = rt.hub.control_queue_for(instance_id)

        async def settled() -> bool:
            return link.refused == 4 and await control.count() == 0

        await wait_until(settled, timeout=DEADLINE, what="event A to be settled")
        await _raise_b_and_finish(rt, instance_id)
