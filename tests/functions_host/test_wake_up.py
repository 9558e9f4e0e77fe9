"""Waking the app for durable work: a client outside the app puts a wake-up message, the app's
`durabletask_wakeup` queue trigger (what the platform scales on) starts the engine and holds
until the work is done; with no HTTP request and no heartbeat."""

from __future__ import annotations

import json
import math
import secrets
import shutil
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

from durable_ext.client import DurableOrchestrationClient
from durable_ext.host.embedded import engine_status
from durable_ext.host.wake_up import DEFAULT_QUEUE_BATCH_SIZE, WAKE_UP_FUNCTION, WakeUpSender
from durable_ext.orchestration.status import OrchestrationRuntimeStatus
from durable_ext.storage.wake_queue import WakeQueue
from tests.azurite import AzuriteInstance
from tests.functions_host import FakeHost, ManualClock
from tests.functions_host.conftest import APPS
from tests.functions_host.test_engine_lifecycle import observer, sample_app_root
from tests.wait import wait_for

HEARTBEAT = "durabletask_heartbeat"


def quick_polling(root: Path) -> None:
    """The queue listener polls at least every half second (the default backs off to 1 min)."""
    host_json = json.loads((root / "host.json").read_text())
    host_json.setdefault("extensions", {})["queues"] = {"maxPollingInterval": "00:00:00.5"}
    (root / "host.json").write_text(json.dumps(host_json))


async def test_a_client_outside_the_app_wakes_it_and_the_wake_up_function_holds_for_the_work(
    azurite: AzuriteInstance, tmp_path: Path
) -> None:
    root, hub = sample_app_root(tmp_path, azurite)
    quick_polling(root)
    settings = {"AzureWebJobsStorage": azurite.connection_string}
    # Deployed: the host indexes the app (and the engine creates the hub); then scaled to zero.
    async with FakeHost(root, app_settings=settings, clock=ManualClock()) as host:
        trigger = host.index.get(WAKE_UP_FUNCTION).trigger
        assert trigger is not None
        assert (trigger["type"], trigger["queueName"]) == ("queueTrigger", f"{hub.lower()}-wakeup")
        assert trigger["connection"] == "AzureWebJobsStorage"
        await wait_for(lambda: _engine_owns_partitions(host), timeout=60)

    async with observer(azurite, hub) as storage:
        wake_queue = storage.hub.wake_queue
        sender = WakeUpSender(wake_queue)
        client = DurableOrchestrationClient(storage.hub, wake_up=sender.after_send)
        instance_id = await client.start_new("hello_sequence")
        length = await wake_queue.length()
        assert length == 1  # the platform's target: ceil(1 / batchSize) = 1 instance
        assert math.ceil(length / DEFAULT_QUEUE_BATCH_SIZE) == 1
        await client.raise_event(instance_id, "ignored")  # within WAKE_COALESCE: no second one
        assert await wake_queue.length() == 1
        status = await client.get_status(instance_id)
        assert status.runtime_status is OrchestrationRuntimeStatus.Pending

        # The platform starts an instance for the message: no HTTP request, the heartbeat's
        # clock never moves.
        async with FakeHost(root, app_settings=settings, clock=ManualClock()) as host:
            woken = await host.invocations.wait_for(
                lambda i: i.function == WAKE_UP_FUNCTION, timeout=60
            )
            assert woken.succeeded
            assert host.invocations.of(HEARTBEAT) == []
            done = await client.get_status(instance_id)
            assert done.runtime_status is OrchestrationRuntimeStatus.Completed
            assert done.output == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]
            # It held until the orchestration had completed, so the platform kept the instance.
            assert woken.finished is not None and woken.finished >= done.last_updated_time
            # Deleted once its invocation succeeded: the platform may scale in.
            await wait_for(lambda: _empty(wake_queue), timeout=10)


async def _empty(queue: WakeQueue) -> bool:
    return await queue.length() == 0


def _engine_owns_partitions(host: FakeHost) -> bool:
    assert host.register is not None
    return engine_status(host.register).owned_partitions == (0, 1, 2, 3)


async def test_a_backlog_makes_the_engine_ask_the_platform_for_more_instances_until_it_is_done(
    azurite: AzuriteInstance, tmp_path: Path
) -> None:
    root = tmp_path / "app"
    shutil.copytree(APPS / "backlog", root)
    hub = "Backlog" + secrets.token_hex(4)
    host_json = {
        "version": "2.0",
        "extensionBundle": {
            "id": "Microsoft.Azure.Functions.ExtensionBundle",
            "version": "[4.*, 5.0.0)",
        },
        "extensions": {
            "durableTask": {
                "hubName": hub,
                "maxConcurrentActivityFunctions": 1,
                "durableExt": {"scaleSignalInterval": "00:00:00.5"},
            },
            "queues": {"maxPollingInterval": "00:00:00.5"},
        },
    }
    (root / "host.json").write_text(json.dumps(host_json))
    settings = {"AzureWebJobsStorage": azurite.connection_string}
    count = 20
    async with (
        FakeHost(root, app_settings=settings, clock=ManualClock()) as host,
        aiohttp.ClientSession() as http,
        observer(azurite, hub) as storage,
    ):
        release = sys.modules["function_app"].release
        await wait_for(lambda: _engine_owns_partitions(host), timeout=60)
        async with http.post(host.url(f"fan_out/{count}")) as response:
            assert response.status == 202, await response.text()
            instance_id = (await response.json())["id"]
        wake_queue = storage.hub.wake_queue

        async def instances_asked_for() -> int:  # what target-based scaling makes of the queue
            return math.ceil(await wake_queue.length() / DEFAULT_QUEUE_BATCH_SIZE)

        # One activity at a time per instance and 20 waiting: more instances are asked for.
        await wait_for(lambda: _at_least(instances_asked_for, 2), timeout=30)
        release.set()
        status = await storage.client.wait_for_completion(instance_id, timeout=60)
        assert status.output == sum(range(count))
        # Each wake-up message was consumed by an invocation that held while there was work;
        # once the work is done they end and the queue empties: the platform may scale in.
        await wait_for(lambda: _empty(wake_queue), timeout=60)
        woken = host.invocations.of(WAKE_UP_FUNCTION)
        assert woken and all(i.succeeded for i in woken)


async def _at_least(measure: Callable[[], Awaitable[int]], floor: int) -> bool:
    return await measure() >= floor


async def _empty(queue: WakeQueue) -> bool:
    return await queue.length() == 0


def _engine_owns_partitions(host: FakeHost) -> bool:
    assert host.register is not None
    return engine_status(host.register).owned_partitions == (0, 1, 2, 3)
