"""The client's entity operations: signal, read, list and clean entities on the task hub.

`signal_entity` and `read_entity_state` are the Python SDK's; `list_entities` and
`clean_entity_storage` are .NET's `ListEntitiesAsync` / `CleanEntityStorageAsync` with SDK-style
names (the Python SDK has neither, its issue #197). Entities live in the hub as Durable Functions
lays them out (durable-entities.md §3): instance `@name@key`, the `SchedulerState` as the Instances
row's Input.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from .orchestration import codec
from .orchestration.entity_id import EntityId
from .orchestration.entity_messages import (
    RELEASE_EVENT,
    REQUEST_EVENT,
    ReleaseMessage,
    RequestMessage,
    SchedulerState,
    scheduled_event_name,
)
from .orchestration.history import EventRaised, OrchestrationInstance
from .storage.instance_store import InstanceQuery, InstanceRow
from .storage.messages import MessageData
from .storage.task_hub import TaskHub
from .tracking import FunctionType
from .worker.registry import FunctionRegistry

__all__ = [
    "CleanEntityStorageResult",
    "DurableEntityStatus",
    "EntityClientMixin",
    "EntityQueryResult",
    "EntityStateResponse",
    "UnknownEntityError",
]

ORPHANED_LOCK_RELEASE_ID = "fix-orphaned-lock"
DEFAULT_REORDER_WINDOW = timedelta(minutes=30)


class UnknownEntityError(ValueError):
    """No entity function of that name is registered in this app."""


class EntityStateResponse:
    """`read_entity_state`'s answer, as the SDK's: whether the entity exists, and its state."""

    def __init__(self, entity_exists: bool, entity_state: Any = None) -> None:
        self._entity_exists = entity_exists
        self._entity_state = entity_state

    @property
    def entity_exists(self) -> bool:
        return self._entity_exists

    @property
    def entity_state(self) -> Any:
        return self._entity_state

    def __repr__(self) -> str:
        return f"EntityStateResponse({self._entity_exists!r}, {self._entity_state!r})"


@dataclass(frozen=True, slots=True)
class DurableEntityStatus:
    """One entity of a listing (DF `DurableEntityStatus`)."""

    entity_id: EntityId
    last_operation_time: datetime | None
    state: Any = None

    def to_json(self) -> dict[str, Any]:
        """The HTTP API's shape: `entityId{name,key}`, `lastOperationTime`, `state`."""
        when = self.last_operation_time
        return {
            "entityId": {"name": self.entity_id.name, "key": self.entity_id.key},
            "lastOperationTime": when.strftime("%Y-%m-%dT%H:%M:%SZ") if when else None,
            "state": self.state,
        }


@dataclass(slots=True)
class EntityQueryResult:
    """A page of entities and the token of the next page (None at the end)."""

    entities: list[DurableEntityStatus] = field(default_factory=list)
    continuation_token: str | None = None


@dataclass(frozen=True, slots=True)
class CleanEntityStorageResult:
    """What `clean_entity_storage` did."""

    num_empty_entities_removed: int = 0
    num_orphaned_locks_removed: int = 0


