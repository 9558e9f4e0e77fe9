"""The chaos driver's invariant checker catches what it claims to: each invariant is violated on
purpose in a hand-built history, and only that invariant reports it (a checker that never fails
would make the chaos run prove nothing)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.reliability.chaos import Planned
from tests.reliability.chaos_audit import audit_instance

CREATED = datetime(2026, 1, 1, tzinfo=UTC)
COMPLETED = CREATED + timedelta(seconds=2)


def good() -> dict[str, Any]:
    """A one-activity chain, complete and consistent: History rows, Instances row, activity log,
    executions begun, and what the driver saw."""
    events: list[dict[str, Any]] = [
        {"EventType": "OrchestratorStarted"},
        {"EventType": "ExecutionStarted", "EventId": -1},
        {"EventType": "TaskScheduled", "EventId": 0, "Input": json.dumps({"key": "i/0"})},
        {"EventType": "OrchestratorCompleted"},
        {"EventType": "OrchestratorStarted"},
        {"EventType": "TaskCompleted", "EventId": -1, "TaskScheduledId": 0, "Result": "10"},
        {
            "EventType": "ExecutionCompleted",
            "EventId": 1,
            "OrchestrationStatus": "Completed",
            "Result": "[10]",
        },
        {"EventType": "OrchestratorCompleted"},
    ]
    rows = [
        {"PartitionKey": "i", "RowKey": f"{n:016X}", "ExecutionId": "e1", **event}
        for n, event in enumerate(events)
    ]
    rows.append(
        {
            "PartitionKey": "i",
            "RowKey": "sentinel",
            "ExecutionId": "e1",
            "IsCheckpointComplete": True,
        }
    )
    instance = {
        "RuntimeStatus": "Completed",
        "Output": "[10]",
        "ExecutionId": "e1",
        "CreatedTime": CREATED,
        "CompletedTime": COMPLETED,
    }
    return {
        "rows": rows,
        "instance": instance,
        "runs": Counter({"i/0": 1}),
        "executions": {"e1"},
        "first_seen": ("e1", COMPLETED),
    }


def audit(state: dict[str, Any]) -> dict[str, list[str]]:
    planned = Planned("i", "chain", [10], "chain", activity_keys=frozenset({"i/0"}))
    return audit_instance(
        planned,
        state["rows"],
        state["instance"],
        state["runs"],
        state["executions"],
        state["first_seen"],
    ).violations


def test_a_whole_consistent_history_passes() -> None:
    assert audit(good()) == {}


def _drop_row(state: dict[str, Any]) -> None:
    del state["rows"][3]


def _second_completion(state: dict[str, Any]) -> None:
    extra = dict(state["rows"][6], RowKey=f"{8:016X}")
    state["rows"].append(extra)


def _never_ran(state: dict[str, Any]) -> None:
    state["runs"].clear()


def _ran_twice(state: dict[str, Any]) -> None:
    state["executions"].add("e2")


def _finished_again(state: dict[str, Any]) -> None:
    state["first_seen"] = ("e0", CREATED)


def _row_disagrees(state: dict[str, Any]) -> None:
    state["instance"]["ExecutionId"] = "e0"
    state["first_seen"] = ("e0", COMPLETED)


def _scheduled_twice(state: dict[str, Any]) -> None:
    state["rows"][3] = dict(state["rows"][2], RowKey=state["rows"][3]["RowKey"])


def _wrong_output(state: dict[str, Any]) -> None:
    state["instance"]["Output"] = "[11]"


def _stale_row(state: dict[str, Any]) -> None:
    state["rows"][0]["ExecutionId"] = "e0"


def _clock_went_back(state: dict[str, Any]) -> None:
    state["rows"][0]["_Timestamp"] = COMPLETED
    state["rows"][4]["_Timestamp"] = CREATED


def _timer_woke_early(state: dict[str, Any]) -> None:
    """The activity becomes a timer due at COMPLETED, delivered in an episode stamped CREATED."""
    rows = state["rows"]
    rows[0]["_Timestamp"] = CREATED
    rows[2] = {**rows[2], "EventType": "TimerCreated", "FireAt": COMPLETED}
    del rows[2]["Input"]
    rows[4]["_Timestamp"] = CREATED
    rows[5] = {
        **rows[5],
        "EventType": "TimerFired",
        "TimerId": 0,
        "FireAt": COMPLETED,
    }
    del rows[5]["TaskScheduledId"], rows[5]["Result"]


@pytest.mark.parametrize(
    ("mutate", "invariants"),
    [
        (_drop_row, {"history-whole"}),
        (_stale_row, {"history-whole"}),
        (_second_completion, {"one-completion"}),
        (_never_ran, {"activities-ran"}),
        (_ran_twice, {"no-rerun"}),
        (_finished_again, {"no-rerun"}),
        (_row_disagrees, {"instances-agree"}),
        (_scheduled_twice, {"decisions-once"}),
        (_wrong_output, {"terminal", "instances-agree"}),
        (_clock_went_back, {"clock-monotonic"}),
        (_timer_woke_early, {"clock-monotonic"}),
    ],
)
def test_each_violation_is_reported_by_its_invariant(
    mutate: Callable[[dict[str, Any]], None], invariants: set[str]
) -> None:
    state = good()
    mutate(state)
    assert set(audit(state)) == invariants


def test_a_timer_woken_at_its_fire_time_passes() -> None:
    state = good()
    _timer_woke_early(state)
    state["rows"][4]["_Timestamp"] = COMPLETED
    assert audit(state) == {}
