"""What an atomic task asks for when it is scheduled, and how it becomes a history event.

Replay matches each scheduling event in history against the action the code produced under the same
sequence id: same kind, and for activities, sub-orchestrations and sent events the same name
(case-insensitive), as DTFx does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .history import (
    EventSent,
    HistoryEvent,
    SubOrchestrationInstanceCreated,
    TaskScheduled,
    TimerCreated,
)

__all__ = [
    "Action",
    "ScheduleActivity",
    "CreateTimer",
    "CreateSubOrchestration",
    "SendEvent",
    "WaitForEvent",
    "describe_scheduling_event",
]


class Action:
    """Base of the scheduling actions; `WaitForEvent` is the one that writes no history."""

    def to_event(self, event_id: int, timestamp: datetime) -> HistoryEvent:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def matches(self, event: HistoryEvent) -> bool:
        raise NotImplementedError


def _same_name(a: str | None, b: str | None) -> bool:
    return (a or "").lower() == (b or "").lower()


@dataclass(slots=True)
class ScheduleActivity(Action):
    name: str
    input: str | None
    version: str = ""

    def to_event(self, event_id: int, timestamp: datetime) -> HistoryEvent:
        return TaskScheduled(
            event_id=event_id,
            timestamp=timestamp,
            name=self.name,
            version=self.version,
            input=self.input,
        )

    def describe(self) -> str:
        return f"activity '{self.name}'"

    def matches(self, event: HistoryEvent) -> bool:
        return isinstance(event, TaskScheduled) and _same_name(event.name, self.name)


@dataclass(slots=True)
class CreateTimer(Action):
    fire_at: datetime

    def to_event(self, event_id: int, timestamp: datetime) -> HistoryEvent:
        return TimerCreated(event_id=event_id, timestamp=timestamp, fire_at=self.fire_at)

    def describe(self) -> str:
        return f"a timer (fires {self.fire_at.isoformat()})"

    def matches(self, event: HistoryEvent) -> bool:
        return isinstance(event, TimerCreated)


@dataclass(slots=True)
class CreateSubOrchestration(Action):
    name: str
    instance_id: str
    input: str | None
    version: str = ""

    def to_event(self, event_id: int, timestamp: datetime) -> HistoryEvent:
        return SubOrchestrationInstanceCreated(
            event_id=event_id,
            timestamp=timestamp,
            name=self.name,
            version=self.version,
            instance_id=self.instance_id,
            input=self.input,
        )

    def describe(self) -> str:
        return f"sub-orchestration '{self.name}'"

    def matches(self, event: HistoryEvent) -> bool:
        return isinstance(event, SubOrchestrationInstanceCreated) and _same_name(
            event.name, self.name
        )


@dataclass(slots=True)
class SendEvent(Action):
    instance_id: str
    name: str
    input: str | None

    def to_event(self, event_id: int, timestamp: datetime) -> HistoryEvent:
        return EventSent(
            event_id=event_id,
            timestamp=timestamp,
            instance_id=self.instance_id,
            name=self.name,
            input=self.input,
        )

    def describe(self) -> str:
        return f"event '{self.name}' sent to '{self.instance_id}'"

    def matches(self, event: HistoryEvent) -> bool:
        return isinstance(event, EventSent) and _same_name(event.name, self.name)


@dataclass(slots=True)
class WaitForEvent(Action):
    name: str

    def describe(self) -> str:
        return f"a wait for event '{self.name}'"


def describe_scheduling_event(event: HistoryEvent) -> str:
    """Words for a scheduling event, matching `Action.describe`."""
    if isinstance(event, TaskScheduled):
        return f"activity '{event.name}'"
    if isinstance(event, TimerCreated):
        fire_at = event.fire_at.isoformat() if event.fire_at else "?"
        return f"a timer (fires {fire_at})"
    if isinstance(event, SubOrchestrationInstanceCreated):
        return f"sub-orchestration '{event.name}'"
    if isinstance(event, EventSent):
        return f"event '{event.name}' sent to '{event.instance_id}'"
    return event.event_type.name
