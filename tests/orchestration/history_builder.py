"""Hand-built histories for engine unit tests."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from durable_ext.orchestration.history import (
    EventRaised,
    ExecutionStarted,
    FailureDetails,
    HistoryEvent,
    OrchestrationInstance,
    OrchestratorCompleted,
    OrchestratorStarted,
    SubOrchestrationInstanceCompleted,
    SubOrchestrationInstanceCreated,
    SubOrchestrationInstanceFailed,
    TaskCompleted,
    TaskFailed,
    TaskScheduled,
    TimerCreated,
    TimerFired,
)

START = datetime(2024, 1, 1, tzinfo=UTC)


class HistoryBuilder:
    """Appends DTFx events with a clock that moves one second per episode."""

    def __init__(
        self,
        name: str = "orch",
        input_: Any = None,
        instance_id: str = "inst",
        start: datetime = START,
    ) -> None:
        self.now = start
        self.events: list[HistoryEvent] = [
            OrchestratorStarted(timestamp=self.now),
            ExecutionStarted(
                timestamp=self.now,
                name=name,
                input=json.dumps(input_),
                orchestration_instance=OrchestrationInstance(instance_id, "exec1"),
            ),
        ]

    def episode(self, advance: timedelta = timedelta(seconds=1)) -> HistoryBuilder:
        self.events.append(OrchestratorCompleted(timestamp=self.now))
        self.now += advance
        self.events.append(OrchestratorStarted(timestamp=self.now))
        return self

    def scheduled(self, event_id: int, name: str, input_: Any = None) -> HistoryBuilder:
        self.events.append(
            TaskScheduled(
                event_id=event_id, timestamp=self.now, name=name, input=json.dumps(input_)
            )
        )
        return self

    def completed(self, task_id: int, result: Any) -> HistoryBuilder:
        self.events.append(
            TaskCompleted(timestamp=self.now, task_scheduled_id=task_id, result=json.dumps(result))
        )
        return self

    def failed(self, task_id: int, message: str) -> HistoryBuilder:
        self.events.append(
            TaskFailed(
                timestamp=self.now,
                task_scheduled_id=task_id,
                reason=message,
                failure_details=FailureDetails("ValueError", message),
            )
        )
        return self

    def timer(self, event_id: int, fire_at: datetime) -> HistoryBuilder:
        self.events.append(TimerCreated(event_id=event_id, timestamp=self.now, fire_at=fire_at))
        return self

    def fired(self, timer_id: int, fire_at: datetime) -> HistoryBuilder:
        self.events.append(TimerFired(timestamp=self.now, timer_id=timer_id, fire_at=fire_at))
        return self

    def raised(self, name: str, value: Any) -> HistoryBuilder:
        self.events.append(EventRaised(timestamp=self.now, name=name, input=json.dumps(value)))
        return self

    def sub_created(self, event_id: int, name: str, instance_id: str) -> HistoryBuilder:
        self.events.append(
            SubOrchestrationInstanceCreated(
                event_id=event_id,
                timestamp=self.now,
                name=name,
                instance_id=instance_id,
            )
        )
        return self

    def sub_completed(self, task_id: int, result: Any) -> HistoryBuilder:
        self.events.append(
            SubOrchestrationInstanceCompleted(
                timestamp=self.now, task_scheduled_id=task_id, result=json.dumps(result)
            )
        )
        return self

    def sub_failed(self, task_id: int, message: str) -> HistoryBuilder:
        self.events.append(
            SubOrchestrationInstanceFailed(
                timestamp=self.now,
                task_scheduled_id=task_id,
                reason=f"Orchestrator function 'child' failed: {message}",
                failure_details=FailureDetails("ValueError", message),
            )
        )
        return self

    def split(self) -> tuple[list[HistoryEvent], list[HistoryEvent]]:
        """(past, new): the last episode's events are the new ones."""
        last = max(i for i, e in enumerate(self.events) if isinstance(e, OrchestratorStarted))
        return self.events[:last], self.events[last:]
