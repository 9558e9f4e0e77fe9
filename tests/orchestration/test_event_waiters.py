"""Which `wait_for_external_event` waiter an event goes to: the oldest live one, else the buffer.

A waiter is dead once every task_any/task_all it belongs to is decided and the code has not yielded
it itself since; dead waiters never take events (they would swallow them) but come back to life when
the code yields them again.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from durable_ext import OrchestrationRuntimeStatus
from durable_ext.orchestration import (
    DurableOrchestrationContext,
    OrchestrationExecutor,
    TaskFailedError,
)
from durable_ext.orchestration.history import EventRaised, OrchestrationStatus
from durable_ext.testing import ExternalEvent, OrchestrationResult, run_orchestration

from .history_builder import HistoryBuilder

ROUND = timedelta(minutes=10)
COMPLETED = OrchestrationRuntimeStatus.Completed


def approval_loop(ctx: DurableOrchestrationContext):
    """The issue's loop: three rounds of "approval or a 10-minute timeout"."""
    for attempt in range(3):
        approval = ctx.wait_for_external_event("Approval")
        timeout = ctx.create_timer(ctx.current_utc_datetime + ROUND)
        winner = yield ctx.task_any([approval, timeout])
        if winner is approval:
            timeout.cancel()
            return {"attempt": attempt, "approval": approval.result}
    return "timed out"


def two_approvals(ctx: DurableOrchestrationContext):
    """Rounds of "approval or timeout" until two approvals came (or four rounds passed)."""
    approvals: list[Any] = []
    for attempt in range(4):
        approval = ctx.wait_for_external_event("Approval")
        timeout = ctx.create_timer(ctx.current_utc_datetime + ROUND)
        winner = yield ctx.task_any([approval, timeout])
        if winner is approval:
            timeout.cancel()
            approvals.append([attempt, approval.result])
            if len(approvals) == 2:
                break
    return approvals


def approvals_at(*minutes: float, fn: Any = approval_loop, **kwargs: Any) -> OrchestrationResult:
    events = [ExternalEvent("Approval", f"yes@{m}", at=timedelta(minutes=m)) for m in minutes]
    return run_orchestration(fn, events=events, **kwargs)


def raised(result: OrchestrationResult) -> list[str | None]:
    return [e.input for e in result.history if isinstance(e, EventRaised)]


def replayed_output(fn: Any, result: OrchestrationResult) -> str | None:
    """The output of replaying `result`'s whole history from scratch (no new events)."""
    executor = OrchestrationExecutor(fn, instance_id=result.instance_id)
    replay = executor.execute(result.history, [])
    assert replay.decisions == []
    return replay.output


# -- the approval loop -------------------------------------------------------------------------


def test_event_before_the_first_timeout_wins_round_one() -> None:
    result = approvals_at(5)
    assert result.status is COMPLETED
    assert result.output == {"attempt": 0, "approval": "yes@5"}


def test_event_between_timeouts_goes_to_the_live_round_not_the_dead_one() -> None:
    result = approvals_at(15)
    assert result.status is COMPLETED
    assert result.output == {"attempt": 1, "approval": "yes@15"}


def test_event_in_the_last_round_wins_it() -> None:
    result = approvals_at(25)
    assert result.output == {"attempt": 2, "approval": "yes@25"}


def test_event_after_the_last_timeout_is_not_applied() -> None:
    result = approvals_at(35)
    assert result.status is COMPLETED
    assert result.output == "timed out"
    assert raised(result) == []


def test_event_in_the_batch_of_the_last_timeout_after_it_is_not_applied() -> None:
    h = HistoryBuilder()
    for timer_id in range(3):
        fire_at = h.now + ROUND
        h.timer(timer_id, fire_at).episode(ROUND).fired(timer_id, fire_at)
    h.raised("Approval", "late")
    executor = OrchestrationExecutor(approval_loop, instance_id="inst")
    result = executor.execute(*h.split())
    assert result.status is OrchestrationStatus.Completed
    assert json.loads(result.output or "") == "timed out"


def test_two_events_in_one_batch_between_timeouts_go_to_successive_live_rounds() -> None:
    result = approvals_at(15, 15, fn=two_approvals)
    assert result.status is COMPLETED
    assert result.output == [[1, "yes@15"], [2, "yes@15"]]
    assert result.episodes == 3  # start, first timeout, both events together


def test_two_events_in_one_batch_before_the_first_timeout() -> None:
    result = approvals_at(5, 5, fn=two_approvals)
    assert result.output == [[0, "yes@5"], [1, "yes@5"]]


def test_two_events_buffered_before_any_wait_are_taken_in_order() -> None:
    def orch(ctx: DurableOrchestrationContext):
        yield ctx.call_activity("Prepare")
        return (yield from two_approvals(ctx))

    events = [ExternalEvent("Approval", "first"), ExternalEvent("Approval", "second")]
    result = run_orchestration(orch, activities={"Prepare": lambda _: None}, events=events)
    assert result.output == [[0, "first"], [1, "second"]]


