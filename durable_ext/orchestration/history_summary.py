"""What the dispatcher asks of an execution's history, kept up to date event by event.

Built once when a history is loaded, then extended with each episode's new events, so an episode of
a cached instance costs time in proportion to its new events, not to the whole history (a 10,000-step
chain would otherwise rescan 10,000 events per step).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from .history import (
    EventRaised,
    ExecutionCompleted,
    ExecutionStarted,
    HistoryEvent,
    OrchestratorStarted,
)

__all__ = ["HistorySummary", "raised_key"]


@dataclass(slots=True)
class HistorySummary:
    """The start, the end, the scheduled event ids, the latest timestamp and the episode count of
    one execution's history."""

    started: ExecutionStarted | None = None
    completed: ExecutionCompleted | None = None
    scheduled: set[int] = field(default_factory=set)
    """EventIds of scheduling events (tasks, timers, sub-orchestrations, sent events)."""
    latest: datetime | None = None
    """The latest event timestamp (the orchestration clock never goes back before it)."""
    episodes: int = 0
    """OrchestratorStarted events: the episode number of the last checkpoint."""
    raised: set[tuple[str, datetime, int]] = field(default_factory=set)
    """(name, timestamp, hash of input) of every EventRaised: a client's raise carries the
    microsecond it was raised at, so a copy of an applied one is recognised (`has_raised`)."""

    @classmethod
    def of(cls, events: Iterable[HistoryEvent]) -> HistorySummary:
        summary = cls()
        summary.add(events)
        return summary

    def add(self, events: Iterable[HistoryEvent]) -> None:
        """Take in events appended to the history."""
        for event in events:
            if event.event_id >= 0:
                self.scheduled.add(event.event_id)
            if self.latest is None or event.timestamp > self.latest:
                self.latest = event.timestamp
            if isinstance(event, OrchestratorStarted):
                self.episodes += 1
            elif isinstance(event, ExecutionStarted):
                if self.started is None:
                    self.started = event
            elif isinstance(event, ExecutionCompleted) and self.completed is None:
                self.completed = event
            elif isinstance(event, EventRaised):
                self.raised.add(raised_key(event))

    def has_raised(self, event: EventRaised) -> bool:
        """Whether history holds this EventRaised: same name and input, raised at the same
        microsecond."""
        return raised_key(event) in self.raised

    @property
    def finished(self) -> bool:
        return self.completed is not None


def raised_key(event: EventRaised) -> tuple[str, datetime, int]:
    """What tells one raised event from another (a copy of a message has the same)."""
    return (event.name or "", event.timestamp, hash(event.input or ""))
