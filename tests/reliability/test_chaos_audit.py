"""The chaos driver's invariant checker catches what it claims to: each invariant is violated on
purpose in a hand-built history, and only that invariant reports it (a checker that never fails
would make the chaos run prove nothing). The exactness counts (executions per activity task, events
per raise) are checked the same way, on a chain and on an approval."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from durable_ext.orchestration.history import EventRaised, OrchestrationInstance
from durable_ext.storage.messages import MessageData, serialize_message
from tests.reliability.chaos import Planned
from tests.reliability.chaos_app import APPROVAL_EVENT, expected_approval
from tests.reliability.chaos_audit import InstanceAudit, audit_instance, invariants, raised_event
from tests.reliability.chaos_cluster import POISON_BODY

CREATED = datetime(2026, 1, 1, tzinfo=UTC)
COMPLETED = CREATED + timedelta(seconds=2)


def stored(iid: str, events: list[dict[str, Any]], output: str) -> dict[str, Any]:
    """History rows (with their sentinel) and a Completed Instances row for these events."""
    rows = [
        {"PartitionKey": iid, "RowKey": f"{n:016X}", "ExecutionId": "e1", **event}
        for n, event in enumerate(events)
    ]
    rows.append(
        {
            "PartitionKey": iid,
            "RowKey": "sentinel",
            "ExecutionId": "e1",
            "IsCheckpointComplete": True,
        }
    )
    instance = {
        "RuntimeStatus": "Completed",
        "Output": output,
        "ExecutionId": "e1",
        "CreatedTime": CREATED,
        "CompletedTime": COMPLETED,
    }
    return {"rows": rows, "instance": instance}


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
    return {
        **stored("i", events, "[10]"),
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


def test_activities_ran_covers_the_generations_continue_as_new_dropped() -> None:
    """A completed instance whose planned activity of an earlier generation never ran: its history
    (of the last generation) does not show the task, the activity log does not either."""
    state = good()
    planned = Planned("i", "eternal", [10], "chain", activity_keys=frozenset({"i/0", "i/1"}))
    found = audit_instance(planned, state["rows"], state["instance"], state["runs"], {"e1"}, None)
    assert set(found.violations) == {"activities-ran"}
    assert found.activity_runs == Counter({1: 1, 0: 1})


def _chain_run(runs: int, no_fault: bool) -> InstanceAudit:
    state = good()
    state["runs"]["i/0"] = runs
    planned = Planned("i", "chain", [10], "chain", activity_keys=frozenset({"i/0"}))
    return audit_instance(
        planned, state["rows"], state["instance"], state["runs"], {"e1"}, None, no_fault=no_fault
    )


def test_without_faults_an_activity_task_that_ran_twice_is_a_violation() -> None:
    found = _chain_run(2, no_fault=True)
    assert found.violations == {"activities-once": ["i: activity i/0 ran 2 times"]}
    assert found.activity_runs == Counter({2: 1})
    assert found.checked["activities-once"] == 1
    assert _chain_run(1, no_fault=True).violations == {}


def test_with_faults_an_activity_task_may_run_twice() -> None:
    found = _chain_run(2, no_fault=False)
    assert found.violations == {}
    assert found.activity_runs == Counter({2: 1})


def test_activities_once_is_an_invariant_of_the_no_fault_phase_only() -> None:
    assert "activities-once" in invariants(no_fault=True, poison=False)
    assert "poison-isolated" not in invariants(no_fault=True, poison=False)
    assert "activities-once" not in invariants()
    assert "events-once" in invariants() and "poison-isolated" in invariants()


def approval_state(recorded: list[int], received: list[int]) -> dict[str, Any]:
    """An approval (2 events, values 0 and 1) whose history holds EventRaised rows of `recorded`
    and whose output says it received `received`."""
    raised = [
        {"EventType": "EventRaised", "EventId": -1, "Name": APPROVAL_EVENT, "Input": str(value)}
        for value in recorded
    ]
    output = json.dumps({**expected_approval(2), "received": received})
    events: list[dict[str, Any]] = [
        {"EventType": "OrchestratorStarted"},
        {"EventType": "ExecutionStarted", "EventId": -1},
        {"EventType": "OrchestratorCompleted"},
        {"EventType": "OrchestratorStarted"},
        *raised,
        {"EventType": "TaskScheduled", "EventId": 0, "Input": json.dumps({"key": "a/0"})},
        {"EventType": "OrchestratorCompleted"},
        {"EventType": "OrchestratorStarted"},
        {"EventType": "TaskCompleted", "EventId": -1, "TaskScheduledId": 0, "Result": "10"},
        {
            "EventType": "ExecutionCompleted",
            "EventId": 1,
            "OrchestrationStatus": "Completed",
            "Result": output,
        },
        {"EventType": "OrchestratorCompleted"},
    ]
    return stored("a", events, output)


def audit_approval(
    recorded: list[int], received: list[int], copies: dict[int, int] | None = None
) -> InstanceAudit:
    state = approval_state(recorded, received)
    planned = Planned(
        "a",
        "approval",
        expected_approval(2),
        "approval",
        events=2,
        activity_keys=frozenset({"a/0"}),
    )
    runs = Counter({"a/0": 1})
    return audit_instance(
        planned, state["rows"], state["instance"], runs, {"e1"}, None, copies, no_fault=True
    )


def test_events_raised_once_received_once_pass_in_any_order() -> None:
    found = audit_approval([1, 0], [1, 0])
    assert found.violations == {}
    assert found.events_recorded == found.events_applied == Counter({1: 2})
    assert found.checked["events-once"] == 2


@pytest.mark.parametrize(
    ("recorded", "received", "detail"),
    [
        ([0, 0, 1], [0, 0, 1], "event 0 is in history 2 times"),
        ([0, 0, 1], [0, 1], "event 0 is in history 2 times"),
        ([0, 1], [0, 0, 1], "event 0 received 2 times, in history 1 times"),
        ([1], [1], "event 0 is in history 0 times"),
        ([0, 1, 7], [0, 1], "events never raised in history or output: [7]"),
    ],
)
def test_an_event_applied_other_than_once_is_a_violation(
    recorded: list[int], received: list[int], detail: str
) -> None:
    found = audit_approval(recorded, received)
    assert set(found.violations) == {"events-once"}
    assert any(detail in v for v in found.violations["events-once"]), found.violations


def test_a_copy_the_driver_sent_may_be_applied_once_more_but_not_twice() -> None:
    found = audit_approval([0, 0, 1], [0, 0, 1], copies={0: 1})
    assert found.violations == {}
    assert found.events_recorded == Counter({2: 1, 1: 1})
    found = audit_approval([0, 0, 0, 1], [0, 0, 0, 1], copies={0: 1})
    assert set(found.violations) == {"events-once"}


def test_raised_event_reads_the_instance_and_value_of_a_copied_message() -> None:
    def body(name: str) -> str:
        event = EventRaised(timestamp=CREATED, name=name, input="1")
        return serialize_message(MessageData(event, OrchestrationInstance("approval00007", "")))

    assert raised_event(body(APPROVAL_EVENT), APPROVAL_EVENT) == ("approval00007", 1)
    assert raised_event(body("other"), APPROVAL_EVENT) is None
    assert raised_event(POISON_BODY, APPROVAL_EVENT) is None


def test_a_timer_woken_at_its_fire_time_passes() -> None:
    state = good()
    _timer_woke_early(state)
    state["rows"][4]["_Timestamp"] = COMPLETED
    assert audit(state) == {}
