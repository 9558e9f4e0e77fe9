"""DTFx history events: the one vocabulary the engine, the storage and the wire speak.

Every event is a small dataclass named as in DTFx (`DurableTask.Core.History`). `to_fields()` turns an
event into a dict keyed by DTFx field names (PascalCase) holding plain Python values: complex members
(OrchestrationInstance, ParentInstance, FailureDetails, Tags) become nested dicts, times stay aware
`datetime` objects. `event_from_fields()` reverses it and also accepts the shapes storage hands back:
complex members as JSON strings, times as ISO strings, `EventType` as number or name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any, ClassVar

from .status import OrchestrationRuntimeStatus

__all__ = [
    "EventType",
    "OrchestrationStatus",
    "OrchestrationInstance",
    "ParentInstance",
    "FailureDetails",
    "HistoryEvent",
    "ExecutionStarted",
    "ExecutionCompleted",
    "ExecutionFailed",
    "ExecutionTerminated",
    "TaskScheduled",
    "TaskCompleted",
    "TaskFailed",
    "SubOrchestrationInstanceCreated",
    "SubOrchestrationInstanceCompleted",
    "SubOrchestrationInstanceFailed",
    "TimerCreated",
    "TimerFired",
    "OrchestratorStarted",
    "OrchestratorCompleted",
    "EventSent",
    "EventRaised",
    "ContinueAsNew",
    "GenericEvent",
    "HistoryState",
    "ExecutionSuspended",
    "ExecutionResumed",
    "ExecutionRewound",
    "EVENT_CLASSES",
    "event_from_fields",
    "parse_time",
    "format_time",
]


class EventType(IntEnum):
    """`DurableTask.Core.History.EventType` with its numeric values."""

    ExecutionStarted = 0
    ExecutionCompleted = 1
    ExecutionFailed = 2
    ExecutionTerminated = 3
    TaskScheduled = 4
    TaskCompleted = 5
    TaskFailed = 6
    SubOrchestrationInstanceCreated = 7
    SubOrchestrationInstanceCompleted = 8
    SubOrchestrationInstanceFailed = 9
    TimerCreated = 10
    TimerFired = 11
    OrchestratorStarted = 12
    OrchestratorCompleted = 13
    EventSent = 14
    EventRaised = 15
    ContinueAsNew = 16
    GenericEvent = 17
    HistoryState = 18
    ExecutionSuspended = 19
    ExecutionResumed = 20
    ExecutionRewound = 21


class OrchestrationStatus(IntEnum):
    """`DurableTask.Core.OrchestrationStatus`: the wire form (numbers in history events) of
    `OrchestrationRuntimeStatus`, the one status vocabulary (names in tables and the API)."""

    Running = 0
    Completed = 1
    ContinuedAsNew = 2
    Failed = 3
    Canceled = 4
    Terminated = 5
    Pending = 6
    Suspended = 7

    @property
    def runtime_status(self) -> OrchestrationRuntimeStatus:
        """The same status in the API's vocabulary."""
        return OrchestrationRuntimeStatus[self.name]


def parse_time(value: Any) -> datetime | None:
    """An aware UTC datetime from a datetime or an ISO-8601 string (up to 7 fractional digits)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    text = str(value)
    dot = text.find(".")
    if dot != -1:  # fromisoformat takes at most 6 fractional digits
        end = dot + 1
        while end < len(text) and text[end].isdigit():
            end += 1
        if end - dot > 7:
            text = text[: dot + 7] + text[end:]
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def format_time(value: datetime) -> str:
    """ISO-8601 with 7 fractional digits and `Z`, as .NET writes `DateTime` in queue JSON."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def _load_json_member(value: Any) -> Any:
    if isinstance(value, str):
        return json.loads(value) if value else None
    return value


@dataclass(slots=True)
class OrchestrationInstance:
    """`{InstanceId, ExecutionId}`; an empty ExecutionId means "whatever execution is current"."""

    instance_id: str
    execution_id: str | None = None

    def to_fields(self) -> dict[str, Any]:
        return {"InstanceId": self.instance_id, "ExecutionId": self.execution_id}

    @classmethod
    def from_fields(cls, value: Any) -> OrchestrationInstance | None:
        data = _load_json_member(value)
        if not data:
            return None
        return cls(data.get("InstanceId") or "", data.get("ExecutionId") or None)


