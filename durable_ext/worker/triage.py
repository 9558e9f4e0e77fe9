"""Sorting one instance's inbound messages into what an episode does with each (pure: no I/O).

Each message is applied (its event joins the episode), discarded (deleted unapplied) or deferred
(put back, to be tried again later), the named decisions of DTFx's `OrchestrationSession`
(`IsOutOfOrderMessage`, `DiscardMessage`, `DeferMessage`) and of
`TaskOrchestrationDispatcher.ReconcileMessagesWithState`. What needs the Instances row to decide
(a restart of a finished instance, a message before the start) is decided here from the row the
dispatcher reads; the dispatcher then deletes and abandons.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

from .. import clock
from ..orchestration.history import (
    EventRaised,
    ExecutionResumed,
    ExecutionStarted,
    ExecutionSuspended,
    ExecutionTerminated,
    HistoryEvent,
    OrchestrationInstance,
    SubOrchestrationInstanceCompleted,
    SubOrchestrationInstanceFailed,
    TaskCompleted,
    TaskFailed,
    TimerFired,
)
from ..orchestration.history_summary import HistorySummary, raised_key
from ..orchestration.status import OrchestrationRuntimeStatus
from ..storage.instance_store import InstanceRow
from ..storage.queues import ReceivedMessage

__all__ = [
    "RestartDecision",
    "Triage",
    "arrival_order",
    "decide_restarts",
    "is_out_of_order",
    "restart_candidates",
    "sort_messages",
]

log = logging.getLogger("durable_ext.orchestrations")

_RESPONSES = (
    TaskCompleted,
    TaskFailed,
    SubOrchestrationInstanceCompleted,
    SubOrchestrationInstanceFailed,
    TimerFired,
)
"""Answers to something the orchestration scheduled, matched to it by task or timer id."""
_BEFORE_START = (*_RESPONSES, EventRaised, ExecutionSuspended, ExecutionResumed)
"""Messages that may reach an instance before its start (a delayed or scheduled start): put back
until it has started."""
_PENDING = OrchestrationRuntimeStatus.Pending
_OUT_OF_ORDER_GRACE = 5
"""Deliveries a message for an instance with no history is put back for without asking storage
(DTFx: `DequeueCount > 5` stops treating it as out of order). The start is usually just behind it;
after that the Instances row decides (`Triage.awaiting_start`)."""
_STALE_START_DEQUEUES = 10
"""Deliveries after which a restart the Instances row does not confirm is discarded (DTFx's
`DequeueCount >= 10`: the client must have failed to write the row after sending the start)."""


class RestartDecision(Enum):
    """What to do with a client's ExecutionStarted for another execution of a finished instance."""

    ACCEPT = "accept"
    """The Instances row names this execution (or there is no row): a restart; apply it."""
    STALE = "stale"
    """Older than the row, or never confirmed: a redelivered start of an earlier execution (the
    first generation of a continue-as-new instance); discard it."""
    EARLY = "early"
    """The client has sent the start but not yet written the row: defer it."""


