"""The wake-up queue and the scale-out signal, against Azurite: what a client puts after sending
durable work, and how far the engine tops the queue up for a backlog (the platform's target
being `ceil(length / batchSize)` instances)."""

from __future__ import annotations

import base64
import math
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from azure.storage.queue.aio import QueueClient

from durable_ext.host.scale_signal import (
    MAX_WAKE_MESSAGES_PER_ROUND,
    Backlog,
    instances_wanted,
    measure_backlog,
    signal_scale,
    wake_messages_missing,
)
from durable_ext.host.wake_up import WakeUpSender
from durable_ext.storage.connection import StorageConnection
from durable_ext.storage.task_hub import TaskHub
from durable_ext.storage.wake_queue import WakeQueue, decode_wake_message
from durable_ext.worker.options import WorkerOptions
from tests.azurite import AzuriteInstance

BATCH = 16


@pytest.fixture
async def hub(azurite: AzuriteInstance, hub_name: str) -> AsyncIterator[TaskHub]:
    connection = StorageConnection.from_connection_string(azurite.connection_string)
    async with TaskHub(connection, hub_name, 4) as hub:
        await hub.create_if_not_exists()
        yield hub


def options(activities: int, orchestrations: int) -> WorkerOptions:
    return WorkerOptions(
        max_concurrent_activity_functions=activities,
        max_concurrent_orchestrator_functions=orchestrations,
    )


def test_the_backlog_asks_for_instances_as_the_concurrency_limits_divide_it() -> None:
    idle = Backlog(0, (0, 0, 0, 0))
    assert instances_wanted(idle, options(10, 10)) == 0
    assert instances_wanted(Backlog(1, (0, 0, 0, 0)), options(10, 10)) == 1
    assert instances_wanted(Backlog(25, (0, 0, 0, 0)), options(10, 10)) == 3
    # Orchestrations: at most one instance per partition with waiting messages.
    assert instances_wanted(Backlog(0, (32, 32, 0, 0)), options(10, 1)) == 2
    assert instances_wanted(Backlog(0, (3, 0, 0, 0)), options(10, 10)) == 1
    assert instances_wanted(Backlog(25, (32, 32, 32, 32)), options(10, 1)) == 4


def test_the_queue_is_topped_up_to_the_length_the_platform_turns_into_that_many_instances() -> None:
    for wanted in range(1, 5):
        for length in range(0, 80):
            added = wake_messages_missing(wanted, length, BATCH)
            if added:
                assert math.ceil((length + added) / BATCH) == wanted or added == (
                    MAX_WAKE_MESSAGES_PER_ROUND
                )
            else:  # never more messages than needed; a longer queue is left alone
                assert math.ceil(length / BATCH) >= wanted
    assert wake_messages_missing(0, 0, BATCH) == 0
    assert wake_messages_missing(100, 0, BATCH) == MAX_WAKE_MESSAGES_PER_ROUND


async def test_the_signal_counts_work_items_and_visible_control_messages_not_timers(
    hub: TaskHub,
) -> None:
    for _ in range(25):
        await hub.work_items._messages.put("{}", visibility_timeout=None)
    await hub.control_queues[1]._messages.put("{}", visibility_timeout=None)
    # A durable timer: a delayed message counts in the queue's length, but needs no instance.
    await hub.control_queues[2]._messages.put("{}", visibility_timeout=3600)
    assert await hub.control_queues[2].count() == 1
    assert await measure_backlog(hub) == Backlog(25, (0, 1, 0, 0))

    added = await signal_scale(hub, options(10, 10), BATCH)
    assert added == 2 * BATCH + 1  # 3 instances: ceil(33 / 16)
    assert await hub.wake_queue.length() == added
    assert await signal_scale(hub, options(10, 10), BATCH) == 0  # already asked for


async def test_a_large_backlog_is_asked_for_over_several_rounds(hub: TaskHub) -> None:
    for _ in range(30):
        await hub.work_items._messages.put("{}", visibility_timeout=None)
    assert await signal_scale(hub, options(1, 1), BATCH) == MAX_WAKE_MESSAGES_PER_ROUND
    assert await signal_scale(hub, options(1, 1), BATCH) == MAX_WAKE_MESSAGES_PER_ROUND
    assert await hub.wake_queue.length() == 2 * MAX_WAKE_MESSAGES_PER_ROUND


async def test_a_client_puts_one_base64_message_per_window_and_none_while_covered(
    hub: TaskHub, azurite: AzuriteInstance
) -> None:
    covered = False
    sender = WakeUpSender(hub.wake_queue, covered=lambda: covered, coalesce=3600)
    await sender.after_send("start")
    await sender.after_send("EventRaised")  # within the window
    assert await hub.wake_queue.length() == 1
    async with QueueClient.from_connection_string(
        azurite.connection_string, hub.names.wake_queue
    ) as raw:
        [message] = await raw.peek_messages()
    document = decode_wake_message(base64.b64decode(message.content))
    assert document["reason"] == "start"
    assert message.expires_on - message.inserted_on <= timedelta(hours=1)

    covered = True  # an invocation of this process already holds for the engine
    await WakeUpSender(hub.wake_queue, covered=lambda: covered).after_send("start")
    assert await hub.wake_queue.length() == 1


async def test_a_wake_up_that_cannot_be_put_does_not_fail_the_client(
    private_azurite: AzuriteInstance, hub_name: str
) -> None:
    connection = StorageConnection.from_connection_string(private_azurite.connection_string)
    async with TaskHub(connection, hub_name, 4) as hub:
        private_azurite.stop()
        client = QueueClient.from_connection_string(
            private_azurite.connection_string, hub.names.wake_queue, retry_total=0
        )
        async with client:
            sender = WakeUpSender(WakeQueue(client))
            await sender.after_send("start")  # logged, not raised
            private_azurite.start()
            await sender.after_send("start")  # the failed one did not start a window
            assert await WakeQueue(client).length() == 1
