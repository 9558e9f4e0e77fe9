"""The replay executor on hand-built histories: each pattern's decisions and outcome."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from durable_ext.orchestration import (
    DurableOrchestrationContext,
    OrchestrationExecutor,
    ReplayOptions,
    RetryOptions,
    TaskFailedError,
)
from durable_ext.orchestration.history import (
    ExecutionCompleted,
    OrchestrationStatus,
    SubOrchestrationInstanceCreated,
    TaskScheduled,
    TimerCreated,
)

from .history_builder import START, HistoryBuilder

Orchestrator = Callable[[DurableOrchestrationContext], Any]


def run(fn: Orchestrator, history: HistoryBuilder, **options: Any):
    executor = OrchestrationExecutor(fn, instance_id="inst", options=ReplayOptions(**options))
    return executor.execute(*history.split())


def chain(ctx: DurableOrchestrationContext):
    a = yield ctx.call_activity("Hello", "Tokyo")
    b = yield ctx.call_activity("Hello", "Seattle")
    c = yield ctx.call_activity("Hello", "London")
    return [a, b, c]


def test_chaining_first_episode_schedules_first_activity() -> None:
    result = run(chain, HistoryBuilder())
    assert result.status is OrchestrationStatus.Running
    [decision] = result.decisions
    assert isinstance(decision, TaskScheduled)
    assert (decision.event_id, decision.name, decision.input) == (0, "Hello", '"Tokyo"')


def test_chaining_mid_replay_schedules_next_step_only() -> None:
    h = HistoryBuilder().scheduled(0, "Hello", "Tokyo").episode().completed(0, "Hello Tokyo")
    result = run(chain, h)
    assert [(d.event_id, d.input) for d in result.decisions] == [(1, '"Seattle"')]


def test_chaining_completes_with_all_results() -> None:
    h = (
        HistoryBuilder()
        .scheduled(0, "Hello", "Tokyo")
        .episode()
        .completed(0, "T")
        .scheduled(1, "Hello", "Seattle")
        .episode()
        .completed(1, "S")
        .scheduled(2, "Hello", "London")
        .episode()
        .completed(2, "L")
    )
    result = run(chain, h)
    [done] = result.decisions
    assert isinstance(done, ExecutionCompleted)
    assert done.event_id == 3 and done.orchestration_status is OrchestrationStatus.Completed
    assert json.loads(result.output or "") == ["T", "S", "L"]


def fan_out(ctx: DurableOrchestrationContext):
    items = yield ctx.call_activity("List")
    results = yield ctx.task_all([ctx.call_activity("Work", i) for i in items])
    return sum(results)


def test_fan_out_schedules_all_children_in_list_order() -> None:
    h = HistoryBuilder().scheduled(0, "List").episode().completed(0, [5, 6, 7])
    result = run(fan_out, h)
    assert [(d.event_id, d.input) for d in result.decisions] == [(1, "5"), (2, "6"), (3, "7")]


def test_fan_in_waits_for_every_child_in_any_order() -> None:
    h = (
        HistoryBuilder()
        .scheduled(0, "List")
        .episode()
        .completed(0, [5, 6, 7])
        .scheduled(1, "Work", 5)
        .scheduled(2, "Work", 6)
        .scheduled(3, "Work", 7)
        .episode()
        .completed(3, 70)
        .completed(1, 50)
    )
    assert run(fan_out, h).decisions == []
    h.episode().completed(2, 60)
    result = run(fan_out, h)
    assert result.status is OrchestrationStatus.Completed and result.output == "180"


def test_fan_in_fails_fast_with_first_failure() -> None:
    def orch(ctx: DurableOrchestrationContext):
        try:
            yield ctx.task_all([ctx.call_activity("Work", i) for i in range(3)])
        except TaskFailedError as error:
            return str(error)
        return "no failure"

    h = (
        HistoryBuilder()
        .scheduled(0, "Work", 0)
        .scheduled(1, "Work", 1)
        .scheduled(2, "Work", 2)
        .episode()
        .completed(0, 1)
        .failed(1, "boom")
    )
    result = run(orch, h)
    assert result.status is OrchestrationStatus.Completed
    assert json.loads(result.output or "").startswith("Activity function 'Work' failed: boom")


def approval(ctx: DurableOrchestrationContext):
    timeout = ctx.create_timer(ctx.current_utc_datetime + timedelta(hours=72))
    approved = ctx.wait_for_external_event("Approval")
    winner = yield ctx.task_any([approved, timeout])
    if winner is approved:
        timeout.cancel()
        return {"approved": approved.result, "timer_cancelled": timeout.is_cancelled}
    return "escalated"


def test_task_any_event_wins_and_timer_is_cancelled() -> None:
    h = HistoryBuilder().timer(0, START + timedelta(hours=72)).episode().raised("Approval", True)
    result = run(approval, h)
    assert result.status is OrchestrationStatus.Completed
    assert json.loads(result.output or "") == {"approved": True, "timer_cancelled": True}


def test_task_any_timer_wins() -> None:
    fire = START + timedelta(hours=72)
    h = HistoryBuilder().timer(0, fire).episode(timedelta(hours=72)).fired(0, fire)
    result = run(approval, h)
    assert result.output == '"escalated"'


def test_first_episode_of_approval_creates_only_the_timer() -> None:
    [timer] = run(approval, HistoryBuilder()).decisions
    assert isinstance(timer, TimerCreated) and timer.fire_at == START + timedelta(hours=72)


def test_event_raised_before_the_wait_is_buffered() -> None:
    def orch(ctx: DurableOrchestrationContext):
        yield ctx.call_activity("Prepare")
        value = yield ctx.wait_for_external_event("Go")
        return value

    h = (
        HistoryBuilder()
        .scheduled(0, "Prepare")
        .episode()
        .raised("Go", 7)
        .episode()
        .completed(0, None)
    )
    result = run(orch, h)
    assert result.output == "7"


def test_same_name_waiters_are_served_first_in_first_out() -> None:
    def orch(ctx: DurableOrchestrationContext):
        first = ctx.wait_for_external_event("E")
        second = ctx.wait_for_external_event("E")
        results = yield ctx.task_all([first, second])
        return results

    h = HistoryBuilder().episode().raised("E", 1).raised("E", 2)
    assert run(orch, h).output == "[1,2]"


def test_event_after_the_wait_resumes_the_code() -> None:
    def orch(ctx: DurableOrchestrationContext):
        value = yield ctx.wait_for_external_event("Go", expected_type=int)
        return value * 2

    h = HistoryBuilder().episode().raised("Go", 21)
    assert run(orch, h).output == "42"


def test_duplicate_completion_is_ignored() -> None:
    h = (
        HistoryBuilder()
        .scheduled(0, "Hello", "Tokyo")
        .episode()
        .completed(0, "T")
        .completed(0, "X")
        .scheduled(1, "Hello", "Seattle")
        .episode()
        .completed(1, "S")
        .completed(0, "Y")
    )
    result = run(chain, h)
    assert [(d.event_id, d.input) for d in result.decisions] == [(2, '"London"')]
    assert any("duplicate" in w for w in result.warnings)


def test_is_replaying_is_true_only_for_past_episodes() -> None:
    seen: list[bool] = []

    def orch(ctx: DurableOrchestrationContext):
        seen.append(ctx.is_replaying)
        yield ctx.call_activity("A")
        seen.append(ctx.is_replaying)
        yield ctx.call_activity("B")
        seen.append(ctx.is_replaying)
        return None

    h = (
        HistoryBuilder()
        .scheduled(0, "A")
        .episode()
        .completed(0, 1)
        .scheduled(1, "B")
        .episode()
        .completed(1, 2)
    )
    run(orch, h)
    assert seen == [True, True, False]


def test_current_utc_datetime_follows_orchestrator_started() -> None:
    times: list[Any] = []

    def orch(ctx: DurableOrchestrationContext):
        times.append(ctx.current_utc_datetime)
        yield ctx.call_activity("A")
        times.append(ctx.current_utc_datetime)
        return None

    h = HistoryBuilder().scheduled(0, "A").episode(timedelta(minutes=5)).completed(0, 1)
    run(orch, h)
    assert times == [START, START + timedelta(minutes=5)]


def test_activity_failure_is_catchable_and_carries_details() -> None:
    def orch(ctx: DurableOrchestrationContext):
        try:
            yield ctx.call_activity("Charge", 10)
        except Exception as error:  # noqa: BLE001 - what users write
            assert isinstance(error, TaskFailedError)
            yield ctx.call_activity("Refund", error.failure_details.error_message)
            return str(error).split("\n")[0].strip()
        return "charged"

    h = HistoryBuilder().scheduled(0, "Charge", 10).episode().failed(0, "card declined")
    result = run(orch, h)
    [refund] = result.decisions
    assert isinstance(refund, TaskScheduled) and refund.input == '"card declined"'
    h.scheduled(1, "Refund", "card declined").episode().completed(1, None)
    assert (
        json.loads(run(orch, h).output or "") == "Activity function 'Charge' failed: card declined"
    )


def test_uncaught_activity_failure_fails_the_orchestration_with_inner_details() -> None:
    h = HistoryBuilder().scheduled(0, "Hello", "Tokyo").episode().failed(0, "boom")
    result = run(chain, h)
    assert result.status is OrchestrationStatus.Failed
    assert result.failure is not None and result.failure.error_type == "TaskFailedError"
    assert result.failure.error_message == (
        "Orchestrator function 'orch' failed: Activity function 'Hello' failed: boom"
    )
    assert result.failure.inner_failure is not None
    assert result.failure.inner_failure.error_message == "boom"
    [done] = result.decisions
    assert isinstance(done, ExecutionCompleted) and done.failure_details == result.failure


def parent(ctx: DurableOrchestrationContext):
    try:
        value = yield ctx.call_sub_orchestrator("child", {"n": 1}, instance_id="kid-1")
    except TaskFailedError as error:
        return {"failed": error.failure_details.error_message}
    return {"value": value}


def test_sub_orchestration_is_scheduled_with_its_instance_id() -> None:
    [created] = run(parent, HistoryBuilder()).decisions
    assert isinstance(created, SubOrchestrationInstanceCreated)
    assert (created.name, created.instance_id, created.input) == ("child", "kid-1", '{"n":1}')


def test_sub_orchestration_default_instance_id_is_deterministic() -> None:
    def orch(ctx: DurableOrchestrationContext):
        yield ctx.call_sub_orchestrator("child")
        return None

    first = run(orch, HistoryBuilder()).decisions[0]
    second = run(orch, HistoryBuilder()).decisions[0]
    assert isinstance(first, SubOrchestrationInstanceCreated)
    assert first.instance_id and first.instance_id == getattr(second, "instance_id", None)


def test_sub_orchestration_result_and_failure() -> None:
    ok = HistoryBuilder().sub_created(0, "child", "kid-1").episode().sub_completed(0, 5)
    assert json.loads(run(parent, ok).output or "") == {"value": 5}
    bad = HistoryBuilder().sub_created(0, "child", "kid-1").episode().sub_failed(0, "nope")
    assert json.loads(run(parent, bad).output or "") == {"failed": "nope"}


def test_custom_status_is_reported_and_capped() -> None:
    def orch(ctx: DurableOrchestrationContext):
        ctx.set_custom_status({"stage": 1})
        yield ctx.call_activity("A")
        ctx.set_custom_status("x" * 17_000)
        return None

    result = run(orch, HistoryBuilder())
    assert result.custom_status == '{"stage":1}'
    h = HistoryBuilder().scheduled(0, "A").episode().completed(0, None)
    failed = run(orch, h)
    assert failed.status is OrchestrationStatus.Failed
    assert failed.failure is not None and "16384 bytes" in failed.failure.error_message


def test_plain_function_orchestrator_completes_at_once() -> None:
    result = run(lambda ctx: ctx.get_input() + 1, HistoryBuilder(input_=41))
    assert result.output == "42"


@pytest.mark.parametrize(
    ("orchestrator", "message"),
    [
        (lambda ctx: (x for x in [42]), "yield only tasks"),
        (lambda ctx: (x for x in [(y for y in [])]), "yield from"),
    ],
)
def test_bad_yields_fail_with_a_clear_message(orchestrator: Orchestrator, message: str) -> None:
    result = run(orchestrator, HistoryBuilder())
    assert result.status is OrchestrationStatus.Failed
    assert result.failure is not None and message in result.failure.error_message


def test_async_orchestrator_fails_with_a_clear_message() -> None:
    async def orch(ctx: DurableOrchestrationContext) -> None:
        return None

    result = run(orch, HistoryBuilder())
    assert result.failure is not None and "not async def" in result.failure.error_message


def test_non_serializable_input_fails_at_the_call_site() -> None:
    def orch(ctx: DurableOrchestrationContext):
        try:
            ctx.call_activity("A", object())
        except TypeError as error:
            return str(error)
        return "accepted"
        yield  # pragma: no cover - makes this a generator

    result = run(orch, HistoryBuilder())
    assert "not JSON serializable" in json.loads(result.output or "")


def test_retry_options_validation() -> None:
    with pytest.raises(ValueError, match="greater than 0"):
        RetryOptions(0, 3)
    with pytest.raises(ValueError):
        RetryOptions(1000, 0)
