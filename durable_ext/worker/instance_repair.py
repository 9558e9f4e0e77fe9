"""Bringing a missing or stale Instances row back in line with history.

History is the truth; the Instances row is merged after it (checkpoint step 3), so a crash between
the two, a failed merge or a merge that lands late leaves the row behind or wrong. Each repair
reads the row, decides from history whether it is stale (pure predicates below) and merges the
columns history implies (`instance_columns`).
"""

from __future__ import annotations

import logging

from ..orchestration.history import ExecutionCompleted, OrchestrationStatus
from ..orchestration.status import OrchestrationRuntimeStatus
from ..storage.history_store import LoadedHistory
from ..storage.instance_store import InstanceRow
from ..storage.task_hub import TaskHub
from .instance_columns import finished_columns, last_completion, running_columns, started_event

__all__ = [
    "finished_row_is_stale",
    "repair_finished_row",
    "repair_started_row",
    "started_row_is_stale",
    "undo_late_merge",
]

log = logging.getLogger("durable_ext.orchestrations")


def started_row_is_stale(loaded: LoadedHistory, row: InstanceRow | None) -> bool:
    """A started execution's row that still says Pending (or is missing): the first checkpoint
    wrote history and died before its Instances merge."""
    if started_event(loaded.events) is None:
        return False
    return row is None or row.runtime_status is OrchestrationRuntimeStatus.Pending


def finished_row_is_stale(
    loaded: LoadedHistory, row: InstanceRow | None, stale_execution: str | None = None
) -> bool:
    """A finished execution's row that is missing or shows another status. A row of another
    execution is a client's restart and left alone, unless it is `stale_execution` (one this
    worker has just written late, over the newer one)."""
    if row is None:
        return True
    completed = last_completion(loaded.events)
    status = completed.orchestration_status or OrchestrationStatus.Completed
    if row.execution_id == loaded.execution_id:
        return row.runtime_status is not status.runtime_status
    return row.execution_id == stale_execution


async def repair_started_row(hub: TaskHub, instance_id: str, loaded: LoadedHistory) -> None:
    """A redelivered start of a running instance: bring a row its first checkpoint left Pending
    up to date."""
    row = await hub.instances.get(instance_id, fetch_payloads=False)
    if not started_row_is_stale(loaded, row):
        return
    log.warning("Repairing the Instances row of %s from its history", instance_id)
    await hub.instances.merge(instance_id, running_columns(loaded))


async def repair_finished_row(
    hub: TaskHub, instance_id: str, loaded: LoadedHistory, stale_execution: str | None = None
) -> None:
    """Rebuild a finished instance's row from history when it is missing or stale
    (`finished_row_is_stale`)."""
    row = await hub.instances.get(instance_id, fetch_payloads=False)
    if not finished_row_is_stale(loaded, row, stale_execution):
        return
    log.warning("Repairing the Instances row of %s from its history", instance_id)
    await hub.instances.merge(instance_id, finished_columns(loaded))


async def undo_late_merge(
    hub: TaskHub, instance_id: str, etag: str, execution_id: str | None
) -> None:
    """An Instances merge that landed late (the worker stalled after its history write, or lost
    the partition meanwhile) may have overwritten what a newer owner wrote after newer
    checkpoints. If the history moved on past `etag`, rebuild the row from it: a finished
    instance's whole row; a newer execution's start columns and status. (Within the same running
    execution the newer owner's next merge, at most `instance_status_refresh` after its last,
    puts back a newer custom status.)"""
    loaded = await hub.history.load(instance_id)
    if loaded.etag == etag:
        return
    log.warning("%s: a late Instances merge may be stale; checking the row", instance_id)
    if any(isinstance(e, ExecutionCompleted) for e in loaded.events):
        await repair_finished_row(hub, instance_id, loaded, stale_execution=execution_id)
    elif loaded.execution_id != execution_id and started_event(loaded.events) is not None:
        row = await hub.instances.get(instance_id, fetch_payloads=False)
        if row is not None and row.execution_id == execution_id:
            await hub.instances.merge(instance_id, running_columns(loaded))