def _state_value(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


class EntityClientMixin:
    """The entity half of `DurableOrchestrationClient`."""

    _hub: TaskHub
    _registry: FunctionRegistry | None

    async def _woken(self, reason: str) -> None:
        raise NotImplementedError

    async def _purge(self, instance_id: str) -> None:
        raise NotImplementedError

    async def signal_entity(
        self,
        entityId: EntityId,  # noqa: N803 - the SDK's name
        operation_name: str,
        operation_input: Any | None = None,
        task_hub_name: str | None = None,
        connection_name: str | None = None,
        *,
        scheduled_time: datetime | None = None,
    ) -> None:
        """Send a one-way operation to an entity (created by its first operation); with
        `scheduled_time`, the entity runs it at that time."""
        self._check_known(entityId)
        now = datetime.now(UTC)
        request = RequestMessage(
            id=str(uuid.uuid4()),
            operation=operation_name,
            signal=True,
            input=None if operation_input is None else codec.encode(operation_input),
            timestamp=now,
        )
        name, delay = REQUEST_EVENT, None
        if scheduled_time is not None:
            due = scheduled_time if scheduled_time.tzinfo else scheduled_time.replace(tzinfo=UTC)
            request.due = due.astimezone(UTC)
            name, delay = scheduled_event_name(request.due), max(request.due - now, timedelta(0))
        reason = f"EntitySignal:{operation_name}"
        self._hub.tracking.scheduled(str(entityId), entityId.name, FunctionType.Entity, reason)
        await self._send_entity_event(str(entityId), name, request.to_text(), delay)

    async def read_entity_state(
        self,
        entityId: EntityId,  # noqa: N803 - the SDK's name
        task_hub_name: str | None = None,
        connection_name: str | None = None,
    ) -> EntityStateResponse:
        """Whether the entity exists and its state (as plain JSON values)."""
        row = await self._hub.instances.get(str(entityId))
        if row is None:
            return EntityStateResponse(False, None)
        scheduler = SchedulerState.from_text(row.input)
        if not scheduler.exists or scheduler.state is None:
            return EntityStateResponse(False, None)
        return EntityStateResponse(True, _state_value(scheduler.state))

    async def list_entities(
        self,
        entity_name: str | None = None,
        *,
        fetch_state: bool = False,
        last_operation_time_from: datetime | None = None,
        last_operation_time_to: datetime | None = None,
        page_size: int = 100,
        continuation_token: str | None = None,
        include_deleted: bool = False,
    ) -> EntityQueryResult:
        """One page of entities (of one name, or all), newest state optional."""
        prefix = f"@{entity_name.lower()}@" if entity_name else "@"
        query = InstanceQuery(
            created_from=last_operation_time_from,
            created_to=last_operation_time_to,
            instance_id_prefix=prefix,
        )
        rows, token = await self._hub.instances.query(
            query, page_size=page_size, continuation=continuation_token
        )
        result = EntityQueryResult(continuation_token=token)
        for row in rows:
            scheduler = SchedulerState.from_text(row.input)
            if not include_deleted and not scheduler.exists:
                continue
            result.entities.append(
                DurableEntityStatus(
                    EntityId.get_entity_id(row.instance_id),
                    row.last_updated_time or row.created_time,
                    _state_value(scheduler.state) if fetch_state else None,
                )
            )
        return result

    async def clean_entity_storage(
        self,
        remove_empty_entities: bool = True,
        release_orphaned_locks: bool = True,
        *,
        idle_for: timedelta = DEFAULT_REORDER_WINDOW,
    ) -> CleanEntityStorageResult:
        """Purge entities with no state, no queued operations and no lock that have been idle for
        `idle_for` (the window they remember received requests in), and release locks whose
        orchestration is no longer running."""
        removed = released = 0
        token: str | None = None
        cutoff = datetime.now(UTC) - idle_for
        while True:
            rows, token = await self._hub.instances.query(
                InstanceQuery(instance_id_prefix="@"), continuation=token
            )
            for row in rows:
                scheduler = SchedulerState.from_text(row.input)
                if release_orphaned_locks and scheduler.locked_by is not None:
                    if await self._is_orphaned(scheduler.locked_by):
                        await self._send_entity_event(
                            row.instance_id,
                            RELEASE_EVENT,
                            ReleaseMessage(scheduler.locked_by, ORPHANED_LOCK_RELEASE_ID).to_text(),
                            None,
                        )
                        released += 1
                elif remove_empty_entities and _is_empty(row, scheduler, cutoff):
                    await self._purge(row.instance_id)
                    removed += 1
            if token is None:
                return CleanEntityStorageResult(removed, released)

    async def _is_orphaned(self, owner: str) -> bool:
        row = await self._hub.instances.get(owner, fetch_payloads=False)
        return row is None or row.is_terminal

    def _check_known(self, entity_id: EntityId) -> None:
        if self._registry is not None and self._registry.entity(entity_id.name) is None:
            raise UnknownEntityError(
                f"The function '{entity_id.name}' doesn't exist, is disabled, or is not an "
                "entity function. Additional info: the app has no entity function of that name."
            )

    async def _send_entity_event(
        self, instance_id: str, name: str, payload: str, delay: timedelta | None
    ) -> None:
        raised = EventRaised(timestamp=datetime.now(UTC), name=name, input=payload)
        await self._hub.send_to_instance(
            MessageData(raised, OrchestrationInstance(instance_id)), delay
        )
        await self._woken("EventRaised")


def _is_empty(row: InstanceRow, scheduler: SchedulerState, cutoff: datetime) -> bool:
    last = row.last_updated_time or row.created_time
    return (
        not scheduler.exists
        and not scheduler.queue
        and scheduler.locked_by is None
        and last is not None
        and last <= cutoff
    )
