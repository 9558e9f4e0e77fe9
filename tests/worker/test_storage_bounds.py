"""Bounded storage work per worker (issue 10, point 6): outbound sends and inbound deletes run at
most `max_storage_operation_concurrency` at once (DTFx `MaxStorageOperationConcurrency`), and
timers that are no longer awaited leave no `call_later` handles behind while awaited ones still
wake their queue's poller on time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest

from durable_ext import DurableOrchestrationContext, OrchestrationRuntimeStatus
from durable_ext.orchestration.history import TimerCreated
from durable_ext.runtime import Runtime
from durable_ext.storage.queues import TaskHubQueue
from durable_ext.worker import FunctionRegistry
from durable_ext.worker.storage_limiter import StorageLimiter
from durable_ext.worker.timer_wakes import TimerWakes
from tests.azurite import AzuriteInstance
from tests.storage.raw_state import wait_until
from tests.worker.conftest import fast_options

COMPLETED = OrchestrationRuntimeStatus.Completed
RUNNING = OrchestrationRuntimeStatus.Running


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


# -- timer wake-ups ---------------------------------------------------------------------------------

LONG = timedelta(hours=1)
RACES = 30


def race(ctx: DurableOrchestrationContext) -> Any:
    timer = ctx.create_timer(ctx.current_utc_datetime + LONG)
    event = ctx.wait_for_external_event("go")
    winner = yield ctx.task_any([event, timer])
    if winner is event:
        timer.cancel()
        return "event"
    return "timer"


def sleeper(ctx: DurableOrchestrationContext) -> Any:
    seconds = ctx.get_input()
    yield ctx.create_timer(ctx.current_utc_datetime + timedelta(seconds=seconds))
    return "woke"


def live_handles() -> list[asyncio.TimerHandle]:
    """The event loop's pending, not cancelled `call_later` handles. asyncio keeps its timer heap
    in `_scheduled`; there is no public way to list it."""
    scheduled: list[asyncio.TimerHandle] = asyncio.get_running_loop()._scheduled  # type: ignore[attr-defined]
    return [handle for handle in scheduled if not handle.cancelled()]


def long_handles() -> int:
    """Live handles due more than 10 minutes from now: only a long timer's wake-up is that far
    off (polling, leases, renewals and the cache all wake within a minute)."""
    horizon = asyncio.get_running_loop().time() + 600
    return sum(1 for handle in live_handles() if handle.when() > horizon)


async def test_timer_wakes_keep_one_handle_per_queue_and_re_arm_for_the_next() -> None:
    loop = asyncio.get_running_loop()
    wakes, wake = TimerWakes(), asyncio.Event()
    for i in range(100):
        wakes.add(f"dead{i}", wake, LONG.total_seconds())
    wakes.add("live", wake, 0.2)
    wakes.add("live", wake, 0.4)
    wakes.add("other", wake, 0.3)
    assert long_handles() == 0, "armed for the earliest fire time only"
    for i in range(100):
        wakes.forget(f"dead{i}")
    wakes.forget("other")  # finished: its 0.3 s timer wakes nobody
    started = loop.time()
    for due in (0.2, 0.4):
        await asyncio.wait_for(wake.wait(), 5)
        assert loop.time() - started >= due - 0.01
        wake.clear()
    assert loop.time() - started < 5
    assert not [h for h in live_handles() if getattr(h._callback, "__self__", None) is wakes]


async def test_timers_no_longer_awaited_leave_no_handles_and_awaited_ones_still_wake(
    azurite: AzuriteInstance, hub_name: str
) -> None:
    registry = FunctionRegistry()
    registry.add_orchestrator("race", race)
    registry.add_orchestrator("sleeper", sleeper)
    # Idle polling backs off to 30 s: a timer is picked up on time only if its wake-up works.
    options = fast_options(max_queue_polling_interval=timedelta(seconds=30))
    async with Runtime(
        registry, connection=azurite.connection_string, hub=hub_name, options=options
    ) as rt:
        ids = [await rt.client.start_new("race") for _ in range(RACES)]
        for instance_id in ids:
            await wait_until(
                _status_is(rt, instance_id, RUNNING), timeout=30, what=f"{instance_id} running"
            )
        handles = long_handles()
        assert handles <= rt.hub.partition_count, f"{handles} wake-ups for {RACES} timers"

        for instance_id in ids:
            await rt.client.raise_event(instance_id, "go")
        for instance_id in ids:
            status = await rt.client.wait_for_completion(instance_id, timeout=30)
            assert status.output == "event"
        assert long_handles() == 0, "finished orchestrations keep no wake-up handle"

        # Two awaited timers on one queue: the first wake-up must re-arm for the second.
        partition = rt.hub.partition_of(ids[0])
        names = (f"sleep{i}" for i in range(10_000))
        first, second = [n for n in names if rt.hub.partition_of(n) == partition][:2]
        await rt.client.start_new("sleeper", first, client_input=4)
        await rt.client.start_new("sleeper", second, client_input=8)
        for instance_id in (first, second):
            status = await rt.client.wait_for_completion(instance_id, timeout=30)
            assert status.output == "woke"
            lateness = await _lateness(rt, instance_id)
            assert lateness < timedelta(seconds=1), f"{instance_id} woke {lateness} late"


def _status_is(
    rt: Runtime, instance_id: str, expected: OrchestrationRuntimeStatus
) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        status = await rt.client.get_status(instance_id)
        return status is not None and status.runtime_status is expected

    return check


async def _lateness(rt: Runtime, instance_id: str) -> timedelta:
    """How long after its timer's fire time the instance completed."""
    status = await rt.client.get_status(instance_id)
    history = await rt.client.get_history(instance_id)
    fire_at = next(e.fire_at for e in history if isinstance(e, TimerCreated))
    assert status is not None and status.last_updated_time is not None and fire_at is not None
    return status.last_updated_time - fire_at
