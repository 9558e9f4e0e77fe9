"""Runs entity batches: the messages of one entity instance (`@name@key`) in one episode.

An entity is stored as Durable Functions stores it on Azure Storage: an instance whose every batch
ends in a continue-as-new, so its history is always three rows (OrchestratorStarted,
ExecutionStarted whose input is the `SchedulerState`, OrchestratorCompleted) and its Instances row
is Running with the state as `Input` and the `EntityStatus` as `CustomStatus`.

Checkpoint order, as for orchestrations: send the outbound messages; write the new history under
the sentinel ETag (409/412: another worker won, abandon); merge the Instances row; delete the
inbound messages. A crash before the history write runs the batch again (user code at least once,
as in DF): the responses go out again (a caller ignores an answer it already has) and the signals
again with the same request ids (their receivers drop copies). A crash after it redelivers messages
the stored state already records as received: they are dropped (`entity_scheduler`). That is also
why the deletes run in the background, while the entity's next batch already runs: a hot entity's
rate is not bounded by deleting each batch's messages.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from .. import clock
from ..fault_points import fault_point
from ..orchestration.entity_context import OperationOutcome
from ..orchestration.entity_id import EntityId
from ..orchestration.entity_messages import SchedulerState
from ..orchestration.entity_scheduler import EntityBatch, Outgoing, run_entity_batch
from ..orchestration.failures import failure_details
from ..orchestration.history import (
    EventRaised,
    ExecutionStarted,
    OrchestrationInstance,
    OrchestratorCompleted,
    OrchestratorStarted,
)
from ..orchestration.status import OrchestrationRuntimeStatus
from ..storage.errors import describe_storage_error
from ..storage.history_store import CheckpointConflictError
from ..storage.instance_store import InstanceColumns
from ..storage.messages import MessageData
from ..storage.queues import ReceivedMessage
from ..storage.task_hub import TaskHub
from ..tracking import FunctionType
from .held_messages import HeldMessages
from .outbound import Outbound
from .registry import FunctionRegistry

__all__ = ["EntityDispatcher", "is_entity_instance"]

log = logging.getLogger("durable_ext.entities")
_CACHE_SIZE = 1000


def is_entity_instance(instance_id: str) -> bool:
    """Entity instance ids start with `@` (DTFx `IsEntityInstance`)."""
    return instance_id.startswith("@")


class _Stored:
    """An entity's last checkpoint as this worker wrote or read it."""

    __slots__ = ("etag", "state")

    def __init__(self, etag: str | None, state: str | None) -> None:
        self.etag = etag
        self.state = state


