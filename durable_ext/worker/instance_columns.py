"""The Instances columns that an episode's outcome or a stored history implies (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from ..orchestration.episode import EpisodeOutcome
from ..orchestration.history import (
    ExecutionCompleted,
    ExecutionResumed,
    ExecutionStarted,
    ExecutionSuspended,
    ExecutionTerminated,
    HistoryEvent,
    OrchestrationStatus,
)
from ..orchestration.status import OrchestrationRuntimeStatus
from ..storage.history_store import LoadedHistory
from ..storage.instance_store import NO_TAGS, InstanceColumns

__all__ = [
    "checkpoint_columns",
    "finished_columns",
    "last_completion",
    "running_columns",
    "started_event",
]

BlobUrls = Mapping[tuple[int, str], str]
"""URLs of the payload blobs of offloaded history columns, by (event index, column)."""


def checkpoint_columns(
    outcome: EpisodeOutcome, new_execution: bool, blob_urls: BlobUrls | None = None
) -> InstanceColumns:
    """The Instances merge of a checkpoint (DTFx `UpdateStateAsync`). A large Input or Output
    is the URL of the history row's blob (`blob_urls`), not another copy."""
    result = outcome.result
    now = outcome.events[-1].timestamp
    urls = blob_urls or {}
    columns = InstanceColumns(
        execution_id=outcome.execution_id,
        last_updated_time=now,
        runtime_status=result.status.runtime_status,
        custom_status=result.custom_status if result.custom_status is not None else "null",
    )
    first = outcome.first_new_index
    for index, event in enumerate(outcome.events[first:], start=first):
        if new_execution and isinstance(event, ExecutionStarted):
            columns = replace(columns, **_start_columns(event, index, urls))
        output = _event_output(event, index, urls)
        if output is not None:
            columns = replace(columns, output=output)
    if result.status.runtime_status.is_terminal:
        columns = replace(columns, completed_time=now)
    return columns


def running_columns(loaded: LoadedHistory) -> InstanceColumns:
    """The Instances row of a started, unfinished execution, from its history."""
    started = started_event(loaded.events)
    assert started is not None
    suspended = False
    output = None
    for index, event in enumerate(loaded.events):
        if isinstance(event, ExecutionSuspended | ExecutionResumed):
            suspended = isinstance(event, ExecutionSuspended)
            output = _event_output(event, index, loaded.blob_urls)
    status = (
        OrchestrationRuntimeStatus.Suspended if suspended else OrchestrationRuntimeStatus.Running
    )
    return InstanceColumns(
        **_start_columns(started, loaded.events.index(started), loaded.blob_urls),
        execution_id=loaded.execution_id,
        runtime_status=status,
        output=output,
        last_updated_time=loaded.events[-1].timestamp,
    )


def finished_columns(loaded: LoadedHistory) -> InstanceColumns:
    """The Instances row of a finished execution, from its history."""
    completed = last_completion(loaded.events)
    status = completed.orchestration_status or OrchestrationStatus.Completed
    index = len(loaded.events) - 1 - loaded.events[::-1].index(completed)
    columns = InstanceColumns(
        execution_id=loaded.execution_id,
        runtime_status=status.runtime_status,
        output=_event_output(completed, index, loaded.blob_urls),
        completed_time=completed.timestamp,
        last_updated_time=completed.timestamp,
    )
    started = started_event(loaded.events)
    if started is not None:
        start = _start_columns(started, loaded.events.index(started), loaded.blob_urls)
        columns = replace(columns, **start)
    return columns


def started_event(events: Iterable[HistoryEvent]) -> ExecutionStarted | None:
    """The ExecutionStarted of a history, if it has one."""
    return next((e for e in events if isinstance(e, ExecutionStarted)), None)


def last_completion(events: list[HistoryEvent]) -> ExecutionCompleted:
    """The last ExecutionCompleted of a finished history."""
    return next(e for e in reversed(events) if isinstance(e, ExecutionCompleted))


def _start_columns(started: ExecutionStarted, index: int, urls: BlobUrls) -> dict[str, Any]:
    """Instances columns (`InstanceColumns` fields) that come from an execution's
    ExecutionStarted event (at `index`)."""
    return {
        "name": started.name,
        "version": started.version or "",
        "input": urls.get((index, "Input"), started.input),
        "created_time": started.timestamp,
        "generation": started.generation or 0,
        "tags": started.tags if started.tags is not None else NO_TAGS,
        "scheduled_start_time": started.scheduled_start_time,
    }


def _event_output(event: HistoryEvent, index: int, urls: BlobUrls) -> str | None:
    """The Output column an event (at `index`) sets, as DTFx writes it; None for events that
    leave it alone. A completion's result (JSON; the raw reason of a termination) or its failure
    details as `{ErrorType}: {ErrorMessage}`; the raw reason of a termination, suspension or
    resumption."""
    if isinstance(event, ExecutionCompleted):
        if event.failure_details is not None:
            return str(event.failure_details)
        return urls.get((index, "Result"), event.result)
    if isinstance(event, ExecutionTerminated):
        return urls.get((index, "Input"), event.input or "")
    if isinstance(event, ExecutionSuspended | ExecutionResumed):
        return urls.get((index, "Reason"), event.reason or "")
    return None
