"""What an orchestration sends entities: calls, signals, lock requests and releases.

Messages are labelled as Durable Functions labels them (`Timestamp` = the orchestration clock,
strictly increasing per target; `Predecessor` = the previous label to that target; both rebuilt
identically on replay), so the receiving entity delivers one orchestration's messages in order and
drops redelivered copies (`entity_scheduler`). Critical sections follow .NET's `LockAsync`: the lock
set is sorted and deduplicated, one request travels through the entities in that order, the last one
answers; releases go out when the section is left or the orchestration ends.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from . import codec
from .actions import SendEvent
from .entity_id import EntityId
from .entity_messages import (
    LOCK_GRANTED,
    RELEASE_EVENT,
    REQUEST_EVENT,
    ReleaseMessage,
    RequestMessage,
    ResponseMessage,
    scheduled_event_name,
)
from .tasks import AtomicTask, EntityCallTask

if TYPE_CHECKING:
    from .runtime import OrchestrationRuntime

__all__ = [
    "CriticalSection",
    "EntityMessenger",
    "EntityOperationFailedError",
    "LockTask",
    "LockingRulesViolationError",
    "next_label",
]

_TICK = timedelta(microseconds=1)


class EntityOperationFailedError(Exception):
    """An entity operation called with `call_entity` raised.

    `str(error)` is the entity's error message, as the Python SDK's plain `Exception` has it (so
    `except Exception` code keeps working); `entity_id`, `operation_name` and `error_type` say more.
    """

    def __init__(
        self, message: str, entity_id: EntityId, operation_name: str, error_type: str
    ) -> None:
        super().__init__(message)
        self.entity_id = entity_id
        self.operation_name = operation_name
        self.error_type = error_type


class LockingRulesViolationError(Exception):
    """A critical section was misused (nested lock, call to an entity it does not hold, ...)."""


def next_label(
    last_sent: dict[str, datetime], target: str, now: datetime
) -> tuple[datetime, datetime | None]:
    """(Timestamp, Predecessor) of the next message to `target`; records it in `last_sent`."""
    predecessor = last_sent.get(target)
    timestamp = now if predecessor is None or now > predecessor else predecessor + _TICK
    last_sent[target] = timestamp
    return timestamp, predecessor


class EntityCall(EntityCallTask):
    """`call_entity`: completes with the operation's result or an EntityOperationFailedError."""

    def __init__(
        self,
        action: SendEvent,
        request_id: str,
        entity_id: EntityId,
        operation: str,
        expected_type: type | None,
    ) -> None:
        super().__init__(action, request_id, expected_type)
        self.entity_id = entity_id
        self.operation = operation

    def accept_response(self, payload: str | None) -> None:
        response = ResponseMessage.from_text(payload)
        if response.is_error:
            try:
                message = codec.decode(response.result)
            except (ValueError, TypeError):
                message = response.result
            self.set_value(
                True,
                EntityOperationFailedError(
                    str(message), self.entity_id, self.operation, str(response.exception_type)
                ),
            )
            return
        try:
            value = codec.decode(response.result, self.expected_type)
        except Exception as exc:  # noqa: BLE001 - surfaced to the orchestrator code
            self.set_value(True, exc)
        else:
            self.set_value(False, value)


class CriticalSection:
    """Locks held on entities. Use it as a context manager (`with (yield context.lock(...)):`) or
    call `release()`; whatever is still held is released when the orchestration ends."""

    def __init__(self, messenger: EntityMessenger, lock_id: str, entities: list[EntityId]) -> None:
        self._messenger = messenger
        self.lock_id = lock_id
        self.entities = entities
        self.released = False

    def release(self) -> None:
        """Release every lock of the section (a no-op the second time)."""
        if not self.released:
            self.released = True
            self._messenger.release(self)

    def __enter__(self) -> CriticalSection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


class LockTask(EntityCallTask):
    """`context.lock(...)`: completes with the CriticalSection once every entity is locked."""

    def __init__(self, action: SendEvent, section: CriticalSection) -> None:
        super().__init__(action, section.lock_id)
        self.section = section

    def accept_response(self, payload: str | None) -> None:
        response = ResponseMessage.from_text(payload)
        if response.is_error or response.result != LOCK_GRANTED:
            self.set_value(True, LockingRulesViolationError(f"lock failed: {response.result}"))
        else:
            self.section._messenger.acquired(self.section)
            self.set_value(False, self.section)


