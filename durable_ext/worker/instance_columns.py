"""The Instances columns that an episode's outcome or a stored history implies (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from ..orchestration import codec
from ..orchestration.episode import EpisodeOutcome
from ..orchestration.history import (
    ExecutionCompleted,
    ExecutionResumed,
    ExecutionStarted,
    ExecutionSuspended,
    HistoryEvent,
    OrchestrationStatus,
)
from ..orchestration.status import OrchestrationRuntimeStatus
from ..storage.history_store import LoadedHistory
from ..storage.instance_store import InstanceColumns

__all__ = [
    "checkpoint_columns",
    "finished_columns",
    "last_completion",
    "running_columns",
    "started_event",
]


def checkpoint_columns(outcome: EpisodeOutcome, new_execution: bool) -> InstanceColumns:
    """The Instances merge of a checkpoint (DTFx `UpdateStateAsync`)."""
    result = outcome.result
    now = outcome.events[-1].timestamp
    columns = InstanceColumns(
        execution_id=outcome.execution_id,
        last_updated_time=now,
        runtime_status=result.status.runtime_status,
        custom_status=result.custom_status,
    )
    if new_execution:
        columns = replace(columns, **_start_columns(outcome.started))
    if result.status.runtime_status.is_terminal:
        columns = replace(
            columns, completed_time=now, output=_stored_output(result.status, result.output)
        )
    return columns


def running_columns(loaded: LoadedHistory) -> InstanceColumns:
    """The Instances row of a started, unfinished execution, from its history."""
    started = started_event(loaded.events)
    assert started is not None
    suspended = False
    for event in loaded.events:
        if isinstance(event, ExecutionSuspended | ExecutionResumed):
            suspended = isinstance(event, ExecutionSuspended)
    status = (
        OrchestrationRuntimeStatus.Suspended if suspended else OrchestrationRuntimeStatus.Running
    )
    return InstanceColumns(
        **_start_columns(started),
        execution_id=loaded.execution_id,
        runtime_status=status,
        last_updated_time=loaded.events[-1].timestamp,
    )


def finished_columns(loaded: LoadedHistory) -> InstanceColumns:
    """The Instances row of a finished execution, from its history."""
    completed = last_completion(loaded.events)
    status = completed.orchestration_status or OrchestrationStatus.Completed
    columns = InstanceColumns(
        execution_id=loaded.execution_id,
        runtime_status=status.runtime_status,
        output=_stored_output(status, completed.result),
        completed_time=completed.timestamp,
        last_updated_time=completed.timestamp,
    )
    started = started_event(loaded.events)
    if started is not None:
        columns = replace(columns, **_start_columns(started))
    return columns


def started_event(events: Iterable[HistoryEvent]) -> ExecutionStarted | None:
    """The ExecutionStarted of a history, if it has one."""
    return next((e for e in events if isinstance(e, ExecutionStarted)), None)


def last_completion(events: list[HistoryEvent]) -> ExecutionCompleted:
    """The last ExecutionCompleted of a finished history."""
    return next(e for e in reversed(events) if isinstance(e, ExecutionCompleted))


def _start_columns(started: ExecutionStarted) -> dict[str, Any]:
    """Instances columns (`InstanceColumns` fields) that come from an execution's
    ExecutionStarted event."""
    return {
        "name": started.name,
        "version": started.version or "",
        "input": started.input,
        "created_time": started.timestamp,
        "generation": started.generation or 0,
        "tags": started.tags,
        "scheduled_start_time": started.scheduled_start_time,
    }


def _stored_output(status: OrchestrationStatus, output: str | None) -> str | None:
    """The Output column: the JSON output, or the JSON-encoded reason of a termination."""
    return codec.encode(output or "") if status is OrchestrationStatus.Terminated else output
