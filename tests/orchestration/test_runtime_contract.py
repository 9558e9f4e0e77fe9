"""The context and its compound tasks reach the engine only through `OrchestrationRuntime`:
a stand-in runtime is enough to drive them; the executor is one; entity calls are typed tasks."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from durable_ext.orchestration import (
    DurableOrchestrationContext,
    EntityId,
    OrchestrationExecutor,
    RetryOptions,
)
from durable_ext.orchestration.actions import SendEvent
from durable_ext.orchestration.context import context_for
from durable_ext.orchestration.history import (
    EventSent,
    GenericEvent,
    HistoryEvent,
    HistoryState,
    OrchestrationStatus,
    TaskFailed,
)
from durable_ext.orchestration.runtime import ExecutionInfo, OrchestrationRuntime, ReplayOptions
from durable_ext.orchestration.tasks import (
    EntityCallTask,
    LongTimerTask,
    RetryAbleTask,
    TaskBase,
    TimerTask,
)

from .history_builder import START, HistoryBuilder


class Recorder:
    """A runtime that records what it is asked to schedule."""

    def __init__(self, options: ReplayOptions | None = None) -> None:
        self.info = ExecutionInfo(instance_id="inst", current_utc_datetime=START)
        self.options = options or ReplayOptions()
        self.scheduled: list[TaskBase] = []

    def schedule(self, task: TaskBase) -> None:
        self.scheduled.append(task)


def test_the_context_shows_the_runtimes_info_and_records_requests_there() -> None:
    runtime = Recorder(ReplayOptions(input_type=dict))
    runtime.info.input = json.dumps({"a": 1})
    ctx = context_for(runtime)
    assert (ctx.instance_id, ctx.current_utc_datetime, ctx.is_replaying) == ("inst", START, False)
    assert ctx.get_input() == {"a": 1}
    runtime.info.is_replaying = True
    assert ctx.is_replaying
    ctx.set_custom_status({"step": 2})
    ctx.continue_as_new("next")
    assert runtime.info.custom_status_json == '{"step":2}'
    assert (runtime.info.continue_as_new_input, runtime.info.will_continue_as_new) == (
        '"next"',
        True,
    )


def test_signal_entity_is_scheduled_through_the_runtime() -> None:
    runtime = Recorder()
    task = context_for(runtime).signal_entity(EntityId("counter", "c1"), "add", 1)
    assert runtime.scheduled == [task]
    assert task.is_completed


def test_a_far_timer_is_a_chain_of_legs_sized_by_the_runtimes_options() -> None:
    runtime = Recorder(
        ReplayOptions(
            maximum_timer_duration=timedelta(days=2), long_timer_interval=timedelta(days=1)
        )
    )
    ctx = context_for(runtime)
    assert isinstance(ctx.create_timer(START + timedelta(days=2)), TimerTask)
    far = ctx.create_timer(START + timedelta(days=3))
    assert isinstance(far, LongTimerTask)
    (leg,) = far.children
    assert isinstance(leg, TimerTask)
    assert leg.fire_at == START + timedelta(days=1)
    runtime.info.current_utc_datetime = leg.fire_at
    leg.set_value(False, None)
    (_, next_leg) = far.children
    assert runtime.scheduled == [next_leg]
    assert isinstance(next_leg, TimerTask)
    assert next_leg.fire_at == START + timedelta(days=2)


def test_a_retry_schedules_its_timer_and_next_attempt_through_the_runtime() -> None:
    runtime = Recorder()
    ctx = context_for(runtime)
    retry = ctx.call_activity_with_retry("Flaky", RetryOptions(1000, 2), "x")
    assert isinstance(retry, RetryAbleTask)
    (first,) = retry.children
    first.set_value(True, ValueError("first attempt"))
    (timer,) = runtime.scheduled
    assert isinstance(timer, TimerTask)
    assert timer.fire_at == START + timedelta(seconds=1)
    timer.set_value(False, None)
    second = runtime.scheduled[-1]
    assert second is retry.children[-1]
    assert second is not first
    assert second.actions == first.actions


def test_the_executor_is_a_runtime_and_its_context_shows_the_started_execution() -> None:
    def orch(ctx: DurableOrchestrationContext):
        return [ctx.instance_id, ctx.execution_id, ctx.name, ctx.get_input()]

    executor = OrchestrationExecutor(orch, instance_id="inst")
    runtime: OrchestrationRuntime = executor
    result = executor.execute(*HistoryBuilder(name="orch", input_=7).split())
    assert json.loads(result.output or "") == ["inst", "exec1", "orch", 7]
    assert (runtime.info.execution_id, runtime.info.name) == ("exec1", "orch")


def test_a_context_from_the_sdks_json_cannot_schedule() -> None:
    ctx = DurableOrchestrationContext(instanceId="x", parentInstanceId="p", input={"k": 1})
    assert (ctx.instance_id, ctx.parent_instance_id, ctx.get_input()) == ("x", "p", {"k": 1})
    with pytest.raises(RuntimeError, match="not attached"):
        ctx.signal_entity(EntityId("counter", "c1"), "add")


def _entity_caller(ctx: DurableOrchestrationContext):
    value = yield ctx.call_entity(EntityId("counter", "c1"), "get")
    return value


def _request_id(decisions: list[HistoryEvent]) -> str:
    (sent,) = decisions
    assert isinstance(sent, EventSent)
    return json.loads(sent.input or "")["id"]


def test_call_entity_is_a_typed_task_answered_by_the_event_named_by_its_request() -> None:
    ctx = context_for(Recorder())
    task = ctx.call_entity(EntityId("counter", "c1"), "get")
    assert isinstance(task, EntityCallTask)
    assert isinstance(task.action, SendEvent)
    assert json.loads(task.action.input or "")["id"] == task.request_id

    first = OrchestrationExecutor(_entity_caller, instance_id="inst").execute(
        *HistoryBuilder().split()
    )
    request_id = _request_id(first.decisions)
    history = HistoryBuilder()
    history.events.append(first.decisions[0])
    answered = history.episode().raised(request_id, {"result": json.dumps(5)})
    result = OrchestrationExecutor(_entity_caller, instance_id="inst").execute(*answered.split())
    assert result.status is OrchestrationStatus.Completed
    assert result.output == "5"

    history = HistoryBuilder()
    history.events.append(first.decisions[0])
    refused = history.episode().raised(
        request_id, {"exceptionType": "KeyError", "result": json.dumps("no such counter")}
    )
    result = OrchestrationExecutor(_entity_caller, instance_id="inst").execute(*refused.split())
    assert result.status is OrchestrationStatus.Failed
    assert result.failure is not None
    assert "no such counter" in result.failure.error_message


def test_events_the_replay_does_not_act_on_change_nothing() -> None:
    def orch(ctx: DurableOrchestrationContext):
        value = yield ctx.call_activity("A")
        return value

    history = HistoryBuilder().scheduled(0, "A").episode()
    executor = OrchestrationExecutor(orch, instance_id="inst")
    executor.apply(history.events, replaying=True)
    executor.apply(
        [GenericEvent(data="x"), HistoryState(), TaskFailed(task_scheduled_id=9, reason="x")],
        replaying=False,
    )
    result = executor.take_decisions()
    assert result.status is OrchestrationStatus.Running
    assert result.decisions == []
    # A completion for a task that does not exist is ignored with a warning, like a duplicate.
    assert result.warnings == ["Ignored a duplicate or unknown completion for task #9"]
