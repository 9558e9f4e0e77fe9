"""Fixtures for the monitoring tests: the tracking events a run logs, captured in memory."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from durable_ext.tracking import TRACKING_CATEGORY
from tests.worker.conftest import runtime  # noqa: F401 - re-exported fixture


class TrackingRecords(logging.Handler):
    """Every tracking event logged while installed, in order."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def of(self, instance_id: str) -> list[logging.LogRecord]:
        """The events of one instance (its activities' included: they carry its id)."""
        return [r for r in self.records if getattr(r, "prop__instanceId", None) == instance_id]

    def steps(self, instance_id: str) -> list[tuple[str, str, str]]:
        """(functionName, functionType, state) of one instance's events, in order (an entity
        operation's event has no state: "")."""
        return [
            (r.prop__functionName, r.prop__functionType, getattr(r, "prop__state", ""))  # type: ignore[attr-defined]
            for r in self.of(instance_id)
        ]


@pytest.fixture
def tracked() -> Iterator[TrackingRecords]:
    """Capture tracking events at INFO for the test, then put the logger back as it was."""
    logger = logging.getLogger(TRACKING_CATEGORY)
    handler = TrackingRecords()
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


_EXPORTER = InMemorySpanExporter()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """The spans this test's code ends (one SDK provider for the whole process, as an app has)."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        trace.set_tracer_provider(provider)
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()
