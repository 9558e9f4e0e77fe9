"""The entity scheduler (pure): batching, per-sender order, dedup, rollback, locks, scheduling."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import durable_ext as df
from durable_ext.orchestration.entity_messages import (
    LOCK_GRANTED,
    ReleaseMessage,
    RequestMessage,
    SchedulerState,
)
from durable_ext.orchestration.entity_scheduler import run_entity_batch

NOW = datetime(2026, 12, 5, 1, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=30)
ME = "@counter@k"


def counter(context: df.DurableEntityContext) -> None:
    value = context.get_state(lambda: 0)
    if context.operation_name == "add":
        context.set_state(value + context.get_input())
    elif context.operation_name == "append":  # order-sensitive
        context.set_state([*(value or []), context.get_input()])
    elif context.operation_name == "get":
        context.set_result(value)
    elif context.operation_name == "fail":
        context.set_state(-1)
        context.signal_entity(df.EntityId("counter", "other"), "add", 1)
        raise RuntimeError("boom")
    elif context.operation_name == "ping":
        context.signal_entity(df.EntityId("counter", "other"), "add", 1)


def op(
    request_id: str,
    name: str,
    value: Any = None,
    *,
    parent: str | None = None,
    at: int | None = None,
    after: int | None = None,
    signal: bool = True,
) -> tuple[str, str]:
    message = RequestMessage(
        id=request_id,
        operation=name,
        signal=signal,
        input=json.dumps(value),
        parent=parent,
        parent_execution="e1" if parent else None,
        timestamp=NOW + timedelta(seconds=at) if at is not None else None,
        predecessor=NOW + timedelta(seconds=after) if after is not None else None,
    )
    return "op", message.to_text()


def run(state: SchedulerState, *messages: tuple[str, str]) -> Any:
    return run_entity_batch(ME, state, list(messages), counter, NOW, WINDOW)


def test_queued_operations_run_in_one_batch_and_a_redelivered_copy_is_dropped() -> None:
    state = SchedulerState()
    batch = run(state, op("a", "add", 1), op("b", "add", 2), op("a", "add", 1))
    assert [o.request.name for o in batch.operations] == ["add", "add"]
    assert (batch.dropped, state.state, state.exists) == (1, "3", True)
    again = run(SchedulerState.from_text(state.to_text()), op("b", "add", 2))
    assert again.dropped == 1 and again.state.state == "3"


def test_one_orchestrations_messages_run_in_send_order_whatever_the_arrival() -> None:
    state = SchedulerState()
    parent = "orch"
    third = op("r3", "append", 3, parent=parent, at=3, after=2)
    second = op("r2", "append", 2, parent=parent, at=2, after=1)
    first = op("r1", "append", 1, parent=parent, at=1)
    run(state, third)
    assert state.state is None  # waits for its predecessors
    state = SchedulerState.from_text(state.to_text())
    run(state, second, first)
    assert json.loads(state.state or "null") == [1, 2, 3]
    replayed = run(state, op("r1-copy", "append", 9, parent=parent, at=1))
    assert replayed.dropped == 1  # labelled no later than the last delivered: a copy


def test_a_failed_operation_fails_alone_rolls_back_and_sends_no_signal() -> None:
    state = SchedulerState()
    batch = run(
        state,
        op("a", "add", 5),
        op("b", "fail", parent="orch", at=1, signal=False),
        op("c", "ping"),
        op("d", "get", parent="orch", at=2, signal=False),
    )
    errors = [o.is_error for o in batch.operations]
    assert errors == [False, True, False, False]
    assert state.state == "5"
    responses = {
        o.event_name: json.loads(o.payload) for o in batch.outgoing if o.instance_id == "orch"
    }
    assert responses["b"] == {"result": '"boom"', "exceptionType": "Error"}
    assert responses["d"] == {"result": "5"}
    signals = [o for o in batch.outgoing if o.instance_id == "@counter@other"]
    assert len(signals) == 1  # ping's, not fail's
    assert RequestMessage.from_text(signals[0].payload).parent == ME


def test_a_locked_entity_runs_only_its_holders_operations_until_released() -> None:
    state = SchedulerState()
    lock = RequestMessage(
        id="L",
        parent="holder",
        parent_execution="e1",
        timestamp=NOW,
        lockset=[df.EntityId("counter", "k"), df.EntityId("counter", "z")],
    )
    batch = run(state, ("op", lock.to_text()), op("x", "add", 100))
    assert state.locked_by == "holder"
    forwarded = RequestMessage.from_text(batch.outgoing[0].payload)
    assert (batch.outgoing[0].instance_id, forwarded.position) == ("@counter@z", 1)
    assert [m.id for m in state.queue] == ["x"]  # waits for the release
    run(state, op("h", "add", 1, parent="holder", at=1, signal=False))
    assert state.state == "1" and [m.id for m in state.queue] == ["x"]
    run(state, ("release", ReleaseMessage("holder", "L").to_text()))
    assert state.locked_by is None and state.state == "101" and not state.queue


def test_the_last_entity_of_a_lock_set_answers_the_orchestration() -> None:
    lock = RequestMessage(
        id="L", parent="holder", parent_execution="e1", lockset=[df.EntityId("counter", "k")]
    )
    batch = run(SchedulerState(), ("op", lock.to_text()))
    assert [(o.instance_id, o.event_name, o.execution_id) for o in batch.outgoing] == [
        ("holder", "L", "e1")
    ]
    assert json.loads(batch.outgoing[0].payload) == {"result": LOCK_GRANTED}


def test_a_scheduled_signal_that_is_early_goes_back_to_the_entity() -> None:
    due = NOW + timedelta(minutes=5)
    message = RequestMessage(id="s", operation="add", signal=True, input="1", due=due)
    batch = run(SchedulerState(), (f"op@{due.isoformat()}", message.to_text()))
    assert not batch.operations
    assert [(o.instance_id, o.due) for o in batch.outgoing] == [(ME, due)]
    on_time = run_entity_batch(
        ME, SchedulerState(), [("op", message.to_text())], counter, due, WINDOW
    )
    assert on_time.state.state == "1"


def test_a_missing_entity_function_fails_each_operation() -> None:
    batch = run_entity_batch(
        ME, SchedulerState(), [op("a", "get", parent="o", at=1, signal=False)], None, NOW, WINDOW
    )
    assert batch.operations[0].is_error
    assert "doesn't exist" in json.loads(json.loads(batch.outgoing[0].payload)["result"])


def test_the_sdk_entity_handler_shape() -> None:
    """`Entity.create(fn)` takes the host's batch JSON and answers the SDK's response JSON."""
    handle = df.Entity.create(counter)
    body = json.dumps(
        {
            "self": {"name": "counter", "key": "k"},
            "exists": True,
            "state": "2",
            "batch": [
                {"name": "add", "input": "3", "isSignal": True},
                {"name": "fail", "input": None, "isSignal": False},
                {"name": "get", "input": None, "isSignal": False},
            ],
        }
    )
    response = json.loads(handle(body))
    assert (response["entityExists"], response["entityState"]) == (True, "5")
    assert [(r["isError"], r["result"]) for r in response["results"]] == [
        (False, "null"),
        (True, '"boom"'),
        (False, "5"),
    ]
    assert response["signals"] == []


def test_scheduler_state_round_trips_in_dfs_field_names() -> None:
    state = SchedulerState()
    run(state, op("a", "add", 1, parent="orch", at=1))
    stored = json.loads(state.to_text())
    assert stored["exists"] is True and stored["state"] == "1"
    assert set(stored["sorter"]["ReceivedFromInstance"]["orch"]) == {"Last", "ExecutionId"}
    assert SchedulerState.from_text(state.to_text()).to_text() == state.to_text()


def test_the_window_forgets_orphans_and_idle_senders_but_delivers_late_messages() -> None:
    state = SchedulerState()
    orphan = op("o2", "append", 2, parent="orch", at=2, after=1)  # its predecessor never comes
    run(state, op("o1", "append", 1, parent="other", at=0), orphan)
    assert state.received_from["orch"].buffered
    later = NOW + WINDOW + timedelta(minutes=2)
    run_entity_batch(ME, state, [], counter, later, WINDOW)
    assert state.received_from == {} and not state.recent.by_minute
    late = op("o3", "append", 3, parent="orch", at=5, after=4)  # queued for longer than the window
    run_entity_batch(ME, state, [late], counter, later, WINDOW)
    assert json.loads(state.state or "null") == [1, 3]