@dataclass(slots=True)
class Triage:
    """The messages of one batch for one instance, sorted into what to do with each."""

    events: list[HistoryEvent] = field(default_factory=list)
    """The events the episode applies, in order."""
    consumed: list[ReceivedMessage] = field(default_factory=list)
    """Deleted once the episode is settled: the applied messages and the discarded ones."""
    deferred: list[ReceivedMessage] = field(default_factory=list)
    """Put back (abandoned with back-off), to be tried again in a later episode."""
    new_start: ExecutionStarted | None = None
    """The ExecutionStarted of the execution this episode starts, if any."""
    terminate_unstarted: bool = False
    """An ExecutionTerminated reached an instance with no history (`start_to_terminate`)."""
    awaiting_start: list[ReceivedMessage] = field(default_factory=list)
    """Messages for an instance with no history, past their grace: deferred while the Instances
    row says Pending (the start is on its way), else discarded (`settle_awaiting_start`)."""
    finished_instance: bool = False
    """A message was discarded because the instance has finished."""
    duplicate_start: bool = False
    """A copy of the ExecutionStarted of the running execution was discarded."""
    judged_by_history: bool = False
    """Some message was dropped or put back because of what history holds (not applied)."""

    def apply(self, message: ReceivedMessage, event: HistoryEvent) -> None:
        """The event joins the episode; the message is deleted once it is committed."""
        self.events.append(event)
        self.consumed.append(message)

    def discard(self, message: ReceivedMessage, by_history: bool = True) -> None:
        """Delete the message unapplied (DTFx `DiscardMessage`). `by_history`: the decision
        rests on what history holds (so a cached history must be checked against storage)."""
        self.consumed.append(message)
        self.judged_by_history = self.judged_by_history or by_history

    def defer(self, message: ReceivedMessage, by_history: bool = True) -> None:
        """Put the message back to be tried again later (DTFx `DeferMessage`, or the abandon of
        an out-of-order message); `by_history` as for `discard`."""
        self.deferred.append(message)
        self.judged_by_history = self.judged_by_history or by_history

    def start_to_terminate(self, instance_id: str, row: InstanceRow | None) -> None:
        """A Terminate that reached an instance before its start (the start is scheduled for
        later, or was put back): when the client's Pending `row` exists, start that execution
        from the row so the episode terminates it, and history and row agree that it was
        terminated (the start message, when it comes, is a duplicate). Otherwise there is no such
        instance: nothing is applied."""
        if row is None or row.runtime_status is not _PENDING or not row.execution_id:
            log.info("No such instance %s; discarding ExecutionTerminated", instance_id)
            self.events.clear()
            return
        self.new_start = ExecutionStarted(
            timestamp=row.created_time or clock.utc_now(),
            orchestration_instance=OrchestrationInstance(instance_id, row.execution_id),
            name=row.name,
            version=row.version,
            input=row.input,
            tags=row.tags,
            scheduled_start_time=row.scheduled_start_time,
            generation=row.generation,
        )

    def settle_awaiting_start(self, instance_id: str, row: InstanceRow | None) -> None:
        """Sort the messages awaiting a start by the Instances row: deferred while it is Pending,
        else discarded (there is no such instance)."""
        if row is not None and row.runtime_status is _PENDING:
            self.deferred += self.awaiting_start
            return
        for message in self.awaiting_start:
            log.info(
                "No such instance %s; discarding %s",
                instance_id,
                type(message.data.event).__name__,
            )
        self.consumed += self.awaiting_start


def arrival_order(message: ReceivedMessage) -> tuple[bool, datetime, int]:
    """ExecutionStarted first (DTFx `ReconcileMessagesWithState`), then queue insertion time and
    the sender's sequence number: a Terminate or Suspend sent with its start applies after it."""
    return (
        not isinstance(message.data.event, ExecutionStarted),
        message.inserted_on,
        message.data.sequence_number,
    )


def restart_candidates(
    execution_id: str | None,
    summary: HistorySummary,
    messages: Iterable[ReceivedMessage],
    any_state: bool = False,
) -> list[ReceivedMessage]:
    """The messages that need the Instances row to be judged (`decide_restarts`): a client's
    (top-level) ExecutionStarted for another execution than `execution_id`, the finished one (or
    a running one too, with `overridableExistingInstanceStates` AnyState: `any_state`)."""
    if summary.started is None or not (summary.finished or any_state):
        return []
    return [
        m
        for m in messages
        if isinstance(m.data.event, ExecutionStarted)
        and m.data.event.parent_instance is None
        and _execution(m.data.event) != execution_id
    ]


def decide_restarts(
    candidates: Iterable[ReceivedMessage], row: InstanceRow | None
) -> dict[str, RestartDecision]:
    """Tell a client's restart of a finished instance from a stale start message, by message id.

    The client writes the new execution into the Instances row just after sending its start, so
    a start the row names is a restart; one older than the row (or retried too often) is stale;
    any other is early (its row is on its way). DTFx `DedupeExecutionStartedMessagesAsync`.
    """
    decisions: dict[str, RestartDecision] = {}
    for message in candidates:
        event = message.data.event
        if row is None or row.execution_id == message.data.instance.execution_id:
            decisions[message.message_id] = RestartDecision.ACCEPT
        elif (row.created_time is not None and row.created_time >= event.timestamp) or (
            message.dequeue_count >= _STALE_START_DEQUEUES
        ):
            decisions[message.message_id] = RestartDecision.STALE
        else:
            decisions[message.message_id] = RestartDecision.EARLY
    return decisions


def is_out_of_order(event: HistoryEvent, summary: HistorySummary) -> bool:
    """A response to a task or timer that history has not scheduled (yet): the sender sends its
    messages before it writes its history, so the answer can overtake the checkpoint that
    scheduled it (DTFx `IsOutOfOrderMessage`)."""
    return isinstance(event, _RESPONSES) and _response_id(event) not in summary.scheduled


