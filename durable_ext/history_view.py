"""History as the Durable Functions status API shows it (`showHistory=true`)."""

from __future__ import annotations

from typing import Any

from .orchestration import codec
from .orchestration.history import (
    EventRaised,
    ExecutionCompleted,
    ExecutionStarted,
    ExecutionTerminated,
    HistoryEvent,
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
from .status import format_status_time

__all__ = ["history_view"]

_HIDDEN = (
    OrchestratorStarted,
    OrchestratorCompleted,
    TaskScheduled,
    SubOrchestrationInstanceCreated,
    TimerCreated,
)


def _json(text: str | None) -> Any:
    try:
        return codec.decode(text)
    except ValueError:
        return text


def history_view(events: list[HistoryEvent], show_output: bool) -> list[dict[str, Any]]:
    """Completed steps with their function names and scheduled times; results only on request."""
    scheduled = {
        e.event_id: e
        for e in events
        if isinstance(e, TaskScheduled | SubOrchestrationInstanceCreated)
    }
    out: list[dict[str, Any]] = []
    for event in events:
        if isinstance(event, _HIDDEN):
            continue
        item: dict[str, Any] = {"EventType": event.event_type.name}
        if isinstance(event, ExecutionStarted):
            item["FunctionName"] = event.name
            if show_output:
                item["Input"] = _json(event.input)
        elif isinstance(
            event,
            TaskCompleted
            | TaskFailed
            | SubOrchestrationInstanceCompleted
            | SubOrchestrationInstanceFailed,
        ):
            origin = scheduled.get(event.task_scheduled_id)
            if origin is not None:
                item["FunctionName"] = getattr(origin, "name", None)
                item["ScheduledTime"] = format_status_time(origin.timestamp)
            if isinstance(event, TaskCompleted | SubOrchestrationInstanceCompleted) and show_output:
                item["Result"] = _json(event.result)
            if isinstance(event, TaskFailed | SubOrchestrationInstanceFailed):
                item["Reason"] = event.reason
                if show_output:
                    item["Details"] = event.details
        elif isinstance(event, TimerFired):
            item["FireAt"] = format_status_time(event.fire_at)
        elif isinstance(event, EventRaised):
            item["Name"] = event.name
            if show_output:
                item["Input"] = _json(event.input)
        elif isinstance(event, ExecutionCompleted):
            item["OrchestrationStatus"] = (
                event.orchestration_status.name if event.orchestration_status else None
            )
            if show_output:
                item["Result"] = _json(event.result)
        elif isinstance(event, ExecutionTerminated):
            item["Reason"] = event.input
        item["Timestamp"] = format_status_time(event.timestamp)
        out.append(item)
    return out
