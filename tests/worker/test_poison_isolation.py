"""One unreadable message never stalls the others of its receive (issue 10, point 6).

Every fault is real Azurite behaviour: a body that is not a DTFx envelope, a large-message wrapper
whose blob does not exist, one whose blob a lifecycle rule has moved to the Archive tier (Azurite
answers 409 BlobArchived), and one whose blob data the storage has lost (Azurite fails while sending
the body). Each is abandoned on its own with the DTFx back-off (2^DequeueCount s) while the good
messages of the same receive are returned and processed at once; none is deleted.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob.aio import ContainerClient
from azure.storage.queue.aio import QueueClient

from durable_ext import DurableOrchestrationContext, OrchestrationRuntimeStatus
from durable_ext.orchestration.history import EventRaised, OrchestrationInstance, TaskScheduled
from durable_ext.runtime import Runtime
from durable_ext.storage.connection import StorageConnection
from durable_ext.storage.large_payloads import LargePayloadStore
from durable_ext.storage.messages import MessageData, serialize_message, wrapper_for_blob
from durable_ext.storage.queues import TaskHubQueue
from durable_ext.storage.rest.queue_messages import QueueMessages
from durable_ext.storage.task_hub import TaskHub
from durable_ext.worker import FunctionRegistry
from tests.azurite import AzuriteInstance
from tests.storage.raw_state import RawStorage, wait_until
from tests.worker.conftest import fast_options

VISIBILITY = timedelta(seconds=30)
"""The receive's visibility timeout: an abandoned message must come back long before it."""
BACK_OFF_LIMIT = 10.0
"""A message abandoned at DequeueCount 1 is visible again after 2 s; allow for a slow machine."""


def event_for(instance_id: str, name: str = "go", value: str = '"went"') -> MessageData:
    return MessageData(EventRaised(name=name, input=value), OrchestrationInstance(instance_id))


async def put_raw(queue: QueueClient, text: str) -> str:
    """Enqueue a body as-is (no encoding), as a foreign or broken writer would; returns its id."""
    return str((await queue.send_message(text)).id)


async def put_poison(hub: TaskHub, raw: RawStorage, queue_name: str, tag: str) -> dict[str, str]:
    """Three unreadable messages in `queue_name`, by kind: message id."""
    queue = raw.queues.get_queue_client(queue_name)
    archived = f"{tag}/message-archived.json.gz"
    await hub.payloads.upload(archived, serialize_message(event_for(f"{tag}-a")))
    await raw.blobs.get_blob_client(hub.payloads.container_name, archived).set_standard_blob_tier(
        "Archive"
    )
    return {
        "bad envelope": await put_raw(queue, "this is not a DTFx message"),
        "missing blob": await put_raw(queue, wrapper_for_blob(f"{tag}/message-missing.json.gz")),
        "archived blob": await put_raw(queue, wrapper_for_blob(archived)),
    }


async def assert_abandoned_with_back_off(raw: RawStorage, queue_name: str, ids: set[str]) -> None:
    """The messages are invisible now, come back after the 2 s back-off (not the receive's
    visibility timeout) with DequeueCount 1, and are still in the queue (nothing deleted)."""
    abandoned_at = time.monotonic()
    assert not {m.id for m in await raw.peek(queue_name)} & ids, "abandoned messages are hidden"
    back: dict[str, int] = {}

    async def all_back() -> bool:
        for message in await raw.peek(queue_name):
            if message.id in ids:
                back[message.id] = message.dequeue_count or 0
        return set(back) == ids

    await wait_until(all_back, timeout=BACK_OFF_LIMIT, interval=0.1, what="abandoned messages")
    assert time.monotonic() - abandoned_at < VISIBILITY.total_seconds()
    assert back == dict.fromkeys(ids, 1), "each was received once and put back, not lost"


@pytest.mark.parametrize("queue_kind", ["control", "workitems"])
async def test_unreadable_messages_are_abandoned_alone_and_the_rest_received(
    azurite: AzuriteInstance, raw: RawStorage, hub_name: str, queue_kind: str
) -> None:
    async with TaskHub(
        StorageConnection.from_connection_string(azurite.connection_string), hub_name
    ) as hub:
        await hub.create_if_not_exists()
        queue = hub.control_queues[0] if queue_kind == "control" else hub.work_items
        good = [event_for(f"good-{i}") for i in range(3)]
        await queue.send(good[0])
        poison = await put_poison(hub, raw, queue.name, "p")
        for message in good[1:]:
            await queue.send(message)

        received = await queue.receive(32, VISIBILITY)

        assert sorted(m.data.instance.instance_id for m in received) == [
            "good-0",
            "good-1",
            "good-2",
        ]
        await assert_abandoned_with_back_off(raw, queue.name, set(poison.values()))


