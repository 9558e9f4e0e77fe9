"""An activity's result is stamped when the activity ends, as DTFx stamps TaskCompleted and
TaskFailed: the history (and the dashboard's timeline drawn from it) shows how long it ran."""

from __future__ import annotations

from datetime import timedelta

import pytest

from durable_ext import DurableOrchestrationContext, OrchestrationRuntimeStatus, clock
from durable_ext.orchestration.history import TaskCompleted, TaskFailed, TaskScheduled
from durable_ext.worker import FunctionRegistry

RAN_FOR = timedelta(minutes=5)
"""How far the activities move the engine's clock while they run (no real waiting)."""


def two_steps(ctx: DurableOrchestrationContext):
    yield ctx.call_activity("long_step", None)
    try:
        yield ctx.call_activity("long_failure", None)
    except Exception:  # noqa: BLE001 - the failure is what the test looks at
        return "done"


def long_step(_: None) -> str:
    clock.shift(RAN_FOR)
    return "ok"


def long_failure(_: None) -> str:
    clock.shift(RAN_FOR)
    raise ValueError("late")


@pytest.fixture(autouse=True)
def real_clock():
    yield
    clock.reset()


async def test_task_completed_and_failed_carry_the_end_time(runtime) -> None:
    registry = FunctionRegistry()
    registry.add_orchestrator("two_steps", two_steps)
    registry.add_activity("long_step", long_step)
    registry.add_activity("long_failure", long_failure)
    async with runtime(registry) as rt:
        instance_id = await rt.client.start_new("two_steps")
        status = await rt.client.wait_for_completion(instance_id, timeout=60)
        events = await rt.client.get_history(instance_id)
    assert status.runtime_status is OrchestrationRuntimeStatus.Completed
    scheduled = {e.event_id: e.timestamp for e in events if isinstance(e, TaskScheduled)}
    results = [e for e in events if isinstance(e, TaskCompleted | TaskFailed)]
    assert [type(e) for e in results] == [TaskCompleted, TaskFailed]
    for result in results:
        assert result.timestamp - scheduled[result.task_scheduled_id] >= RAN_FOR, result
