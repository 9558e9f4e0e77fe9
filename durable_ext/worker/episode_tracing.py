"""An orchestration episode's OpenTelemetry spans (`tracing.py`): the episode's SERVER span, and
the spans of the tasks whose results it processed (activities and sub-orchestrations as CLIENT
spans from scheduling to result, durable timers as INTERNAL spans from creation to firing)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime

from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind

from ..orchestration.episode import EpisodeOutcome
from ..orchestration.history import (
    ExecutionStarted,
    HistoryEvent,
    OrchestrationStatus,
    SubOrchestrationInstanceCompleted,
    SubOrchestrationInstanceCreated,
    SubOrchestrationInstanceFailed,
    TaskCompleted,
    TaskFailed,
    TaskScheduled,
    TimerCreated,
    TimerFired,
    format_time,
)
from ..tracing import (
    EXECUTION_ID,
    FIRE_AT,
    INSTANCE_ID,
    NAME,
    STATUS,
    TASK_ID,
    TYPE,
    VERSION,
    Tracing,
    carrier_of,
    context_of,
    fail,
)

__all__ = ["episode_span", "finish_episode_span"]

_COMPLETIONS = (
    TaskCompleted,
    TaskFailed,
    SubOrchestrationInstanceCompleted,
    SubOrchestrationInstanceFailed,
    TimerFired,
)


@contextlib.contextmanager
def episode_span(
    tracing: Tracing, instance_id: str, started: ExecutionStarted | None
) -> Iterator[Span | None]:
    """The episode's `orchestration:{name}` SERVER span, in the trace its ExecutionStarted carries."""
    if not tracing.enabled or started is None:
        yield None
        return
    instance = started.orchestration_instance
    attributes = {
        TYPE: "orchestration",
        NAME: started.name,
        VERSION: started.version or None,
        INSTANCE_ID: instance_id,
        EXECUTION_ID: instance.execution_id if instance else None,
    }
    with tracing.span(
        f"orchestration:{started.name}",
        SpanKind.SERVER,
        parent=started.parent_trace_context,
        attributes=attributes,
    ) as span:
        yield span


def finish_episode_span(
    tracing: Tracing, span: Span | None, instance_id: str, outcome: EpisodeOutcome, now: datetime
) -> None:
    """Give the episode's messages its trace context, emit the spans of the tasks it saw finish,
    and record the orchestration's status when it ended."""
    if span is None:
        return
    outcome.trace_context = carrier_of(span)
    status = outcome.result.status
    if status.runtime_status.is_terminal:
        span.set_attribute(STATUS, status.name)
    if status in (OrchestrationStatus.Failed, OrchestrationStatus.Terminated):
        failure = outcome.result.failure
        fail(span, str(failure) if failure is not None else status.name)
    new = outcome.events[outcome.first_new_index :]
    finished = [e for e in new if isinstance(e, _COMPLETIONS)]
    if not finished:
        return
    scheduled = {
        e.event_id: e
        for e in outcome.events
        if isinstance(e, TaskScheduled | SubOrchestrationInstanceCreated | TimerCreated)
    }
    parent = context_of(span)
    name = outcome.started.name
    for event in finished:
        task_id = event.timer_id if isinstance(event, TimerFired) else event.task_scheduled_id
        origin = scheduled.get(task_id)
        if origin is not None:
            _task_span(tracing, parent, instance_id, name or "", origin, event, now)


def _task_span(
    tracing: Tracing,
    parent: Context,
    instance_id: str,
    orchestrator: str,
    origin: HistoryEvent,
    done: HistoryEvent,
    now: datetime,
) -> None:
    attributes: dict[str, object] = {INSTANCE_ID: instance_id, TASK_ID: origin.event_id}
    error = None
    if isinstance(done, TaskFailed | SubOrchestrationInstanceFailed):
        error = str(done.failure_details) if done.failure_details else done.reason or "failed"
    if isinstance(origin, TimerCreated):
        name, kind = f"orchestration:{orchestrator}:timer", SpanKind.INTERNAL
        attributes |= {TYPE: "timer", NAME: orchestrator}
        if origin.fire_at is not None:
            attributes[FIRE_AT] = format_time(origin.fire_at)
    elif isinstance(origin, TaskScheduled):
        name, kind = f"activity:{origin.name}", SpanKind.CLIENT
        attributes |= {TYPE: "activity", NAME: origin.name, VERSION: origin.version or None}
    else:
        assert isinstance(origin, SubOrchestrationInstanceCreated)
        name, kind = f"orchestration:{origin.name}", SpanKind.CLIENT
        attributes |= {TYPE: "orchestration", NAME: origin.name}
    tracing.emit(
        name,
        kind,
        parent=parent,
        attributes=attributes,
        start=origin.timestamp,
        end=now,
        error=error,
    )
