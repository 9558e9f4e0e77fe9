"""The named triage decisions of `worker/triage.py`, one by one (pure: no Azurite)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

from durable_ext.orchestration.history import (
    EventRaised,
    ExecutionCompleted,
    ExecutionResumed,
    ExecutionRewound,
    ExecutionStarted,
    ExecutionSuspended,
    ExecutionTerminated,
    HistoryEvent,
    OrchestrationInstance,
    OrchestrationStatus,
    OrchestratorStarted,
    ParentInstance,
    TaskCompleted,
    TaskScheduled,
    TimerFired,
)
from durable_ext.orchestration.history_summary import HistorySummary
from durable_ext.orchestration.status import OrchestrationRuntimeStatus as Status
from durable_ext.storage.instance_store import InstanceRow
from durable_ext.storage.messages import MessageData
from durable_ext.storage.queues import ReceivedMessage
from durable_ext.worker.triage import (
    RestartDecision,
    Triage,
    arrival_order,
    decide_restarts,
    is_out_of_order,
    restart_candidates,
    sort_messages,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
_ids = count()


def _message(
    event: HistoryEvent,
    execution_id: str | None = None,
    dequeue_count: int = 1,
    inserted_on: datetime = T0,
    sender: OrchestrationInstance | None = None,
) -> ReceivedMessage:
    data = MessageData(event, OrchestrationInstance("i", execution_id), sender=sender)
    queue: Any = None  # never touched: triage does no I/O
    return ReceivedMessage(data, f"m{next(_ids)}", "receipt", dequeue_count, inserted_on, queue)


def _start(execution_id: str, at: datetime = T0, **fields: Any) -> ExecutionStarted:
    return ExecutionStarted(
        timestamp=at, orchestration_instance=OrchestrationInstance("i", execution_id), **fields
    )


def _running(execution_id: str = "e1") -> HistorySummary:
    """A running execution that has scheduled task 0."""
    return HistorySummary.of(
        [OrchestratorStarted(timestamp=T0), _start(execution_id), TaskScheduled(event_id=0)]
    )


def _finished(execution_id: str = "e1") -> HistorySummary:
    summary = _running(execution_id)
    summary.add([ExecutionCompleted(orchestration_status=OrchestrationStatus.Completed)])
    return summary


def _row(execution_id: str | None, status: Status, created: datetime | None = T0) -> InstanceRow:
    return InstanceRow(
        instance_id="i",
        execution_id=execution_id,
        name="Flow",
        version="1",
        input='"in"',
        output=None,
        custom_status=None,
        runtime_status=status,
        created_time=created,
        last_updated_time=created,
        completed_time=None,
        scheduled_start_time=T0 + timedelta(hours=1),
        generation=3,
        tags={"k": "v"},
    )


def _sort(
    messages: list[ReceivedMessage],
    summary: HistorySummary,
    execution_id: str | None = "e1",
    restarts: dict[str, RestartDecision] | None = None,
) -> Triage:
    return sort_messages("i", execution_id, summary, messages, restarts or {})


# -- ordering ----------------------------------------------------------------------------------
def test_execution_started_sorts_first_then_insertion_time_then_sequence() -> None:
    event = _message(EventRaised(name="go"), inserted_on=T0)
    terminate = _message(ExecutionTerminated(), inserted_on=T0 + timedelta(seconds=1))
    start = _message(_start("e1"), inserted_on=T0 + timedelta(seconds=2))
    suspend = _message(ExecutionSuspended(), inserted_on=T0 + timedelta(seconds=1))
    batch = sorted([suspend, terminate, start, event], key=arrival_order)
    assert batch == [start, event, terminate, suspend]


def test_an_event_that_arrives_before_its_start_joins_the_new_execution() -> None:
    event = _message(EventRaised(name="go"), inserted_on=T0)
    start = _message(_start("e1"), inserted_on=T0 + timedelta(seconds=1))
    triage = _sort(sorted([event, start], key=arrival_order), HistorySummary(), None)
    assert triage.new_start is start.data.event
    assert triage.events == [event.data.event]
    assert triage.consumed == [start, event]
    assert not triage.deferred


# -- out of order ----------------------------------------------------------------------------------
def test_a_response_to_an_unscheduled_task_is_out_of_order_and_deferred() -> None:
    summary = _running()
    assert is_out_of_order(TaskCompleted(task_scheduled_id=1), summary)
    assert is_out_of_order(TimerFired(timer_id=1), summary)
    assert not is_out_of_order(TaskCompleted(task_scheduled_id=0), summary)
    assert not is_out_of_order(EventRaised(name="go"), summary)
    early = _message(TaskCompleted(task_scheduled_id=1))
    answer = _message(TaskCompleted(task_scheduled_id=0))
    triage = _sort([early, answer], summary)
    assert triage.deferred == [early]
    assert triage.events == [answer.data.event]
    assert triage.judged_by_history


def test_responses_in_the_batch_that_starts_the_execution_are_not_out_of_order() -> None:
    start, answer = _message(_start("e2")), _message(TaskCompleted(task_scheduled_id=7))
    triage = _sort([start, answer], _finished(), restarts={})
    assert triage.new_start is start.data.event
    assert triage.events == [answer.data.event]


# -- defer and discard -------------------------------------------------------------------------
def test_defer_puts_a_message_back_and_discard_deletes_it_unapplied() -> None:
    triage = Triage()
    kept, dropped = _message(EventRaised()), _message(EventRaised())
    triage.defer(kept, by_history=False)
    assert triage.deferred == [kept] and not triage.judged_by_history
    triage.discard(dropped)
    assert triage.consumed == [dropped] and triage.judged_by_history
    assert not triage.events


def test_a_message_for_a_finished_instance_is_discarded() -> None:
    late = _message(EventRaised(name="go"))
    triage = _sort([late], _finished())
    assert triage.consumed == [late]
    assert not triage.events
    assert triage.finished_instance and triage.judged_by_history


def test_a_message_for_an_older_execution_is_discarded() -> None:
    old = _message(TaskCompleted(task_scheduled_id=0), execution_id="e0")
    current = _message(TaskCompleted(task_scheduled_id=0), execution_id="e1")
    triage = _sort([old, current], _running("e1"))
    assert triage.consumed == [old, current]
    assert triage.events == [current.data.event]
    assert triage.judged_by_history


def test_after_a_new_start_the_previous_execution_is_the_older_one() -> None:
    start = _message(_start("e2"))
    for_old = _message(EventRaised(name="go"), execution_id="e1")
    triage = _sort([start, for_old], _finished("e1"))
    assert triage.new_start is start.data.event
    assert not triage.events
    assert triage.consumed == [start, for_old]


def test_a_message_no_instance_could_take_before_its_start_is_discarded() -> None:
    rewind = _message(ExecutionRewound())
    triage = _sort([rewind], HistorySummary(), None)
    assert triage.consumed == [rewind]
    assert not triage.events and not triage.deferred
    assert not triage.judged_by_history


# -- restarts of a finished instance -----------------------------------------------------------
def test_restart_candidates_are_client_starts_of_another_execution_of_a_finished_one() -> None:
    restart = _message(_start("e2"))
    same = _message(_start("e1"))
    child = _message(
        _start("e3", parent_instance=ParentInstance("P", None, OrchestrationInstance("p"), 0))
    )
    assert restart_candidates("e1", _finished(), [restart, same, child]) == [restart]
    assert restart_candidates("e1", _running(), [restart]) == []


def test_restart_decisions_follow_the_instances_row() -> None:
    start = _message(_start("e2", at=T0), execution_id="e2")
    assert decide_restarts([start], None) == {start.message_id: RestartDecision.ACCEPT}
    named = _row("e2", Status.Pending)
    assert decide_restarts([start], named) == {start.message_id: RestartDecision.ACCEPT}
    older = _row("e1", Status.Completed, created=T0)  # the row is as new as the start, or newer
    assert decide_restarts([start], older) == {start.message_id: RestartDecision.STALE}
    newer = _row("e1", Status.Completed, created=T0 - timedelta(seconds=1))
    assert decide_restarts([start], newer) == {start.message_id: RestartDecision.EARLY}


def test_a_restart_the_row_never_confirms_is_stale_on_its_tenth_delivery() -> None:
    row = _row("e1", Status.Completed, created=T0 - timedelta(seconds=1))
    ninth = _message(_start("e2"), execution_id="e2", dequeue_count=9)
    tenth = _message(_start("e2"), execution_id="e2", dequeue_count=10)
    decisions = decide_restarts([ninth, tenth], row)
    assert decisions == {
        ninth.message_id: RestartDecision.EARLY,
        tenth.message_id: RestartDecision.STALE,
    }


def test_restart_decisions_apply_defer_or_discard_the_start() -> None:
    summary = _finished()
    for decision, new_start, deferred, judged in [
        (RestartDecision.ACCEPT, True, False, False),
        (RestartDecision.EARLY, False, True, False),
        (RestartDecision.STALE, False, False, True),
    ]:
        start = _message(_start("e2"))
        triage = _sort([start], summary, restarts={start.message_id: decision})
        assert (triage.new_start is start.data.event) is new_start, decision
        assert (triage.deferred == [start]) is deferred, decision
        assert (triage.consumed == [start]) is not deferred, decision
        assert triage.judged_by_history is judged, decision


# -- duplicates --------------------------------------------------------------------------------
def test_a_copy_of_the_running_executions_start_is_a_duplicate() -> None:
    copy = _message(_start("e1"))
    triage = _sort([copy], _running("e1"))
    assert triage.consumed == [copy]
    assert triage.new_start is None
    assert triage.duplicate_start and triage.judged_by_history


def test_a_second_start_in_one_batch_is_ignored() -> None:
    first, second = _message(_start("e1")), _message(_start("e2"))
    triage = _sort([first, second], HistorySummary(), None)
    assert triage.new_start is first.data.event
    assert triage.consumed == [first, second]
    assert not triage.duplicate_start and not triage.judged_by_history


def test_a_start_of_another_execution_of_a_running_instance_is_ignored() -> None:
    other = _message(_start("e2"))
    triage = _sort([other], _running("e1"))
    assert triage.new_start is None
    assert triage.consumed == [other]
    assert triage.judged_by_history and not triage.duplicate_start


def test_a_copy_of_a_client_event_already_applied_is_discarded() -> None:
    raised = EventRaised(name="go", input='"x"', timestamp=T0)
    summary = _running()
    summary.add([raised])
    copy = _message(EventRaised(name="go", input='"x"', timestamp=T0))
    triage = _sort([copy], summary)
    assert triage.consumed == [copy] and not triage.events
    assert triage.judged_by_history


def test_two_copies_of_a_client_event_in_one_batch_apply_once() -> None:
    first = _message(EventRaised(name="go", input='"x"', timestamp=T0))
    second = _message(EventRaised(name="go", input='"x"', timestamp=T0))
    triage = _sort([first, second], _running())
    assert triage.events == [first.data.event]
    assert triage.consumed == [first, second]


def test_events_one_orchestration_sends_another_are_not_deduplicated() -> None:
    sender = OrchestrationInstance("other", "x1")
    first = _message(EventRaised(name="go", timestamp=T0), sender=sender)
    second = _message(EventRaised(name="go", timestamp=T0), sender=sender)
    triage = _sort([first, second], _running())
    assert triage.events == [first.data.event, second.data.event]


# -- before the start --------------------------------------------------------------------------
def test_terminate_before_start_starts_the_pending_execution_to_terminate_it() -> None:
    terminate = _message(ExecutionTerminated(input='"stop"'))
    triage = _sort([terminate], HistorySummary(), None)
    assert triage.terminate_unstarted
    assert triage.events == [terminate.data.event] and triage.consumed == [terminate]
    triage.start_to_terminate("i", _row("e9", Status.Pending))
    start = triage.new_start
    assert start is not None and start.orchestration_instance is not None
    assert start.orchestration_instance.execution_id == "e9"
    assert (start.name, start.version, start.input, start.generation) == ("Flow", "1", '"in"', 3)
    assert (start.timestamp, start.tags) == (T0, {"k": "v"})
    assert start.scheduled_start_time == T0 + timedelta(hours=1)
    assert triage.events == [terminate.data.event]


def test_terminate_before_start_without_a_pending_row_applies_nothing() -> None:
    for row in [None, _row("e9", Status.Completed), _row(None, Status.Pending)]:
        terminate = _message(ExecutionTerminated())
        triage = _sort([terminate], HistorySummary(), None)
        triage.start_to_terminate("i", row)
        assert triage.new_start is None, row
        assert not triage.events, row
        assert triage.consumed == [terminate], row


def test_suspend_and_resume_before_start_are_deferred_for_five_deliveries() -> None:
    for event in [ExecutionSuspended(), ExecutionResumed(), EventRaised(name="go")]:
        fifth = _message(event, dequeue_count=5)
        sixth = _message(event, dequeue_count=6)
        triage = _sort([fifth, sixth], HistorySummary(), None)
        assert triage.deferred == [fifth], event
        assert triage.awaiting_start == [sixth], event
        assert not triage.consumed and not triage.events, event
        assert not triage.judged_by_history, event


def test_messages_awaiting_a_start_wait_while_the_row_is_pending_else_are_discarded() -> None:
    for row, kept in [(_row("e1", Status.Pending), True), (None, False)]:
        late = _message(ExecutionSuspended(), dequeue_count=6)
        triage = _sort([late], HistorySummary(), None)
        triage.settle_awaiting_start("i", row)
        assert (triage.deferred == [late]) is kept, row
        assert (triage.consumed == [late]) is not kept, row