class EntityMessenger:
    """One orchestration execution's entity messages: labels, and the critical section held."""

    def __init__(self, runtime: OrchestrationRuntime, new_id: Any) -> None:
        self._runtime = runtime
        self._new_id = new_id
        self._last_sent: dict[str, datetime] = {}
        self.held: CriticalSection | None = None
        self._acquiring: CriticalSection | None = None

    @property
    def is_locked(self) -> bool:
        return self.held is not None and not self.held.released

    def _request(
        self, target: EntityId, operation: str | None, value: Any, signal: bool
    ) -> RequestMessage:
        info = self._runtime.info
        scheduler_id = EntityId.get_scheduler_id(target)
        timestamp, predecessor = next_label(
            self._last_sent, scheduler_id, info.current_utc_datetime
        )
        return RequestMessage(
            id=self._new_id(),
            operation=operation,
            signal=signal,
            input=codec.encode(value) if operation is not None else None,
            parent=info.instance_id,
            parent_execution=info.execution_id,
            timestamp=timestamp,
            predecessor=predecessor,
        )

    def call(
        self, target: EntityId, operation: str, value: Any, expected_type: type | None
    ) -> EntityCall:
        if self.is_locked and str(target) not in self._held_ids():
            raise LockingRulesViolationError(
                f"Must not call entity {target} from a critical section that does not lock it."
            )
        request = self._request(target, operation, value, signal=False)
        action = SendEvent(EntityId.get_scheduler_id(target), REQUEST_EVENT, request.to_text())
        return EntityCall(action, request.id, target, operation, expected_type)

    def signal(
        self, target: EntityId, operation: str, value: Any, scheduled_time: datetime | None
    ) -> AtomicTask:
        if self.is_locked and str(target) in self._held_ids():
            raise LockingRulesViolationError(
                f"Must not signal entity {target} from a critical section that locks it: "
                "call it instead."
            )
        request = self._request(target, operation, value, signal=True)
        name = REQUEST_EVENT
        if scheduled_time is not None:
            request.due = scheduled_time
            request.timestamp = request.predecessor = None  # scheduled signals are not sorted
            name = scheduled_event_name(scheduled_time)
        return self._send(EntityId.get_scheduler_id(target), name, request.to_text())

    def lock(self, entities: Iterable[EntityId]) -> LockTask:
        if self.is_locked or self._acquiring is not None:
            raise LockingRulesViolationError(
                "Must not enter another critical section from within one."
            )
        unique = sorted({(e.name.lower(), e.key) for e in entities})
        if not unique:
            raise ValueError("lock() needs at least one entity")
        ordered = [EntityId(name, key) for name, key in unique]
        first = EntityId.get_scheduler_id(ordered[0])
        request = self._request(ordered[0], None, None, signal=False)
        request.lockset = ordered
        section = CriticalSection(self, request.id, ordered)
        self._acquiring = section
        return LockTask(SendEvent(first, REQUEST_EVENT, request.to_text()), section)

    def release(self, section: CriticalSection) -> None:
        info = self._runtime.info
        message = ReleaseMessage(info.instance_id, section.lock_id).to_text()
        for entity in section.entities:
            self._send(EntityId.get_scheduler_id(entity), RELEASE_EVENT, message)
        if self.held is section:
            self.held = None
        if self._acquiring is section:
            self._acquiring = None

    def release_all(self) -> None:
        """The orchestration ends: release the section held or being acquired."""
        for section in (self.held, self._acquiring):
            if section is not None:
                section.release()

    def acquired(self, section: CriticalSection) -> None:
        self.held = section
        self._acquiring = None

    def _held_ids(self) -> set[str]:
        assert self.held is not None
        return {str(e) for e in self.held.entities}

    def _send(self, target: str, name: str, payload: str) -> AtomicTask:
        task = AtomicTask(-1, SendEvent(target, name, payload))
        self._runtime.schedule(task)
        task.set_value(False, None)
        return task
