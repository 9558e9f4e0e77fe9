"""Unknown function names fail clearly, on the client or in the orchestration, and lose nothing."""

from __future__ import annotations

import pytest

from durable_ext import DurableOrchestrationContext, OrchestrationRuntimeStatus
from durable_ext.worker import FunctionRegistry


def calls_missing_activity(ctx: DurableOrchestrationContext):
    return (yield ctx.call_activity("no_such_activity", 1))


def calls_missing_child(ctx: DurableOrchestrationContext):
    return (yield ctx.call_sub_orchestrator("no_such_orchestrator", 1))


def registry() -> FunctionRegistry:
    reg = FunctionRegistry()
    reg.add_orchestrator("calls_missing_activity", calls_missing_activity)
    reg.add_orchestrator("calls_missing_child", calls_missing_child)
    return reg


async def test_start_new_rejects_an_unknown_orchestrator(runtime) -> None:
    async with runtime(registry()) as rt:
        with pytest.raises(ValueError, match="'nope' doesn't exist"):
            await rt.client.start_new("nope", instance_id="never-created")
        assert not await rt.client.get_status("never-created")
        assert [await q.count() for q in rt.hub.control_queues] == [0, 0, 0, 0]


async def test_unknown_activity_fails_the_orchestration_naming_it(runtime) -> None:
    async with runtime(registry()) as rt:
        instance_id = await rt.client.start_new("calls_missing_activity")
        status = await rt.client.wait_for_completion(instance_id, timeout=60)
    assert status.runtime_status is OrchestrationRuntimeStatus.Failed
    assert "Activity function 'no_such_activity' does not exist." in status.output


async def test_unknown_sub_orchestrator_fails_the_parent_naming_it(runtime) -> None:
    async with runtime(registry()) as rt:
        instance_id = await rt.client.start_new("calls_missing_child")
        status = await rt.client.wait_for_completion(instance_id, timeout=60)
    assert status.runtime_status is OrchestrationRuntimeStatus.Failed
    assert "Orchestrator function 'no_such_orchestrator' does not exist." in status.output