def test_event_while_only_a_dead_waiter_exists_is_buffered_for_the_next_one() -> None:
    def orch(ctx: DurableOrchestrationContext):
        for attempt in range(2):
            approval = ctx.wait_for_external_event("Approval")
            timeout = ctx.create_timer(ctx.current_utc_datetime + ROUND)
            winner = yield ctx.task_any([approval, timeout])
            if winner is approval:
                timeout.cancel()
                return [attempt, approval.result]
            yield ctx.create_timer(ctx.current_utc_datetime + ROUND)  # a reminder pause
        return "timed out"

    # the timeout fires at 10 min, the pause ends at 20: the event at 15 has no live waiter
    result = approvals_at(15, fn=orch)
    assert result.output == [1, "yes@15"]


def test_the_same_history_replays_to_the_same_assignments() -> None:
    for minutes, fn in [((15,), approval_loop), ((25,), approval_loop), ((15, 15), two_approvals)]:
        result = approvals_at(*minutes, fn=fn)
        assert json.loads(replayed_output(fn, result) or "") == result.output


# -- live waiters ------------------------------------------------------------------------------


def test_two_live_waiters_are_served_first_in_first_out() -> None:
    def orch(ctx: DurableOrchestrationContext):
        first = ctx.wait_for_external_event("E")
        second = ctx.wait_for_external_event("E")
        return (yield ctx.task_all([first, second]))

    events = [ExternalEvent("E", 1, at=ROUND), ExternalEvent("E", 2, at=ROUND)]
    assert run_orchestration(orch, events=events).output == [1, 2]


def test_the_loser_of_a_decided_task_any_does_not_take_the_second_event() -> None:
    def orch(ctx: DurableOrchestrationContext):
        winner = yield ctx.task_any(
            [ctx.wait_for_external_event("E"), ctx.wait_for_external_event("E")]
        )
        later = yield ctx.wait_for_external_event("E")
        return [winner.result, later]

    events = [ExternalEvent("E", 1, at=ROUND), ExternalEvent("E", 2, at=ROUND)]
    assert run_orchestration(orch, events=events).output == [1, 2]


def test_a_waiter_of_an_already_decided_task_any_does_not_take_a_buffered_event() -> None:
    def orch(ctx: DurableOrchestrationContext):
        ready = ctx.call_activity("Ready")
        yield ready
        winner = yield ctx.task_any([ready, ctx.wait_for_external_event("E")])
        value = yield ctx.wait_for_external_event("E")
        return [winner is ready, value]

    result = run_orchestration(
        orch, activities={"Ready": lambda _: None}, events=[ExternalEvent("E", "only")]
    )
    assert result.output == [True, "only"]


def test_a_waiter_whose_task_all_failed_is_dead() -> None:
    def orch(ctx: DurableOrchestrationContext):
        approval = ctx.wait_for_external_event("Approval")
        try:
            yield ctx.task_all([approval, ctx.call_activity("Check")])
        except TaskFailedError as error:
            failure = error.failure_details.error_message
        return [failure, (yield ctx.wait_for_external_event("Approval"))]

    def check(_: Any) -> None:
        raise ValueError("check failed")

    result = run_orchestration(
        orch, activities={"Check": check}, events=[ExternalEvent("Approval", "ok", at=ROUND)]
    )
    assert result.status is COMPLETED
    assert result.output == ["check failed", "ok"]


def test_a_waiter_inside_a_dead_task_all_is_dead_too() -> None:
    def orch(ctx: DurableOrchestrationContext):
        for attempt in range(2):
            both = ctx.task_all(
                [ctx.wait_for_external_event("Approval"), ctx.wait_for_external_event("Approval")]
            )
            timeout = ctx.create_timer(ctx.current_utc_datetime + ROUND)
            winner = yield ctx.task_any([both, timeout])
            if winner is both:
                timeout.cancel()
                return [attempt, both.result]
        return "timed out"

    result = approvals_at(15, 16, fn=orch)
    assert result.output == [1, ["yes@15", "yes@16"]]


# -- revived waiters ---------------------------------------------------------------------------


def wait_then_insist(ctx: DurableOrchestrationContext):
    """Round one may time out; after a pause the code waits for the same waiter with no timeout."""
    approval = ctx.wait_for_external_event("Approval")
    timeout = ctx.create_timer(ctx.current_utc_datetime + ROUND)
    winner = yield ctx.task_any([approval, timeout])
    if winner is approval:
        timeout.cancel()
        return ["in time", approval.result]
    yield ctx.create_timer(ctx.current_utc_datetime + ROUND)
    return ["late", (yield approval)]


def test_a_dead_waiter_yielded_again_takes_the_event_buffered_while_it_was_dead() -> None:
    result = approvals_at(15, fn=wait_then_insist)
    assert result.output == ["late", "yes@15"]


def test_a_dead_waiter_yielded_again_takes_a_later_event() -> None:
    result = approvals_at(25, fn=wait_then_insist)
    assert result.output == ["late", "yes@25"]
    assert json.loads(replayed_output(wait_then_insist, result) or "") == result.output


def test_a_revived_waiter_is_older_than_a_new_one() -> None:
    def orch(ctx: DurableOrchestrationContext):
        old = ctx.wait_for_external_event("E")
        yield ctx.task_any([old, ctx.create_timer(ctx.current_utc_datetime + ROUND)])
        new = ctx.wait_for_external_event("E")
        return (yield ctx.task_all([new, old]))

    events = [ExternalEvent("E", 1, at=2 * ROUND), ExternalEvent("E", 2, at=2 * ROUND)]
    assert run_orchestration(orch, events=events).output == [2, 1]
