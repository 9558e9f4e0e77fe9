"""Orchestrators and activities the management API tests drive."""

from __future__ import annotations

import asyncio
from typing import Any

from durable_ext import DurableOrchestrationContext, OrchestrationRuntimeStatus
from durable_ext.client import DurableOrchestrationClient
from durable_ext.status import DurableOrchestrationStatus
from durable_ext.worker import FunctionRegistry


def hello(ctx: DurableOrchestrationContext) -> Any:
    return (yield ctx.call_activity("greet", ctx.get_input()))


def wait_for_go(ctx: DurableOrchestrationContext) -> Any:
    return (yield ctx.wait_for_external_event("go"))


def explode(ctx: DurableOrchestrationContext) -> Any:
    return (yield ctx.call_activity("boom", ctx.get_input()))


def boom(what: Any) -> Any:
    raise ValueError(f"boom: {what}")


def registry(**extra: Any) -> FunctionRegistry:
    """hello/greet, wait_for_go and explode/boom, plus `o_name=` orchestrators and activities."""
    reg = FunctionRegistry()
    reg.add_orchestrator("hello", hello)
    reg.add_orchestrator("wait_for_go", wait_for_go)
    reg.add_orchestrator("explode", explode)
    reg.add_activity("greet", lambda name: f"Hello {name}!")
    reg.add_activity("boom", boom)
    for name, fn in extra.items():
        if name.startswith("o_"):
            reg.add_orchestrator(name[2:], fn)
        else:
            reg.add_activity(name, fn)
    return reg


async def wait_for_status(
    client: DurableOrchestrationClient,
    instance_id: str,
    *wanted: OrchestrationRuntimeStatus,
    timeout: float = 30.0,
) -> DurableOrchestrationStatus:
    """Poll until the instance has one of the `wanted` statuses."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        status = await client.get_status(instance_id)
        if status and status.runtime_status in wanted:
            return status
        assert loop.time() < deadline, f"{instance_id} is {status.runtime_status}, not {wanted}"
        await asyncio.sleep(0.1)
