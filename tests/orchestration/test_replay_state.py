"""ReplayState's pure transitions: sequence ids, waiters, buffered events, outcome."""

from __future__ import annotations

from datetime import UTC, datetime

from durable_ext.orchestration.actions import (
    CreateTimer,
    ScheduleActivity,
    SendEvent,
    WaitForEvent,
)
from durable_ext.orchestration.history import EventRaised, FailureDetails, OrchestrationStatus
from durable_ext.orchestration.replay_state import ReplayState
from durable_ext.orchestration.runtime import ExecutionInfo
from durable_ext.orchestration.tasks import AtomicTask, EntityCallTask, WhenAnyTask


def state() -> ReplayState:
    return ReplayState(ExecutionInfo(instance_id="inst"))


def activity(name: str = "A") -> AtomicTask:
    return AtomicTask(-1, ScheduleActivity(name, None))


def waiter(name: str) -> AtomicTask:
    return AtomicTask(name, WaitForEvent(name))


def test_scheduled_tasks_get_consecutive_ids_and_are_open_and_pending() -> None:
    s = state()
    first, second = activity("A"), activity("B")
    assert (s.add_scheduled(first), s.add_scheduled(second)) == (0, 1)
    assert (first.id, second.id) == (0, 1)
    assert s.open == {0: first, 1: second}
    assert s.pending == {0: first, 1: second}
    assert s.take_id() == 2
    assert s.entity_waiters == {}


def test_an_entity_call_waits_for_the_response_named_by_its_request_id() -> None:
    s = state()
    call = EntityCallTask(SendEvent("@counter@c1", "op", "{}"), "req-1")
    assert s.add_scheduled(call) == 0
    assert s.entity_waiters == {"req-1": call}


def test_the_oldest_live_waiter_takes_an_event_and_a_dead_one_keeps_its_place() -> None:
    s = state()
    dead, live = waiter("go"), waiter("go")
    s.add_waiter(dead, "go")
    s.add_waiter(live, "go")
    decided = WhenAnyTask([dead, activity()])
    decided.set_value(False, None)  # the task_any the first waiter belongs to is decided
    assert s.take_live_waiter("go") is live
    assert s.take_live_waiter("go") is None
    assert s.waiters == {"go": [dead]}
    assert s.take_live_waiter("other") is None


def test_events_no_one_waits_for_are_buffered_by_name_in_order() -> None:
    s = state()
    a1, b1, a2 = EventRaised(name="a"), EventRaised(name="b"), EventRaised(name="a")
    for event in (a1, b1, a2):
        s.buffer(event)
    assert {name: list(events) for name, events in s.buffered.items()} == {
        "a": [a1, a2],
        "b": [b1],
    }


def test_reported_status_is_running_suspended_or_final() -> None:
    s = state()
    assert s.reported_status is OrchestrationStatus.Running
    s.suspended = True
    assert s.reported_status is OrchestrationStatus.Suspended
    s.finish(OrchestrationStatus.Completed, '"done"', None)
    assert s.reported_status is OrchestrationStatus.Completed
    assert (s.finished, s.output, s.completion_reported) == (True, '"done"', False)


def test_a_failed_or_terminated_execution_sends_its_events_but_starts_no_work() -> None:
    send = AtomicTask(-1, SendEvent("other", "ping", None))
    timer = AtomicTask(-1, CreateTimer(datetime(2024, 1, 1, tzinfo=UTC)))
    s = state()
    assert not s.drops_decision(timer)
    s.finish(OrchestrationStatus.Completed, None, None)
    assert not s.drops_decision(activity())
    for status in (OrchestrationStatus.Failed, OrchestrationStatus.Terminated):
        s.finish(status, None, None)
        assert s.drops_decision(activity())
        assert s.drops_decision(timer)
        assert not s.drops_decision(send)


def test_broken_replay_fails_drops_the_decisions_and_still_reports_completion() -> None:
    s = state()
    s.add_scheduled(activity())
    s.completion_reported = True
    failure = FailureDetails("NonDeterministicOrchestrationError", "boom")
    s.break_replay('"boom"', failure)
    assert s.broken
    assert s.pending == {}
    assert (s.status, s.failure, s.output) == (OrchestrationStatus.Failed, failure, '"boom"')
    assert s.finished
    assert not s.completion_reported


def test_warnings_are_taken_once() -> None:
    s = state()
    s.warnings.append("w")
    assert s.take_warnings() == ["w"]
    assert s.take_warnings() == []
