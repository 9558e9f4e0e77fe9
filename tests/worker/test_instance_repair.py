"""A finished instance whose Instances row was lost (crash after the history write) is repaired."""

from __future__ import annotations

import asyncio

from durable_ext import DurableOrchestrationContext, OrchestrationRuntimeStatus
from durable_ext.orchestration.history import EventRaised, OrchestrationInstance
from durable_ext.storage.messages import MessageData
from durable_ext.worker import FunctionRegistry


def one_step(ctx: DurableOrchestrationContext):
    return (yield ctx.call_activity("double", ctx.get_input()))


async def test_missing_instances_row_is_rebuilt_from_history(runtime) -> None:
    reg = FunctionRegistry()
    reg.add_orchestrator("one_step", one_step)
    reg.add_activity("double", lambda n: n * 2)
    async with runtime(reg) as rt:
        instance_id = await rt.client.start_new("one_step", client_input=21)
        await rt.client.wait_for_completion(instance_id, timeout=60)
        assert await rt.hub.instances.delete(instance_id)
        assert not await rt.client.get_status(instance_id)
        late = EventRaised(name="late", input="1")
        await rt.hub.send_to_instance(MessageData(late, OrchestrationInstance(instance_id)))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        status = await rt.client.get_status(instance_id, show_input=True)
        while not status and loop.time() < deadline:
            await asyncio.sleep(0.05)
            status = await rt.client.get_status(instance_id, show_input=True)
    assert status.runtime_status is OrchestrationRuntimeStatus.Completed
    assert (status.name, status.input_, status.output) == ("one_step", 21, 42)