class EntityDispatcher:
    """Runs the batches of the entities whose control queues the orchestration dispatcher reads."""

    def __init__(
        self,
        hub: TaskHub,
        registry: FunctionRegistry,
        held: HeldMessages,
        send: Callable[[Outbound, int], Awaitable[None]],
        dedup_window: timedelta,
    ) -> None:
        self._hub = hub
        self._registry = registry
        self._held = held
        self._send = send
        self._dedup_window = dedup_window
        self._stored: OrderedDict[str, _Stored] = OrderedDict()
        self._deleting: set[asyncio.Task[None]] = set()
        self.on_operation: Callable[[str, OperationOutcome], None] | None = None
        """Sees each entity operation once it has run: the instance id and the outcome (operation
        name, input, start time, duration, result or error). The one place to emit per-operation
        tracking events from; called in the batch's thread, before the batch is checkpointed (a
        batch that fails to checkpoint runs again)."""

    async def process(self, instance_id: str, messages: list[ReceivedMessage]) -> None:
        """One batch: run the messages, then checkpoint (module docstring)."""
        stored = self._stored.pop(instance_id, None) or await self._load(instance_id)
        now = clock.utc_now()
        events = [m.data.event for m in messages]
        inbound = [(e.name or "", e.input) for e in events if isinstance(e, EventRaised)]
        function = self._registry.entity(EntityId.get_entity_id(instance_id).name)
        scheduler = SchedulerState.from_text(stored.state)
        entity_name = EntityId.get_entity_id(instance_id).name
        tracking = self._hub.tracking
        tracking.started(instance_id, entity_name, FunctionType.Entity, stored.state)
        batch = await asyncio.to_thread(
            run_entity_batch,
            instance_id,
            scheduler,
            inbound,
            function,
            now,
            self._dedup_window,
            functools.partial(self._operation_done, instance_id),
        )
        state_text = batch.state.to_text()
        tracking.completed(
            instance_id, entity_name, FunctionType.Entity, state_text, continued_as_new=True
        )
        execution_id = uuid.uuid4().hex
        me = OrchestrationInstance(instance_id, execution_id)
        partition = self._hub.partition_of(instance_id)
        await asyncio.gather(
            *(self._send(self._outbound(o, me, now), partition) for o in batch.outgoing)
        )
        fault_point("after-outbound-send")
        history = [
            OrchestratorStarted(timestamp=now),
            ExecutionStarted(
                timestamp=now,
                orchestration_instance=me,
                name=instance_id,
                version="",
                input=state_text,
            ),
            OrchestratorCompleted(timestamp=now),
        ]
        try:
            etag = await self._hub.history.append(
                instance_id, execution_id, history, 0, stored.etag
            )
        except CheckpointConflictError:
            log.info("%s was checkpointed by another worker; abandoning this batch", instance_id)
            await asyncio.gather(*(self._held.abandon(m, 0) for m in messages))
            return
        self._held.mark_applied(messages)
        fault_point("after-history-write")
        self._remember(instance_id, _Stored(etag, state_text))
        await self._merge_row(instance_id, execution_id, batch, state_text, now)
        await self._hub.history.delete_unreferenced_blobs(instance_id)
        fault_point("before-inbound-delete")
        deleting = asyncio.create_task(self._delete(messages))
        self._deleting.add(deleting)
        deleting.add_done_callback(self._deleting.discard)
        log.debug(
            "%s: %d operations, %d copies dropped, %d messages sent",
            instance_id,
            len(batch.operations),
            batch.dropped,
            len(batch.outgoing),
        )

    def _operation_done(self, instance_id: str, outcome: OperationOutcome) -> None:
        """An operation ran: its tracking event, then the `on_operation` hook."""
        tracking = self._hub.tracking
        request = outcome.request
        entity_name = EntityId.get_entity_id(instance_id).name
        error = outcome.error
        if error is None:
            tracking.operation_completed(instance_id, entity_name, request.name, request.id,
                                         outcome.duration_ms, request.input, outcome.result)  # fmt: skip
        elif tracking.wanted(logging.ERROR):
            details = failure_details(error)
            exception = tracking.error(details.error_type, details.error_message, details.stack_trace)
            tracking.operation_failed(instance_id, entity_name, request.name, request.id,
                                      outcome.duration_ms, request.input, exception)  # fmt: skip
        if self.on_operation is not None:
            self.on_operation(instance_id, outcome)

    async def stop(self, timeout: float) -> None:
        """Let the inbound deletes in flight finish (those cut short only come back as copies)."""
        if self._deleting:
            await asyncio.wait(set(self._deleting), timeout=timeout)

    async def _delete(self, messages: list[ReceivedMessage]) -> None:
        await asyncio.gather(*(self._held.delete(m) for m in messages))

    def forget(self, predicate: Callable[[str], bool]) -> None:
        """Drop what is remembered of the entities `predicate` selects (a partition given up)."""
        for instance_id in [i for i in self._stored if predicate(i)]:
            del self._stored[instance_id]

    async def _load(self, instance_id: str) -> _Stored:
        loaded = await self._hub.history.load(instance_id)
        started = next((e for e in loaded.events if isinstance(e, ExecutionStarted)), None)
        return _Stored(loaded.etag, started.input if started is not None else None)

    def _remember(self, instance_id: str, stored: _Stored) -> None:
        self._stored[instance_id] = stored
        while len(self._stored) > _CACHE_SIZE:
            self._stored.popitem(last=False)

    @staticmethod
    def _outbound(outgoing: Outgoing, me: OrchestrationInstance, now: datetime) -> Outbound:
        raised = EventRaised(timestamp=now, name=outgoing.event_name, input=outgoing.payload)
        target = OrchestrationInstance(outgoing.instance_id, outgoing.execution_id)
        delay = None
        if outgoing.due is not None:
            delay = max(outgoing.due - now, timedelta(0))
        return Outbound(MessageData(raised, target, None, me), delay=delay)

    async def _merge_row(
        self,
        instance_id: str,
        execution_id: str,
        batch: EntityBatch,
        state_text: str,
        now: datetime,
    ) -> None:
        columns = InstanceColumns(
            execution_id=execution_id,
            name=instance_id,
            version="",
            input=state_text,
            custom_status=batch.state.status_text(),
            runtime_status=OrchestrationRuntimeStatus.Running,
            created_time=now,
            last_updated_time=now,
        )
        try:
            await self._hub.instances.merge(instance_id, columns)
        except Exception as exc:  # noqa: BLE001 - history is committed; the next batch rewrites it
            log.warning(
                "%s: updating the Instances row failed after the state was written: %s",
                instance_id,
                describe_storage_error(exc),
            )
