"""The telemetry a benchmarked durable_ext process emits, as a host would set it up.

- ``events`` (the default, as in Durable Functions): tracking events logged at INFO to a handler
  that formats each record and writes it to ``os.devnull`` (the cost a host's console or log file
  pays, without the disk);
- ``off``: the tracking events' logger at WARNING (host.json
  ``logging.logLevel."Host.Triggers.DurableTask": "Warning"``), so only failures are built;
- ``tracing``: ``events`` plus OpenTelemetry spans (``distributedTracingEnabled``, V2) into an SDK
  tracer provider whose batch processor hands them to an exporter that drops them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

from durable_ext.tracking import TRACKING_CATEGORY

__all__ = ["MODES", "OPTION", "configure"]

OPTION = "telemetry"
MODES = ("events", "off", "tracing")


def configure(mode: str) -> dict[str, Any]:
    """Set this process's telemetry up for `mode`; the WorkerOptions it needs."""
    if mode not in MODES:
        raise ValueError(f"{OPTION} must be one of {', '.join(MODES)}, got {mode!r}")
    logger = logging.getLogger(TRACKING_CATEGORY)
    logger.propagate = False
    if mode == "off":
        logger.setLevel(logging.WARNING)
        return {}
    handler = logging.StreamHandler(open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115 - lives as long as the process
    handler.setFormatter(logging.Formatter("[%(asctime)s] %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    if mode == "events":
        return {}
    _install_tracer_provider()
    return {"distributed_tracing": True}


def _install_tracer_provider() -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Dropped(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Dropped()))
    trace.set_tracer_provider(provider)
