"""OpenTelemetry spans for orchestrations, activities, sub-orchestrations, timers and events, named
and attributed as Durable Functions' distributed tracing V2 (DTFx `TraceHelper`), through the
`opentelemetry-api` package only: an app that installs an SDK and exporter (or Azure Monitor) sees
them; without one they cost nothing.

The W3C trace context travels inside the messages as DTFx carries it, in the history events'
`ParentTraceContext` member (`{"TraceParent": "00-…", "TraceState": …}`) of ExecutionStarted,
TaskScheduled and EventRaised, so a trace begun by an HTTP starter links the orchestration, its
activities and its sub-orchestrations across processes and restarts.

One difference from DTFx, which emits a single orchestration span per execution when it completes,
with a span id fixed on the first episode (that needs an SDK's internals): here every episode is
its own `orchestration:{name}` SERVER span, all in the orchestration's trace. The CLIENT span of an
activity or sub-orchestration is emitted when its result is processed, backdated to when it was
scheduled; its SERVER span is a child of the episode that scheduled it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context, get_current
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

__all__ = [
    "TRACER_NAME",
    "Tracing",
    "carrier_of",
    "context_of",
    "current_context",
    "fail",
    "nanoseconds",
]

TRACER_NAME = "durable_ext"
"""The tracer (instrumentation scope) of every span."""

_PROPAGATOR = TraceContextTextMapPropagator()

TYPE = "durabletask.type"
NAME = "durabletask.task.name"
VERSION = "durabletask.task.version"
INSTANCE_ID = "durabletask.task.instance_id"
EXECUTION_ID = "durabletask.task.execution_id"
STATUS = "durabletask.task.status"
TASK_ID = "durabletask.task.task_id"
TARGET_INSTANCE_ID = "durabletask.event.target_instance_id"
FIRE_AT = "durabletask.fire_at"


def nanoseconds(moment: datetime) -> int:
    """An aware datetime as OpenTelemetry's time (ns since the epoch)."""
    return int(moment.timestamp() * 1_000_000_000)


def _parent(carrier: Mapping[str, Any] | None) -> Context:
    """The context a DTFx `ParentTraceContext` names; an empty one (a new trace) without it."""
    if not carrier or not carrier.get("TraceParent"):
        return Context()
    headers = {"traceparent": str(carrier["TraceParent"])}
    if carrier.get("TraceState"):
        headers["tracestate"] = str(carrier["TraceState"])
    return _PROPAGATOR.extract(headers, context=Context())


def carrier_of(span: Span) -> dict[str, Any] | None:
    """A span's context as DTFx's `ParentTraceContext` (None for a span that is not recorded)."""
    span_context = span.get_span_context()
    if not span_context.is_valid:
        return None
    headers: dict[str, str] = {}
    _PROPAGATOR.inject(headers, context=trace.set_span_in_context(span))
    return {"TraceParent": headers.get("traceparent"), "TraceState": headers.get("tracestate")}


def _attributes(values: Mapping[str, Any]) -> dict[str, str]:
    """Attribute values as strings (Azure Monitor slices them as such), None left out."""
    return {key: str(value) for key, value in values.items() if value is not None}


class Tracing:
    """The spans of one task hub, on or off (`tracing.distributedTracingEnabled` + `version` V2).

    Off, no span is created, whatever tracer provider the process has.
    """

    def __init__(self, enabled: bool = False) -> None:
        self.enabled = enabled

    @contextlib.contextmanager
    def span(
        self,
        name: str,
        kind: SpanKind,
        *,
        parent: Mapping[str, Any] | None | Context = None,
        attributes: Mapping[str, Any] | None = None,
        start: datetime | None = None,
    ) -> Iterator[Span | None]:
        """A span for the block (None when tracing is off). `parent`: a `ParentTraceContext`
        carried in a message, or a Context (the caller's own for a client call)."""
        if not self.enabled:
            yield None
            return
        context = parent if isinstance(parent, Context) else _parent(parent)
        tracer = trace.get_tracer(TRACER_NAME)
        span = tracer.start_span(
            name,
            context=context,
            kind=kind,
            attributes=_attributes(attributes or {}),
            start_time=nanoseconds(start) if start is not None else None,
        )
        try:
            with trace.use_span(span, end_on_exit=False, record_exception=True):
                yield span
        finally:
            span.end()

    def emit(
        self,
        name: str,
        kind: SpanKind,
        *,
        parent: Context,
        attributes: Mapping[str, Any],
        start: datetime,
        end: datetime,
        error: str | None = None,
    ) -> None:
        """A span for something already over (an activity's round trip, a timer's wait)."""
        if not self.enabled:
            return
        tracer = trace.get_tracer(TRACER_NAME)
        span = tracer.start_span(
            name,
            context=parent,
            kind=kind,
            attributes=_attributes(attributes),
            start_time=nanoseconds(start),
        )
        if error is not None:
            span.set_status(Status(StatusCode.ERROR, error))
        span.end(end_time=max(nanoseconds(end), nanoseconds(start)))


def fail(span: Span | None, description: str) -> None:
    """Mark a span failed (no-op without one)."""
    if span is not None:
        span.set_status(Status(StatusCode.ERROR, description))


def current_context() -> Context:
    """The caller's context (a client call's parent: the HTTP starter's span, if any)."""
    return get_current()


def context_of(span: Span | None) -> Context:
    """The context whose parent is `span` (an empty one without it)."""
    return trace.set_span_in_context(span, Context()) if span is not None else Context()