@dataclass(slots=True)
class ParentInstance:
    """The parent of a sub-orchestration, with the id of its SubOrchestrationInstanceCreated event."""

    name: str | None
    version: str | None
    orchestration_instance: OrchestrationInstance
    task_schedule_id: int

    def to_fields(self) -> dict[str, Any]:
        return {
            "Name": self.name,
            "Version": self.version,
            "OrchestrationInstance": self.orchestration_instance.to_fields(),
            "TaskScheduleId": self.task_schedule_id,
        }

    @classmethod
    def from_fields(cls, value: Any) -> ParentInstance | None:
        data = _load_json_member(value)
        if not data:
            return None
        instance = OrchestrationInstance.from_fields(data.get("OrchestrationInstance"))
        return cls(
            data.get("Name"),
            data.get("Version"),
            instance or OrchestrationInstance(""),
            int(data.get("TaskScheduleId", -1)),
        )


@dataclass(slots=True)
class FailureDetails:
    """Why a task or an orchestration failed (DTFx `FailureDetails`)."""

    error_type: str
    error_message: str
    stack_trace: str | None = None
    inner_failure: FailureDetails | None = None
    is_non_retriable: bool = False

    def __str__(self) -> str:
        return f"{self.error_type}: {self.error_message}"

    def to_fields(self) -> dict[str, Any]:
        return {
            "ErrorType": self.error_type,
            "ErrorMessage": self.error_message,
            "StackTrace": self.stack_trace,
            "InnerFailure": self.inner_failure.to_fields() if self.inner_failure else None,
            "IsNonRetriable": self.is_non_retriable,
        }

    @classmethod
    def from_fields(cls, value: Any) -> FailureDetails | None:
        data = _load_json_member(value)
        if not data:
            return None
        return cls(
            data.get("ErrorType") or "",
            data.get("ErrorMessage") or "",
            data.get("StackTrace"),
            cls.from_fields(data.get("InnerFailure")),
            bool(data.get("IsNonRetriable", False)),
        )


def _time_field() -> Any:
    return field(default=None, metadata={"codec": "time"})


def _member(codec: str) -> Any:
    return field(default=None, metadata={"codec": codec})


_DECODERS: dict[str, Any] = {
    "time": parse_time,
    "instance": OrchestrationInstance.from_fields,
    "parent": ParentInstance.from_fields,
    "failure": FailureDetails.from_fields,
    "json": _load_json_member,
    "tags": lambda v: (
        None
        if (loaded := _load_json_member(v)) is None
        else {k: str(x) for k, x in loaded.items() if k != "$type"}
    ),
    "status": lambda v: (
        None
        if v is None
        else (OrchestrationStatus[v] if isinstance(v, str) else OrchestrationStatus(int(v)))
    ),
}


