"""The instance cache: same results as a full replay, and fenced by the sentinel ETag."""

from __future__ import annotations

import asyncio

from durable_ext import DurableOrchestrationContext, OrchestrationRuntimeStatus, RetryOptions
from durable_ext.orchestration.history import GenericEvent
from durable_ext.worker import FunctionRegistry
from tests.wait import wait_for


def mixed(ctx: DurableOrchestrationContext):
    first = yield ctx.call_activity("double", 1)
    fanned = yield ctx.task_all([ctx.call_activity("double", i) for i in range(5)])
    retried = yield ctx.call_activity_with_retry("flaky", RetryOptions(100, 3), 7)
    event = yield ctx.wait_for_external_event("go")
    return [first, sum(fanned), retried, event]


def registry(attempts: list[int]) -> FunctionRegistry:
    reg = FunctionRegistry()
    reg.add_orchestrator("mixed", mixed)
    reg.add_activity("double", lambda n: n * 2)

    def flaky(n: int) -> int:
        attempts.append(n)
        if len(attempts) == 1:
            raise RuntimeError("first attempt fails")
        return n

    reg.add_activity("flaky", flaky)
    return reg


async def _waiting_for_event(rt, instance_id: str) -> list:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while loop.time() < deadline:
        history = await rt.client.get_history(instance_id)
        if sum(type(e).__name__ == "TaskCompleted" for e in history) == 7:
            return history
        await asyncio.sleep(0.05)
    raise AssertionError("the orchestration never reached its event wait")


async def test_cached_and_uncached_runs_write_the_same_history(runtime) -> None:
    shapes = []
    for cache_size in (1000, 0):
        async with runtime(registry([]), instance_cache_size=cache_size) as rt:
            instance_id = await rt.client.start_new("mixed", instance_id=f"mixed-{cache_size}")
            await _waiting_for_event(rt, instance_id)
            if cache_size:  # the episode is cached once its checkpoint has settled
                await wait_for(lambda: len(rt.worker.orchestrations.cache) == 1, timeout=10)
            await rt.client.raise_event(instance_id, "go", "ok")
            status = await rt.client.wait_for_completion(instance_id, timeout=60)
            history = await rt.client.get_history(instance_id)
        assert status.output == [2, 20, 7, "ok"]
        shapes.append(
            [
                (type(e).__name__, e.event_id)
                for e in history
                if type(e).__name__ not in ("OrchestratorStarted", "OrchestratorCompleted")
            ]
        )
    assert sorted(shapes[0]) == sorted(shapes[1])


async def test_a_write_by_someone_else_invalidates_the_cached_instance(runtime) -> None:
    async with runtime(registry([])) as rt:
        instance_id = await rt.client.start_new("mixed")
        await _waiting_for_event(rt, instance_id)
        await wait_for(lambda: len(rt.worker.orchestrations.cache) == 1, timeout=10)
        loaded = await rt.hub.history.load(instance_id)
        await rt.hub.history.append(
            instance_id,
            loaded.execution_id,
            [GenericEvent(data="external write")],
            len(loaded.events),
            loaded.etag,
        )
        await rt.client.raise_event(instance_id, "go", "after the fence")
        status = await rt.client.wait_for_completion(instance_id, timeout=60)
        history = await rt.client.get_history(instance_id)
    assert status.runtime_status is OrchestrationRuntimeStatus.Completed
    assert status.output == [2, 20, 7, "after the fence"]
    assert any(isinstance(e, GenericEvent) for e in history)
