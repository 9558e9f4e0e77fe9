"""When an Instances row is stale, and the columns history implies (pure: no Azurite)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from durable_ext.orchestration.history import (
    ExecutionCompleted,
    ExecutionResumed,
    ExecutionStarted,
    ExecutionSuspended,
    HistoryEvent,
    OrchestrationInstance,
    OrchestrationStatus,
    OrchestratorStarted,
)
from durable_ext.orchestration.status import OrchestrationRuntimeStatus as Status
from durable_ext.storage.history_store import LoadedHistory
from durable_ext.storage.instance_store import InstanceRow
from durable_ext.worker.instance_columns import finished_columns, running_columns
from durable_ext.worker.instance_repair import finished_row_is_stale, started_row_is_stale

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _start() -> ExecutionStarted:
    return ExecutionStarted(
        timestamp=T0,
        orchestration_instance=OrchestrationInstance("i", "e1"),
        name="Flow",
        input='"in"',
        generation=2,
    )


def _history(*events: HistoryEvent) -> LoadedHistory:
    return LoadedHistory([OrchestratorStarted(timestamp=T0), _start(), *events], "etag", "e1")


def _row(execution_id: str | None, status: Status) -> InstanceRow:
    return InstanceRow(
        instance_id="i",
        execution_id=execution_id,
        name="Flow",
        version="",
        input=None,
        output=None,
        custom_status=None,
        runtime_status=status,
        created_time=T0,
        last_updated_time=T0,
        completed_time=None,
        scheduled_start_time=None,
        generation=0,
        tags=None,
    )


def _finished(status: OrchestrationStatus, result: str) -> LoadedHistory:
    done = T0 + timedelta(seconds=5)
    return _history(ExecutionCompleted(timestamp=done, orchestration_status=status, result=result))


def test_a_started_row_is_stale_while_pending_or_missing() -> None:
    started = _history()
    assert started_row_is_stale(started, None)
    assert started_row_is_stale(started, _row("e1", Status.Pending))
    assert not started_row_is_stale(started, _row("e1", Status.Running))
    unstarted = LoadedHistory([], None, None)
    assert not started_row_is_stale(unstarted, _row("e1", Status.Pending))


def test_a_finished_row_is_stale_when_missing_or_showing_another_status() -> None:
    failed = _finished(OrchestrationStatus.Failed, "boom")
    assert finished_row_is_stale(failed, None)
    assert finished_row_is_stale(failed, _row("e1", Status.Running))
    assert not finished_row_is_stale(failed, _row("e1", Status.Failed))


def test_a_row_of_another_execution_is_repaired_only_when_this_worker_wrote_it_late() -> None:
    completed = _finished(OrchestrationStatus.Completed, '"out"')
    restarted = _row("e2", Status.Pending)
    assert not finished_row_is_stale(completed, restarted)
    assert finished_row_is_stale(completed, restarted, stale_execution="e2")


def test_a_finished_row_comes_from_the_completion_and_the_start() -> None:
    columns = finished_columns(_finished(OrchestrationStatus.Terminated, "stop"))
    assert columns.runtime_status is Status.Terminated
    assert columns.output == "stop"  # a termination's raw reason, as DTFx stores it
    assert columns.completed_time == T0 + timedelta(seconds=5)
    assert (columns.execution_id, columns.name, columns.generation) == ("e1", "Flow", 2)
    assert columns.input == '"in"'


def test_a_running_row_follows_the_last_suspend_or_resume() -> None:
    later = T0 + timedelta(seconds=1)
    suspended = _history(ExecutionSuspended(timestamp=later))
    assert running_columns(suspended).runtime_status is Status.Suspended
    assert running_columns(suspended).last_updated_time == later
    resumed = replace(suspended, events=[*suspended.events, ExecutionResumed(timestamp=later)])
    assert running_columns(resumed).runtime_status is Status.Running