async def test_a_blob_the_storage_fails_to_serve_does_not_fail_the_receive(
    private_azurite: AzuriteInstance, hub_name: str
) -> None:
    """Azurite lost the blob's data (its extent file): the download fails on the server side."""
    cs = private_azurite.connection_string
    connection = StorageConnection.from_connection_string(cs)
    async with TaskHub(connection, hub_name) as hub, RawStorage(cs) as raw:
        await hub.create_if_not_exists()
        broken = "b/message-broken.json.gz"
        await hub.payloads.upload(broken, serialize_message(event_for("b")))
        for extent in Path(private_azurite.location, "__blobstorage__").iterdir():
            extent.unlink()
        name = hub.work_items.name
        # The hub's own queue, read through a blob client that does not retry (the SDK's retries
        # would only make the same failure slower).
        container = ContainerClient.from_connection_string(
            cs, hub.payloads.container_name, retry_total=0
        )
        transport = connection.rest_transport("queue")
        queue = TaskHubQueue(
            raw.queues.get_queue_client(name),
            QueueMessages(transport, name),
            LargePayloadStore(container),
        )
        await hub.work_items.send(event_for("good-0"))
        broken_id = await put_raw(raw.queues.get_queue_client(name), wrapper_for_blob(broken))
        await hub.work_items.send(event_for("good-1"))

        try:
            received = await queue.receive(32, VISIBILITY)
        finally:
            await transport.close()
            await container.close()

        assert sorted(m.data.instance.instance_id for m in received) == ["good-0", "good-1"]
        await assert_abandoned_with_back_off(raw, name, {broken_id})


# -- end to end: a worker keeps processing ------------------------------------------------------------


def wait_go(ctx: DurableOrchestrationContext) -> Any:
    return (yield ctx.wait_for_external_event("go"))


def same_partition_ids(hub: TaskHub, count: int, prefix: str) -> list[str]:
    """`count` instance ids whose control queue is partition 0."""
    ids = (f"{prefix}{i}" for i in range(10_000))
    return [i for i in ids if hub.partition_of(i) == 0][:count]


async def test_worker_applies_the_good_events_of_a_batch_at_once(
    azurite: AzuriteInstance, raw: RawStorage, hub_name: str
) -> None:
    registry = FunctionRegistry()
    registry.add_orchestrator("wait_go", wait_go)
    async with Runtime(
        registry, connection=azurite.connection_string, hub=hub_name, run_worker=False
    ) as client:
        hub = client.hub
        ids = same_partition_ids(hub, 4, "w")
        for instance_id in ids:
            await client.client.start_new("wait_go", instance_id)
        queue = hub.control_queues[0]
        # One batch: three good events, the unreadable ones, and one event whose blob is missing
        # now and uploaded later (it must not be lost).
        for instance_id in ids[:3]:
            await queue.send(event_for(instance_id))
        poison = await put_poison(hub, raw, queue.name, "x")
        late = event_for(ids[3], value='"late"')
        late_blob = f"{ids[3]}/message-late.json.gz"
        await put_raw(raw.queues.get_queue_client(queue.name), wrapper_for_blob(late_blob))

    async with Runtime(
        registry, connection=azurite.connection_string, hub=hub_name, options=fast_options()
    ) as rt:
        started = time.monotonic()
        for instance_id in ids[:3]:
            status = await rt.client.wait_for_completion(instance_id, timeout=20)
            assert status.runtime_status is OrchestrationRuntimeStatus.Completed
            assert status.output == "went"
        assert time.monotonic() - started < VISIBILITY.total_seconds()

        await rt.hub.payloads.upload(late_blob, serialize_message(late))
        status = await rt.client.wait_for_completion(ids[3], timeout=30)
        assert status.output == "late", "the message whose blob was missing was retried"
        await only_poison_left(raw, queue.name, poison)


async def only_poison_left(raw: RawStorage, queue_name: str, poison: dict[str, str]) -> None:
    """Every good message was deleted and every unreadable one is still there (retried with
    back-off, never deleted)."""

    async def settled() -> bool:
        return await raw.message_count(queue_name) == len(poison)

    await wait_until(settled, timeout=BACK_OFF_LIMIT, interval=0.1, what="the good messages")


async def test_worker_runs_the_good_work_items_of_a_batch_at_once(
    azurite: AzuriteInstance, raw: RawStorage, hub_name: str
) -> None:
    ran: list[str] = []
    registry = FunctionRegistry()
    registry.add_activity("step", lambda value: ran.append(value))
    async with Runtime(
        registry, connection=azurite.connection_string, hub=hub_name, run_worker=False
    ) as client:
        hub = client.hub
        work_items = hub.work_items
        for i in range(3):
            await work_items.send(
                MessageData(
                    TaskScheduled(event_id=0, name="step", input=f'"item-{i}"'),
                    OrchestrationInstance(f"orphan-{i}", "e1"),
                )
            )
        poison = await put_poison(hub, raw, work_items.name, "y")

    async with Runtime(
        registry, connection=azurite.connection_string, hub=hub_name, options=fast_options()
    ) as rt:
        started = time.monotonic()

        async def all_ran() -> bool:
            return len(ran) == 3

        await wait_until(all_ran, timeout=20, what="the good work items")
        assert time.monotonic() - started < VISIBILITY.total_seconds()
        assert sorted(ran) == ["item-0", "item-1", "item-2"]
        await only_poison_left(raw, rt.hub.work_items.name, poison)
