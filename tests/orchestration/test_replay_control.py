"""Retries, timers, continue-as-new, terminate, suspend/resume and new_uuid on hand-built histories."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

from durable_ext.orchestration import (
    DurableOrchestrationContext,
    OrchestrationExecutor,
    ReplayOptions,
    RetryOptions,
    run_episode,
)
from durable_ext.orchestration.history import (
    EventRaised,
    ExecutionResumed,
    ExecutionStarted,
    ExecutionSuspended,
    ExecutionTerminated,
    OrchestrationStatus,
    TaskScheduled,
    TimerCreated,
)

from .history_builder import START, HistoryBuilder


def run(fn, history: HistoryBuilder, **options):
    executor = OrchestrationExecutor(fn, instance_id="inst", options=ReplayOptions(**options))
    return executor.execute(*history.split())


def flaky(options: RetryOptions):
    def orch(ctx: DurableOrchestrationContext):
        value = yield ctx.call_activity_with_retry("Flaky", options, "x")
        return value

    return orch


def test_retry_waits_on_durable_timers_with_backoff() -> None:
    orch = flaky(RetryOptions(1000, 3, backoff_coefficient=2.0))
    second = timedelta(seconds=1)
    h = HistoryBuilder().scheduled(0, "Flaky", "x").episode().failed(0, "e1")
    [timer] = run(orch, h).decisions
    assert isinstance(timer, TimerCreated) and timer.event_id == 1
    assert timer.fire_at == h.now + second
    h.timer(1, h.now + second).episode().fired(1, h.now)
    [retry] = run(orch, h).decisions
    assert isinstance(retry, TaskScheduled) and (retry.event_id, retry.name) == (2, "Flaky")
    h.scheduled(2, "Flaky", "x").episode().failed(2, "e2")
    [timer2] = run(orch, h).decisions
    assert isinstance(timer2, TimerCreated) and timer2.fire_at == h.now + 2 * second
    h.timer(3, h.now + 2 * second).episode().fired(3, h.now).scheduled(4, "Flaky", "x")
    h.episode().failed(4, "e3")
    result = run(orch, h)
    assert result.status is OrchestrationStatus.Failed
    assert result.failure is not None and "e3" in result.failure.error_message
    assert [type(d).__name__ for d in result.decisions] == ["ExecutionCompleted"]


def test_retry_succeeds_on_a_later_attempt() -> None:
    orch = flaky(RetryOptions(500, 5))
    h = HistoryBuilder().scheduled(0, "Flaky", "x").episode().failed(0, "e1")
    h.timer(1, h.now).episode().fired(1, h.now).scheduled(2, "Flaky", "x").episode().completed(
        2, "ok"
    )
    assert run(orch, h).output == '"ok"'


def test_retry_max_interval_caps_the_backoff() -> None:
    options = RetryOptions(
        1000, 10, backoff_coefficient=10.0, max_retry_interval_in_milliseconds=3000
    )
    assert options.next_delay(1, START, START) == timedelta(seconds=1)
    assert options.next_delay(2, START, START) == timedelta(seconds=3)
    assert options.next_delay(10, START, START) is None


def test_retry_timeout_stops_further_attempts() -> None:
    orch = flaky(RetryOptions(1000, 10, retry_timeout_in_milliseconds=1500))
    h = HistoryBuilder().scheduled(0, "Flaky", "x").episode().failed(0, "e1")
    h.timer(1, h.now + timedelta(seconds=1)).episode().fired(1, h.now)
    h.scheduled(2, "Flaky", "x").episode().failed(2, "e2")
    result = run(orch, h)
    assert result.status is OrchestrationStatus.Failed
    assert result.failure is not None and "e2" in result.failure.error_message


def long_wait(ctx: DurableOrchestrationContext):
    yield ctx.create_timer(ctx.current_utc_datetime + timedelta(days=10))
    return "woke"


def test_long_timer_is_chained_in_legs_under_the_cap() -> None:
    h = HistoryBuilder()
    fire_times = []
    for leg in range(4):
        [timer] = run(long_wait, h).decisions
        assert isinstance(timer, TimerCreated) and timer.event_id == leg
        fire_times.append(timer.fire_at)
        assert timer.fire_at is not None
        h.timer(leg, timer.fire_at).episode(timer.fire_at - h.now).fired(leg, timer.fire_at)
    assert [t - START for t in fire_times] == [timedelta(days=d) for d in (3, 6, 9, 10)]
    assert run(long_wait, h).output == '"woke"'


def test_short_timer_cap_is_configurable() -> None:
    [timer] = run(
        long_wait,
        HistoryBuilder(),
        maximum_timer_duration=timedelta(seconds=2),
        long_timer_interval=timedelta(seconds=1),
    ).decisions
    assert isinstance(timer, TimerCreated) and timer.fire_at == START + timedelta(seconds=1)


def test_naive_and_aware_timer_times_mean_utc() -> None:
    def orch(ctx: DurableOrchestrationContext):
        plus_two = datetime(2024, 1, 1, 3, 0, tzinfo=UTC).astimezone(
            __import__("datetime").timezone(timedelta(hours=2))
        )
        yield ctx.task_all(
            [ctx.create_timer(datetime(2024, 1, 1, 1, 0)), ctx.create_timer(plus_two)]
        )
        return None

    first, second = run(orch, HistoryBuilder()).decisions
    assert first.fire_at == datetime(2024, 1, 1, 1, 0, tzinfo=UTC)  # type: ignore[attr-defined]
    assert second.fire_at == datetime(2024, 1, 1, 3, 0, tzinfo=UTC)  # type: ignore[attr-defined]


def counter(ctx: DurableOrchestrationContext):
    count = ctx.get_input()
    if count >= 2:
        return count
    yield ctx.call_activity("Tick", count)
    ctx.continue_as_new(count + 1)
    return None


def test_continue_as_new_carries_events_raised_after_the_call() -> None:
    from durable_ext.orchestration.history import TaskCompleted

    h = HistoryBuilder(input_=0).scheduled(0, "Tick", 0).episode()
    past, _ = h.split()
    new_events = [
        TaskCompleted(timestamp=h.now, task_scheduled_id=0, result="null"),
        EventRaised(timestamp=h.now, name="Later", input='"kept"'),
    ]
    ids = iter(["exec2", "exec3"])
    outcome = run_episode(
        counter,
        instance_id="inst",
        past_events=past,
        new_events=new_events,
        now=h.now,
        new_execution_id=lambda: next(ids),
    )
    assert outcome.execution_id == "exec2"
    assert outcome.first_new_index == 0
    started = outcome.events[1]
    assert isinstance(started, ExecutionStarted) and started.input == "1"
    assert started.orchestration_instance is not None
    assert started.orchestration_instance.execution_id == "exec2"
    carried = outcome.events[2]
    assert isinstance(carried, EventRaised) and carried.name == "Later"
    [tick] = outcome.result.decisions
    assert isinstance(tick, TaskScheduled) and tick.input == "1" and tick.event_id == 0
    assert outcome.result.status is OrchestrationStatus.Running


def test_terminate_completes_with_terminated_status_and_reason() -> None:
    h = HistoryBuilder().scheduled(0, "Hello", "Tokyo").episode()
    h.events.append(ExecutionTerminated(timestamp=h.now, input="stop it"))
    from .test_replay_patterns import chain

    result = run(chain, h)
    assert result.status is OrchestrationStatus.Terminated
    [done] = result.decisions
    assert done.orchestration_status is OrchestrationStatus.Terminated  # type: ignore[attr-defined]
    assert done.result == "stop it"  # type: ignore[attr-defined]


def test_suspended_instance_parks_events_until_resumed() -> None:
    from .test_replay_patterns import chain

    h = HistoryBuilder().scheduled(0, "Hello", "Tokyo").episode()
    h.events.append(ExecutionSuspended(timestamp=h.now, reason="hold"))
    h.completed(0, "T")
    suspended = run(chain, h)
    assert suspended.status is OrchestrationStatus.Suspended and suspended.decisions == []
    h.episode()
    h.events.append(ExecutionResumed(timestamp=h.now, reason="go"))
    resumed = run(chain, h)
    assert resumed.status is OrchestrationStatus.Running
    assert [(d.event_id, d.input) for d in resumed.decisions] == [(1, '"Seattle"')]


def test_terminate_wins_while_suspended() -> None:
    from .test_replay_patterns import chain

    h = HistoryBuilder().scheduled(0, "Hello", "Tokyo").episode()
    h.events.append(ExecutionSuspended(timestamp=h.now))
    h.events.append(ExecutionTerminated(timestamp=h.now, input="bye"))
    assert run(chain, h).status is OrchestrationStatus.Terminated


def test_new_uuid_matches_the_sdk_algorithm() -> None:
    values: list[str] = []

    def orch(ctx: DurableOrchestrationContext):
        values.append(ctx.new_uuid())
        values.append(ctx.new_uuid())
        return None

    run(orch, HistoryBuilder(instance_id="abc", start=datetime(2020, 1, 1, tzinfo=UTC)))
    assert values[0] == "39281f85-543a-5f12-9b12-2987b5400454"
    namespace = uuid.uuid5(uuid.NAMESPACE_OID, "9e952958-5e33-4daf-827f-2fa12937b875")
    assert values[1] == str(uuid.uuid5(namespace, "abc_2020-01-01T00:00:00.000000Z_1"))


def test_new_uuid_equals_the_installed_sdk() -> None:
    from azure.durable_functions.models.DurableOrchestrationContext import (
        DurableOrchestrationContext as SdkContext,
    )

    history = [
        {
            "EventType": 12,
            "EventId": -1,
            "IsPlayed": False,
            "Timestamp": "2024-01-01T00:00:00.000000Z",
        },
        {
            "EventType": 0,
            "EventId": -1,
            "IsPlayed": False,
            "Timestamp": "2024-01-01T00:00:00.000000Z",
            "Name": "orch",
            "Input": "null",
            "Version": "",
        },
    ]
    sdk = SdkContext(history=history, instanceId="abc", isReplaying=False, parentInstanceId=None)
    sdk.current_utc_datetime = START
    ours: list[str] = []

    def orch(ctx: DurableOrchestrationContext):
        ours.extend([ctx.new_uuid(), ctx.new_uuid(), ctx.new_uuid()])
        return None

    run(orch, HistoryBuilder(instance_id="abc"))
    assert ours == [sdk.new_uuid(), sdk.new_uuid(), sdk.new_uuid()]


def test_get_input_decodes_to_dataclasses_and_to_json_classes() -> None:
    from dataclasses import dataclass

    @dataclass
    class Order:
        id: int
        items: list[str]

    seen = []

    def orch(ctx: DurableOrchestrationContext):
        seen.append(ctx.get_input(expected_type=Order))
        return None

    run(orch, HistoryBuilder(input_={"id": 3, "items": ["a"]}))
    assert seen == [Order(3, ["a"])]
    assert json.loads('{"id": 3}') == {"id": 3}