def _pascal(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


_BASE_WIRE = {
    "EventType": "event_type",
    "EventId": "event_id",
    "IsPlayed": "is_played",
    "Timestamp": "timestamp",
}
_SDK_DEFAULTS = frozenset({"Name", "InstanceId", "TaskScheduledId", "Reason", "Details", "Input"})


@dataclass(slots=True, kw_only=True)
class HistoryEvent:
    """Fields every DTFx history event carries."""

    EVENT_TYPE: ClassVar[EventType]

    event_id: int = -1
    timestamp: datetime = field(default_factory=lambda: datetime.now(UTC))
    is_played: bool = False

    @property
    def event_type(self) -> EventType:
        return self.EVENT_TYPE

    def to_fields(self) -> dict[str, Any]:
        """The event as a dict of DTFx field names (complex members as nested dicts)."""
        out: dict[str, Any] = {
            "EventType": int(self.EVENT_TYPE),
            "EventId": self.event_id,
            "IsPlayed": self.is_played,
            "Timestamp": self.timestamp,
        }
        for attr, wire, codec in type(self)._wire():
            value = getattr(self, attr)
            if value is not None and codec in ("instance", "parent", "failure"):
                value = value.to_fields()
            out[wire] = value
        return out

    def __getattr__(self, name: str) -> Any:
        """The SDK's attribute names: DTFx's PascalCase fields (`Name`, `Input`, `Result`,
        `TaskScheduledId`...), None for those its HistoryEvent gives every event."""
        if name in _BASE_WIRE:
            return getattr(self, _BASE_WIRE[name])
        for attr, wire, _ in type(self)._wire():
            if wire == name:
                return getattr(self, attr)
        if name in _SDK_DEFAULTS:
            return None
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @classmethod
    def _wire(cls) -> tuple[tuple[str, str, str | None], ...]:
        spec = cls.__dict__.get("_WIRE_CACHE")
        if spec is None:
            base = {"event_id", "timestamp", "is_played"}
            spec = tuple(
                (f.name, _pascal(f.name), f.metadata.get("codec"))
                for f in fields(cls)
                if f.name not in base
            )
            type.__setattr__(cls, "_WIRE_CACHE", spec)
        return spec


def _event(event_type: EventType) -> Any:
    def decorate(cls: type[HistoryEvent]) -> type[HistoryEvent]:
        cls.EVENT_TYPE = event_type
        return cls

    return decorate


@_event(EventType.ExecutionStarted)
@dataclass(slots=True, kw_only=True)
class ExecutionStarted(HistoryEvent):
    orchestration_instance: OrchestrationInstance | None = _member("instance")
    parent_instance: ParentInstance | None = _member("parent")
    name: str | None = None
    version: str | None = None
    input: str | None = None
    tags: dict[str, str] | None = _member("tags")
    correlation: str | None = None
    scheduled_start_time: datetime | None = _time_field()
    generation: int | None = None
    parent_trace_context: dict[str, Any] | None = _member("json")
    """DTFx `DistributedTraceContext` (`TraceParent`, `TraceState`): the orchestration's trace."""


@_event(EventType.ExecutionCompleted)
@dataclass(slots=True, kw_only=True)
class ExecutionCompleted(HistoryEvent):
    orchestration_status: OrchestrationStatus | None = _member("status")
    result: str | None = None
    failure_details: FailureDetails | None = _member("failure")


@_event(EventType.ExecutionFailed)
@dataclass(slots=True, kw_only=True)
class ExecutionFailed(HistoryEvent):
    """Declared by DTFx, never written."""


@_event(EventType.ExecutionTerminated)
@dataclass(slots=True, kw_only=True)
class ExecutionTerminated(HistoryEvent):
    input: str | None = None


@_event(EventType.TaskScheduled)
@dataclass(slots=True, kw_only=True)
class TaskScheduled(HistoryEvent):
    name: str | None = None
    version: str | None = None
    input: str | None = None
    tags: dict[str, str] | None = _member("tags")
    parent_trace_context: dict[str, Any] | None = _member("json")


@_event(EventType.TaskCompleted)
@dataclass(slots=True, kw_only=True)
class TaskCompleted(HistoryEvent):
    task_scheduled_id: int = -1
    result: str | None = None


@_event(EventType.TaskFailed)
@dataclass(slots=True, kw_only=True)
class TaskFailed(HistoryEvent):
    task_scheduled_id: int = -1
    reason: str | None = None
    details: str | None = None
    failure_details: FailureDetails | None = _member("failure")


@_event(EventType.SubOrchestrationInstanceCreated)
@dataclass(slots=True, kw_only=True)
class SubOrchestrationInstanceCreated(HistoryEvent):
    name: str | None = None
    version: str | None = None
    instance_id: str | None = None
    input: str | None = None


@_event(EventType.SubOrchestrationInstanceCompleted)
@dataclass(slots=True, kw_only=True)
class SubOrchestrationInstanceCompleted(HistoryEvent):
    task_scheduled_id: int = -1
    result: str | None = None


@_event(EventType.SubOrchestrationInstanceFailed)
@dataclass(slots=True, kw_only=True)
class SubOrchestrationInstanceFailed(HistoryEvent):
    task_scheduled_id: int = -1
    reason: str | None = None
    details: str | None = None
    failure_details: FailureDetails | None = _member("failure")


@_event(EventType.TimerCreated)
@dataclass(slots=True, kw_only=True)
class TimerCreated(HistoryEvent):
    fire_at: datetime | None = _time_field()


@_event(EventType.TimerFired)
@dataclass(slots=True, kw_only=True)
class TimerFired(HistoryEvent):
    timer_id: int = -1
    fire_at: datetime | None = _time_field()


@_event(EventType.OrchestratorStarted)
@dataclass(slots=True, kw_only=True)
class OrchestratorStarted(HistoryEvent):
    """Start of an episode; its timestamp is the orchestration's `current_utc_datetime`."""


@_event(EventType.OrchestratorCompleted)
@dataclass(slots=True, kw_only=True)
class OrchestratorCompleted(HistoryEvent):
    """End of an episode."""


@_event(EventType.EventSent)
@dataclass(slots=True, kw_only=True)
class EventSent(HistoryEvent):
    instance_id: str | None = None
    name: str | None = None
    input: str | None = None


@_event(EventType.EventRaised)
@dataclass(slots=True, kw_only=True)
class EventRaised(HistoryEvent):
    name: str | None = None
    input: str | None = None
    parent_trace_context: dict[str, Any] | None = _member("json")


@_event(EventType.ContinueAsNew)
@dataclass(slots=True, kw_only=True)
class ContinueAsNew(HistoryEvent):
    orchestration_status: OrchestrationStatus | None = _member("status")
    result: str | None = None
    failure_details: FailureDetails | None = _member("failure")


@_event(EventType.GenericEvent)
@dataclass(slots=True, kw_only=True)
class GenericEvent(HistoryEvent):
    data: str | None = None


@_event(EventType.HistoryState)
@dataclass(slots=True, kw_only=True)
class HistoryState(HistoryEvent):
    state: Any = _member("json")


@_event(EventType.ExecutionSuspended)
@dataclass(slots=True, kw_only=True)
class ExecutionSuspended(HistoryEvent):
    reason: str | None = None


@_event(EventType.ExecutionResumed)
@dataclass(slots=True, kw_only=True)
class ExecutionResumed(HistoryEvent):
    reason: str | None = None


@_event(EventType.ExecutionRewound)
@dataclass(slots=True, kw_only=True)
class ExecutionRewound(HistoryEvent):
    reason: str | None = None
    parent_execution_id: str | None = None
    instance_id: str | None = None


EVENT_CLASSES: dict[EventType, type[HistoryEvent]] = {
    cls.EVENT_TYPE: cls
    for cls in (
        ExecutionStarted,
        ExecutionCompleted,
        ExecutionFailed,
        ExecutionTerminated,
        TaskScheduled,
        TaskCompleted,
        TaskFailed,
        SubOrchestrationInstanceCreated,
        SubOrchestrationInstanceCompleted,
        SubOrchestrationInstanceFailed,
        TimerCreated,
        TimerFired,
        OrchestratorStarted,
        OrchestratorCompleted,
        EventSent,
        EventRaised,
        ContinueAsNew,
        GenericEvent,
        HistoryState,
        ExecutionSuspended,
        ExecutionResumed,
        ExecutionRewound,
    )
}


def event_from_fields(data: dict[str, Any]) -> HistoryEvent:
    """Build an event from DTFx field names; unknown fields are ignored, missing ones default."""
    raw_type = data["EventType"]
    event_type = EventType[raw_type] if isinstance(raw_type, str) else EventType(int(raw_type))
    cls = EVENT_CLASSES[event_type]
    kwargs: dict[str, Any] = {}
    for attr, wire, codec in cls._wire():
        value = data.get(wire)
        if value is not None and codec is not None:
            value = _DECODERS[codec](value)
        if value is not None:
            kwargs[attr] = value
    event_id = data.get("EventId")
    timestamp = parse_time(data.get("Timestamp") or data.get("_Timestamp"))
    return cls(
        event_id=-1 if event_id is None else int(event_id),
        timestamp=timestamp or datetime.now(UTC),
        is_played=bool(data.get("IsPlayed", False)),
        **kwargs,
    )
