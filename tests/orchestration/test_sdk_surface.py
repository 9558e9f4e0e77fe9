"""SDK members filled as the SDK fills them: `context.histories`, `context.function_context`,
`DurableOrchestrationStatus.from_json`/`to_json`, `PurgeHistoryResult.from_json`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from azure.durable_functions.models.DurableOrchestrationStatus import (
    DurableOrchestrationStatus as SdkStatus,
)
from azure.durable_functions.models.PurgeHistoryResult import PurgeHistoryResult as SdkPurge

import durable_ext as df
from durable_ext.orchestration.episode import continue_episode, run_episode
from durable_ext.orchestration.executor import ReplayOptions
from durable_ext.orchestration.history import EventType, TaskCompleted
from tests.orchestration.history_builder import START, HistoryBuilder

SEEN: list[Any] = []


def two_steps(ctx: df.DurableOrchestrationContext):
    SEEN.append([(e.EventType, e.Name, e.TaskScheduledId) for e in ctx.histories])
    first = yield ctx.call_activity("a", 1)
    SEEN.append([(e.EventType, e.Name, e.TaskScheduledId) for e in ctx.histories])
    return first


def test_histories_hold_the_execution_history_as_the_code_runs() -> None:
    SEEN.clear()
    started = HistoryBuilder(name="two_steps").events
    first = run_episode(
        two_steps, instance_id="inst", past_events=[], new_events=started, now=START
    )
    done = TaskCompleted(timestamp=START, task_scheduled_id=0, result="5")
    later = START + timedelta(seconds=1)
    second = continue_episode(
        first.executor,
        two_steps,
        instance_id="inst",
        past_events=first.events,
        new_events=[done],
        now=later,
    )
    assert second.result.output == "5"
    E = EventType  # noqa: N806
    expected_first = [(E.OrchestratorStarted, None, None)] * 2 + [
        (E.ExecutionStarted, "two_steps", None)
    ]
    assert SEEN[0] == expected_first
    # the code sees the whole history, this episode's new events included (the cached executor too)
    assert [e.event_type for e in first.executor.history] == [e.event_type for e in second.events]
    assert SEEN[1][-2:] == [(E.OrchestratorStarted, None, None), (E.TaskCompleted, None, 0)]
    assert (E.TaskScheduled, "a", None) in SEEN[1]


def test_function_context_carries_the_hosts_http_sleep() -> None:
    contexts: list[df.DurableOrchestrationContext] = []

    def keep(ctx: df.DurableOrchestrationContext) -> None:
        contexts.append(ctx)

    options = ReplayOptions(http_async_sleep=timedelta(seconds=2))
    run_episode(
        keep,
        instance_id="inst",
        past_events=[],
        new_events=HistoryBuilder().events,
        now=START,
        options=options,
    )
    assert contexts[0].function_context.defaultHttpAsyncRequestSleepTimeMillseconds == 2000
    built = df.DurableOrchestrationContext.from_json(
        '{"history": [], "instanceId": "i", "isReplaying": false, "parentInstanceId": null,'
        ' "defaultHttpAsyncRequestSleepTimeMillseconds": 30000}'
    )
    assert built.function_context.defaultHttpAsyncRequestSleepTimeMillseconds == 30000


STATUS = {
    "name": "orch",
    "instanceId": "i-1",
    "createdTime": "2024-01-01T00:00:00Z",
    "lastUpdatedTime": "2024-01-01T00:00:01.5Z",
    "input": {"a": 1},
    "output": [1, 2],
    "runtimeStatus": "Completed",
    "customStatus": "fine",
    "history": None,
    "extra": "kept",
}


def test_status_from_json_and_to_json_match_the_sdk() -> None:
    ours, theirs = df.DurableOrchestrationStatus.from_json(STATUS), SdkStatus.from_json(STATUS)
    assert ours.to_json() == theirs.to_json()
    assert list(ours.to_json()) == list(theirs.to_json())
    assert ours.extra == theirs.extra == "kept"
    assert ours.runtime_status is df.OrchestrationRuntimeStatus.Completed
    assert ours.created_time == datetime(2024, 1, 1, tzinfo=UTC)
    assert df.DurableOrchestrationStatus.from_json("Instance not found").message == (
        SdkStatus.from_json("Instance not found").message
    )
    assert not df.DurableOrchestrationStatus.from_json({})


def test_purge_history_result_from_json() -> None:
    body = {"instancesDeleted": 3}
    assert df.PurgeHistoryResult.from_json(body).instances_deleted == 3
    assert SdkPurge.from_json(body).instances_deleted == 3
