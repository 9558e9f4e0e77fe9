"""Bounded storage work per worker (issue 10, point 6): outbound sends and inbound deletes run at
most `max_storage_operation_concurrency` at once (DTFx `MaxStorageOperationConcurrency`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from durable_ext import DurableOrchestrationContext, OrchestrationRuntimeStatus
from durable_ext.runtime import Runtime
from durable_ext.storage.queues import TaskHubQueue
from durable_ext.worker import FunctionRegistry
from durable_ext.worker.storage_limiter import StorageLimiter
from tests.azurite import AzuriteInstance
from tests.storage.raw_state import wait_until
from tests.worker.conftest import fast_options

COMPLETED = OrchestrationRuntimeStatus.Completed


class Gauge:
    """How many calls are in flight at once, at most, and in all."""

    def __init__(self) -> None:
        self.now = self.peak = self.total = 0

    @contextmanager
    def held(self) -> Iterator[None]:
        self.now += 1
        self.total += 1
        self.peak = max(self.peak, self.now)
        try:
            yield
        finally:
            self.now -= 1


@pytest.fixture
def gauges(monkeypatch: pytest.MonkeyPatch) -> dict[str, Gauge]:
    """Count the real storage calls the orchestration dispatcher alone makes: sends to the
    work-item queue and deletes from control queues (they still go to Azurite)."""
    gauges = {"send": Gauge(), "delete": Gauge()}
    real_send, real_delete = TaskHubQueue.send, TaskHubQueue.delete

    async def send(self: TaskHubQueue, *args: Any, **kwargs: Any) -> None:
        if not self.name.endswith("-workitems"):
            return await real_send(self, *args, **kwargs)
        with gauges["send"].held():
            return await real_send(self, *args, **kwargs)

    async def delete(self: TaskHubQueue, *args: Any) -> None:
        if "-control-" not in self.name:
            return await real_delete(self, *args)
        with gauges["delete"].held():
            return await real_delete(self, *args)

    monkeypatch.setattr(TaskHubQueue, "send", send)
    monkeypatch.setattr(TaskHubQueue, "delete", delete)
    return gauges


FAN = 20
LIMIT = 3


def gate_then_fan(ctx: DurableOrchestrationContext) -> Any:
    yield ctx.task_all([ctx.wait_for_external_event(f"e{i}") for i in range(FAN)])
    results = yield ctx.task_all([ctx.call_activity("echo", i) for i in range(FAN)])
    return sum(results)


async def test_sends_and_deletes_of_an_episode_are_bounded(
    azurite: AzuriteInstance, hub_name: str, gauges: dict[str, Gauge]
) -> None:
    registry = FunctionRegistry()
    registry.add_orchestrator("gate_then_fan", gate_then_fan)
    registry.add_activity("echo", lambda value: value)
    cs = azurite.connection_string
    async with Runtime(registry, connection=cs, hub=hub_name, run_worker=False) as client:
        # One batch for the worker: the start and FAN events, deleted in one go; the episode
        # then schedules FAN activities, sent in one go.
        instance_id = await client.client.start_new("gate_then_fan")
        for i in range(FAN):
            await client.client.raise_event(instance_id, f"e{i}", i)

    options = fast_options(max_storage_operation_concurrency=LIMIT, in_process_handoff=False)
    async with Runtime(registry, connection=cs, hub=hub_name, options=options) as rt:
        status = await rt.client.wait_for_completion(instance_id, timeout=60)

    assert status.runtime_status is COMPLETED and status.output == sum(range(FAN))
    assert gauges["send"].total == FAN
    assert gauges["send"].peak == LIMIT, f"{gauges['send'].peak} sends at once, limit {LIMIT}"
    assert gauges["delete"].total >= FAN + 1
    assert gauges["delete"].peak == LIMIT, f"{gauges['delete'].peak} deletes at once"


async def test_limiter_admits_at_most_its_limit() -> None:
    limiter = StorageLimiter(2)
    gauge = Gauge()
    release = asyncio.Event()

    async def operation() -> None:
        with gauge.held():
            await release.wait()

    tasks = [asyncio.create_task(limiter.run(operation)) for _ in range(5)]
    await wait_until(_async(lambda: gauge.now == 2), timeout=5, what="two operations")
    assert gauge.now == 2
    release.set()
    await asyncio.gather(*tasks)
    assert (gauge.peak, gauge.total) == (2, 5)
    async with limiter:
        pass
    with pytest.raises(ValueError, match="at least 1"):
        StorageLimiter(0)


def _async(check: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def run() -> bool:
        return check()

    return run
