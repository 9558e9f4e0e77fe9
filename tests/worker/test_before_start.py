"""Terminate and suspend that reach an instance before its start (issue 10, point 5).

The start message is taken off the queue for a few seconds, as a worker that took it and was
stopped, or a start put back with back-off, would leave it; the client's terminate or suspend then
reaches the worker first. Neither may be lost or undone: a terminated instance stays Terminated
when its start arrives, and a suspended one is Suspended once started.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from azure.storage.queue.aio import QueueClient

from durable_ext import DurableOrchestrationContext, OrchestrationRuntimeStatus
from durable_ext.orchestration.history import ExecutionCompleted, ExecutionStarted
from durable_ext.runtime import Runtime
from durable_ext.worker import FunctionRegistry
from tests.azurite import AzuriteInstance
from tests.storage.raw_state import wait_until
from tests.worker.conftest import fast_options

DEADLINE = 60.0
HIDDEN_SECONDS = 4


def _registry(ran: list[str]) -> FunctionRegistry:
    def chain(context: DurableOrchestrationContext) -> Any:
        if context.get_input() == "wait":
            yield context.wait_for_external_event("go")
        return (yield context.call_activity("note", context.instance_id))

    def note(instance_id: str) -> str:
        ran.append(instance_id)
        return f"ran {instance_id}"

    registry = FunctionRegistry()
    registry.add_orchestrator("chain", chain)
    registry.add_activity("note", note)
    return registry


async def _start_hidden(
    azurite: AzuriteInstance, rt: Runtime, instance_id: str, wait: bool = False
) -> None:
    """start_new, then take its start message off the queue for HIDDEN_SECONDS."""
    await rt.client.start_new("chain", instance_id, "wait" if wait else None)
    name = rt.hub.control_queue_for(instance_id).name
    async with QueueClient.from_connection_string(azurite.connection_string, name) as queue:
        taken = [m async for m in queue.receive_messages(visibility_timeout=HIDDEN_SECONDS)]
    assert len(taken) == 1, "the start message should be the only one in its queue"


@contextlib.asynccontextmanager
async def _sent_then_served(
    azurite: AzuriteInstance,
    hub_name: str,
    registry: FunctionRegistry,
    send: Callable[[Runtime], Awaitable[None]],
) -> AsyncIterator[Runtime]:
    """`send` through a client while no worker runs, then a worker on the hub."""
    connection = azurite.connection_string
    async with Runtime(registry, connection=connection, hub=hub_name, run_worker=False) as rt:
        await send(rt)
    async with Runtime(registry, connection=connection, hub=hub_name, options=fast_options()) as rt:
        yield rt


async def _drained(rt: Runtime, instance_id: str) -> None:
    queue = rt.hub.control_queue_for(instance_id)

    async def empty() -> bool:
        return await queue.count() == 0

    await wait_until(empty, timeout=DEADLINE, what="the control queue to drain")


async def test_a_terminate_before_the_start_is_not_undone_by_it(
    azurite: AzuriteInstance, hub_name: str
) -> None:
    instance_id = "terminated-early"
    ran: list[str] = []

    async def send(rt: Runtime) -> None:
        await _start_hidden(azurite, rt, instance_id)
        await rt.client.terminate(instance_id, "not needed")

    async with _sent_then_served(azurite, hub_name, _registry(ran), send) as rt:
        await _drained(rt, instance_id)  # the terminate, then the start when it reappears
        status = await rt.client.get_status(instance_id)
        history = (await rt.hub.history.load(instance_id)).events

    assert status.runtime_status is OrchestrationRuntimeStatus.Terminated, status.to_json()
    assert status.output == "not needed"
    assert ran == [], "the terminated instance's activity ran"
    assert sum(isinstance(e, ExecutionStarted) for e in history) == 1
    completed = [e for e in history if isinstance(e, ExecutionCompleted)]
    assert [e.orchestration_status.name for e in completed if e.orchestration_status] == [
        "Terminated"
    ]


async def test_a_suspend_before_the_start_applies_after_it(
    azurite: AzuriteInstance, hub_name: str
) -> None:
    instance_id = "suspended-early"
    ran: list[str] = []

    async def send(rt: Runtime) -> None:
        await _start_hidden(azurite, rt, instance_id, wait=True)
        await rt.client.suspend(instance_id, "hold on")

    async with _sent_then_served(azurite, hub_name, _registry(ran), send) as rt:

        async def suspended() -> bool:
            status = await rt.client.get_status(instance_id)
            return status.runtime_status is OrchestrationRuntimeStatus.Suspended

        await wait_until(suspended, timeout=DEADLINE, what="the instance to be suspended")
        await rt.client.resume(instance_id, "go")
        await rt.client.raise_event(instance_id, "go")
        status = await rt.client.wait_for_completion(instance_id, timeout=DEADLINE)

    assert status.runtime_status is OrchestrationRuntimeStatus.Completed, status.to_json()
    assert status.output == f"ran {instance_id}"


async def test_a_terminate_sent_with_the_start_terminates_it(
    azurite: AzuriteInstance, hub_name: str
) -> None:
    """Start and Terminate in one batch: the start is applied first, then the terminate."""
    instance_id = "terminated-at-once"
    ran: list[str] = []

    async def send(rt: Runtime) -> None:
        await rt.client.start_new("chain", instance_id)
        await rt.client.terminate(instance_id, "changed my mind")

    async with _sent_then_served(azurite, hub_name, _registry(ran), send) as rt:
        await _drained(rt, instance_id)
        status = await rt.client.get_status(instance_id)

    assert status.runtime_status is OrchestrationRuntimeStatus.Terminated, status.to_json()
    assert status.output == "changed my mind"
    assert ran == []
