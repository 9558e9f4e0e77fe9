"""One entity batch: the messages that arrived, the scheduler state, the function → the new state and
the messages to send (DF's `TaskEntityShim` scheduler, durable-entities.md §3.3-§3.7). Pure: no I/O.

1. Each arriving message is sorted: a request whose `due` is still ahead is sent back to the entity
   for later; a copy of a request already received is dropped (by request id, and by the sender's
   label for orchestration senders); a request from an orchestration whose predecessor has not
   arrived waits in the sorter (per-sender order); the rest join the queue (the lock holder's at
   the front). A release from the lock holder unlocks the entity.
2. The queue runs in order while its head may run (no lock, or the head is the holder's): operations
   one at a time over the state (each one commits or rolls back alone), lock requests lock the
   entity and travel on to the next entity of the set, or answer the orchestration.
3. Responses go to callers; the signals of successful operations go to their entities.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .entity_context import (
    DurableEntityContext,
    OperationOutcome,
    OperationRequest,
    run_operations,
)
from .entity_id import EntityId
from .entity_messages import (
    LOCK_GRANTED,
    RELEASE_EVENT,
    REQUEST_EVENT,
    ReceivedFrom,
    ReleaseMessage,
    RequestMessage,
    ResponseMessage,
    SchedulerState,
    scheduled_event_name,
)
from .entity_requests import next_label

__all__ = ["EntityBatch", "Outgoing", "run_entity_batch", "SCHEDULED_EARLY_TOLERANCE"]

SCHEDULED_EARLY_TOLERANCE = timedelta(milliseconds=100)
_SIGNAL_NAMESPACE = uuid.UUID("2f6c6f2b-3f0e-4d8e-9a36-5b1c0a3e7d41")


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message to send: an EventRaised named `event_name` to `instance_id` (`execution_id` when
    it must reach that execution only), visible at `due` when set."""

    instance_id: str
    event_name: str
    payload: str
    execution_id: str | None = None
    due: datetime | None = None


@dataclass(slots=True)
class EntityBatch:
    """The outcome of one batch."""

    state: SchedulerState
    outgoing: list[Outgoing] = field(default_factory=list)
    operations: list[OperationOutcome] = field(default_factory=list)
    dropped: int = 0
    """Copies of requests already received."""


def run_entity_batch(
    instance_id: str,
    scheduler: SchedulerState,
    messages: Sequence[tuple[str, str | None]],
    function: Callable[[DurableEntityContext], Any] | None,
    now: datetime,
    dedup_window: timedelta,
    on_operation: Callable[[OperationOutcome], None] | None = None,
) -> EntityBatch:
    """Apply `messages` (event name, payload) to the entity `instance_id` (`@name@key`).

    `function` None means no entity function of that name is registered: every operation fails.
    """
    batch = EntityBatch(scheduler)
    entity_id = EntityId.get_entity_id(instance_id)
    _prune(scheduler, now - dedup_window)
    holder_first: list[RequestMessage] = []
    for name, payload in messages:
        if name == RELEASE_EVENT:
            release = ReleaseMessage.from_text(payload)
            if release.parent and release.parent == scheduler.locked_by:
                scheduler.locked_by = None
            continue
        if not name.startswith(REQUEST_EVENT):
            continue  # `continue` and unknown events only wake the scheduler
        request = RequestMessage.from_text(payload)
        if request.due is not None and request.due - now > SCHEDULED_EARLY_TOLERANCE:
            batch.outgoing.append(
                Outgoing(
                    instance_id, scheduled_event_name(request.due), payload or "", None, request.due
                )
            )
            continue
        for ready in _sort(scheduler, request, now, dedup_window, batch):
            if ready.parent is not None and ready.parent == scheduler.locked_by:
                holder_first.append(ready)
            else:
                scheduler.queue.append(ready)
    scheduler.queue[:0] = holder_first
    _run_queue(instance_id, entity_id, scheduler, function, now, batch, on_operation)
    return batch


def _prune(scheduler: SchedulerState, horizon: datetime) -> None:
    """Forget what is older than the window: request ids, senders last heard from before it, and
    buffered messages whose predecessor never came (sent by an orchestration episode that crashed
    before its checkpoint, then ran again with new messages: never to be applied)."""
    scheduler.recent.prune(horizon)
    for source, received in list(scheduler.received_from.items()):
        for key, message in list(received.buffered.items()):
            if message.timestamp is None or message.timestamp < horizon:
                del received.buffered[key]
        if not received.buffered and (received.last is None or received.last < horizon):
            del scheduler.received_from[source]
    for target, sent in list(scheduler.last_sent_to.items()):
        if sent < horizon:
            del scheduler.last_sent_to[target]