def sort_messages(
    instance_id: str,
    execution_id: str | None,
    summary: HistorySummary,
    messages: Iterable[ReceivedMessage],
    restarts: dict[str, RestartDecision],
) -> Triage:
    """Sort `messages` (in `arrival_order`) for an instance whose stored history is that of
    `execution_id`, summarised by `summary`; `restarts` are the `decide_restarts` decisions."""
    triage = Triage()
    client_events: set[tuple[str, datetime, int]] = set()
    for message in messages:
        event = message.data.event
        if isinstance(event, ExecutionStarted):
            decision = restarts.get(message.message_id, RestartDecision.ACCEPT)
            if decision is RestartDecision.EARLY:
                triage.defer(message, by_history=False)
            elif decision is RestartDecision.STALE:
                log.info("%s: discarding a stale ExecutionStarted", instance_id)
                triage.discard(message)
            else:
                replaces = message.message_id in restarts
                _triage_start(instance_id, execution_id, summary, triage, message, event, replaces)
            continue
        new_start = triage.new_start
        current = _execution(new_start) if new_start else execution_id
        target = message.data.instance.execution_id
        if target and current and target != current:
            log.debug(
                "%s: dropping %s for old execution %s", instance_id, type(event).__name__, target
            )
            triage.discard(message)
        elif summary.started is None and new_start is None:
            _triage_unstarted(instance_id, triage, message, event)
        elif summary.finished and new_start is None:
            log.info("%s is finished; discarding %s", instance_id, type(event).__name__)
            triage.discard(message)
            triage.finished_instance = True
        elif new_start is None and is_out_of_order(event, summary):
            log.debug(
                "%s: out-of-order %s #%s, retrying later",
                instance_id,
                type(event).__name__,
                _response_id(event),
            )
            triage.defer(message)
        elif (
            _from_client(message)
            and isinstance(event, EventRaised)
            and (summary.has_raised(event) or raised_key(event) in client_events)
        ):
            log.info(
                "%s: dropping a copy of event %r raised at %s, already applied",
                instance_id,
                event.name,
                event.timestamp,
            )
            triage.discard(message)
        else:
            if _from_client(message) and isinstance(event, EventRaised):
                client_events.add(raised_key(event))
            triage.apply(message, event)
    return triage


def _triage_start(
    instance_id: str,
    execution_id: str | None,
    summary: HistorySummary,
    triage: Triage,
    message: ReceivedMessage,
    event: ExecutionStarted,
    replaces: bool = False,
) -> None:
    """An accepted ExecutionStarted: the start of a new execution, or discarded as a duplicate
    (the running execution's own, a second one in the batch, or one for a running instance unless
    the Instances row says it `replaces` it)."""
    execution = _execution(event)
    if summary.started is not None and execution == execution_id:
        log.debug("%s: duplicate ExecutionStarted for %s", instance_id, execution)
        triage.duplicate_start = True
        triage.discard(message)
    elif triage.new_start is not None:
        log.debug("%s: second ExecutionStarted in one batch ignored", instance_id)
        triage.discard(message, by_history=False)
    elif summary.started is not None and not summary.finished and not replaces:
        log.warning("%s is already running; ignoring a new ExecutionStarted", instance_id)
        triage.discard(message)
    else:
        triage.new_start = event
        triage.consumed.append(message)


def _triage_unstarted(
    instance_id: str, triage: Triage, message: ReceivedMessage, event: HistoryEvent
) -> None:
    """A message for an instance with neither history nor a start in this batch."""
    if isinstance(event, ExecutionTerminated):
        triage.terminate_unstarted = True
        triage.apply(message, event)
    elif isinstance(event, _BEFORE_START):
        if message.dequeue_count <= _OUT_OF_ORDER_GRACE:
            triage.defer(message, by_history=False)
        else:
            triage.awaiting_start.append(message)
    else:
        log.info("No such instance %s; discarding %s", instance_id, type(event).__name__)
        triage.discard(message, by_history=False)


def _response_id(event: HistoryEvent) -> int:
    return int(getattr(event, "timer_id", getattr(event, "task_scheduled_id", -1)))


def _from_client(message: ReceivedMessage) -> bool:
    """Sent by a client (raise_event, terminate, ...), not by an orchestration."""
    sender = message.data.sender
    return sender is None or not sender.instance_id


def _execution(event: ExecutionStarted | None) -> str | None:
    instance = event.orchestration_instance if event is not None else None
    return instance.execution_id if instance is not None else None
