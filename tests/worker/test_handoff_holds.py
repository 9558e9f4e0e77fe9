"""Messages are sent held (invisible) only where the in-process handoff takes them: with
`in_process_handoff` off, nothing this worker sends to its own partitions is hidden."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from durable_ext import DurableOrchestrationContext, OrchestrationRuntimeStatus
from durable_ext.runtime import Runtime
from durable_ext.worker import FunctionRegistry


def parent(ctx: DurableOrchestrationContext) -> Any:
    first = yield ctx.call_activity("double", 2)
    second = yield ctx.call_sub_orchestrator("child", first)
    return second


def child(ctx: DurableOrchestrationContext) -> Any:
    return ctx.get_input() + 1


async def test_without_handoff_no_message_is_sent_held(
    runtime: Callable[..., Runtime],
) -> None:
    registry = FunctionRegistry()
    registry.add_orchestrator("parent", parent)
    registry.add_orchestrator("child", child)
    registry.add_activity("double", lambda n: n * 2)
    held: list[str] = []
    async with runtime(registry, in_process_handoff=False) as rt:
        for queue in [*rt.hub.control_queues, rt.hub.work_items]:
            send_held = queue.send_held

            async def recording(message: Any, hold: Any, _send: Any = send_held) -> Any:
                held.append(message.event.event_type.name)
                return await _send(message, hold)

            queue.send_held = recording  # type: ignore[method-assign]
        instance_id = await rt.client.start_new("parent")
        status = await rt.client.wait_for_completion(instance_id, timeout=60)
    assert status.runtime_status is OrchestrationRuntimeStatus.Completed
    assert status.output == 5
    assert held == [], "sent invisible with nothing in memory to take them"