def _sort(
    scheduler: SchedulerState,
    request: RequestMessage,
    now: datetime,
    window: timedelta,
    batch: EntityBatch,
) -> list[RequestMessage]:
    """The requests this one makes deliverable (itself, then buffered successors), in order."""
    if scheduler.recent.seen(request.id):
        batch.dropped += 1
        return []
    source = request.parent
    labelled = request.timestamp is not None and request.position == 0 and request.due is None
    if source is None or not labelled:
        scheduler.recent.add(request.id, now)
        return [request]
    received = scheduler.received_from.get(source)
    if received is None or received.execution_id != request.parent_execution:
        received = scheduler.received_from[source] = ReceivedFrom(None, request.parent_execution)
    assert request.timestamp is not None
    if received.last is not None and request.timestamp <= received.last:
        batch.dropped += 1
        return []
    stale = request.timestamp < now - window  # its predecessor may be forgotten: deliver it
    if (
        request.predecessor is not None
        and not stale
        and (received.last is None or request.predecessor > received.last)
    ):
        received.buffered[request.timestamp.isoformat()] = request
        return []
    ready = [request]
    received.last = request.timestamp
    scheduler.recent.add(request.id, now)
    while True:
        successor = next(
            (m for m in received.buffered.values() if m.predecessor == received.last), None
        )
        if successor is None:
            break
        assert successor.timestamp is not None
        del received.buffered[successor.timestamp.isoformat()]
        received.last = successor.timestamp
        scheduler.recent.add(successor.id, now)
        ready.append(successor)
    return ready


def _run_queue(
    instance_id: str,
    entity_id: EntityId,
    scheduler: SchedulerState,
    function: Callable[[DurableEntityContext], Any] | None,
    now: datetime,
    batch: EntityBatch,
    on_operation: Callable[[OperationOutcome], None] | None,
) -> None:
    queue = scheduler.queue
    while queue:
        runnable: list[RequestMessage] = []
        while queue and not queue[0].is_lock_request and _may_run(scheduler, queue[0]):
            runnable.append(queue.pop(0))
        if runnable:
            _run_operations(
                instance_id, entity_id, scheduler, function, runnable, now, batch, on_operation
            )
        if queue and queue[0].is_lock_request and _may_run(scheduler, queue[0]):
            _grant_lock(instance_id, scheduler, queue.pop(0), batch)
            continue
        if not runnable:
            break


def _may_run(scheduler: SchedulerState, request: RequestMessage) -> bool:
    return scheduler.locked_by is None or request.parent == scheduler.locked_by


def _run_operations(
    instance_id: str,
    entity_id: EntityId,
    scheduler: SchedulerState,
    function: Callable[[DurableEntityContext], Any] | None,
    requests: list[RequestMessage],
    now: datetime,
    batch: EntityBatch,
    on_operation: Callable[[OperationOutcome], None] | None,
) -> None:
    operations = [
        OperationRequest(r.operation or "", r.input, r.signal, r.id or "") for r in requests
    ]
    outcome = run_operations(
        function or _missing(entity_id),
        entity_id,
        scheduler.exists,
        scheduler.state,
        operations,
        on_operation,
    )
    scheduler.exists, scheduler.state = outcome.exists, outcome.state
    for request, operation in zip(requests, outcome.operations, strict=True):
        batch.operations.append(operation)
        if not request.signal and request.parent is not None:
            response = ResponseMessage(operation.result, "Error" if operation.is_error else None)
            batch.outgoing.append(
                Outgoing(request.parent, request.id, response.to_text(), request.parent_execution)
            )
        for index, signal in enumerate(operation.signals):
            target = str(signal.target)
            timestamp, predecessor = next_label(scheduler.last_sent_to, target, now)
            message = RequestMessage(
                id=str(uuid.uuid5(_SIGNAL_NAMESPACE, f"{instance_id}/{request.id}/{index}")),
                operation=signal.operation,
                signal=True,
                input=signal.input,
                parent=instance_id,
                timestamp=timestamp,
                predecessor=predecessor,
            )
            batch.outgoing.append(Outgoing(target, REQUEST_EVENT, message.to_text()))


def _grant_lock(
    instance_id: str, scheduler: SchedulerState, request: RequestMessage, batch: EntityBatch
) -> None:
    """Lock for the requesting orchestration; pass the request on, or answer when last."""
    scheduler.locked_by = request.parent
    lockset = request.lockset or []
    request.position += 1
    if request.position < len(lockset):
        batch.outgoing.append(
            Outgoing(str(lockset[request.position]), REQUEST_EVENT, request.to_text())
        )
    elif request.parent is not None:
        batch.outgoing.append(
            Outgoing(
                request.parent,
                request.id,
                ResponseMessage(LOCK_GRANTED).to_text(),
                request.parent_execution,
            )
        )


def _missing(entity_id: EntityId) -> Callable[[DurableEntityContext], Any]:
    def missing(context: DurableEntityContext) -> None:
        raise LookupError(
            f"The function '{entity_id.name}' doesn't exist, is disabled, or is not an entity "
            "function."
        )

    return missing
