"""Application Insights: the tracking events, the engine's logs and its spans, exported through
`azure-monitor-opentelemetry` (the optional extra `durable-ext[azure-monitor]`) when
`APPLICATIONINSIGHTS_CONNECTION_STRING` is set.

Only our own loggers are exported (`Host.Triggers.DurableTask` and `durable_ext`, plus the
loggers named in `DURABLE_EXT_APPLICATIONINSIGHTS_LOGGERS`), from every thread: the Functions host
forwards a worker's logs only while an invocation runs, and the engine works in a thread of its
own. Azure Monitor is configured at most once per process, and never when the Python worker (or
the app) already did (`PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY`, `PYTHON_ENABLE_OPENTELEMETRY`,
or an OpenTelemetry SDK logger provider already installed): then our loggers are only connected to
the handler it installed. OTel `service.name` is `WEBSITE_SITE_NAME`, so `cloud_RoleName` is the
tracking events' `appName`.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Mapping
from enum import StrEnum

from .tracking import TRACKING_CATEGORY

__all__ = [
    "CONNECTION_STRING_SETTING",
    "EXTRA",
    "LOGGERS_SETTING",
    "AzureMonitorExport",
    "export_to_azure_monitor",
]

CONNECTION_STRING_SETTING = "APPLICATIONINSIGHTS_CONNECTION_STRING"
LOGGERS_SETTING = "DURABLE_EXT_APPLICATIONINSIGHTS_LOGGERS"
"""Comma-separated names of the app's own loggers to export as well (`root`: every logger)."""
EXTRA = "durable-ext[azure-monitor]"
OWN_LOGGERS = (TRACKING_CATEGORY, "durable_ext")
WORKER_SETTINGS = ("PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY", "PYTHON_ENABLE_OPENTELEMETRY")
"""The Python worker's switches: either means it (or the app) configures OpenTelemetry."""
WORKER_LOGGER_SETTING = "PYTHON_APPLICATIONINSIGHTS_LOGGER_NAME"
"""The logger the worker's Azure Monitor handler is on (default: the root logger)."""
INSTRUMENTATIONS = (
    "azure_sdk", "django", "fastapi", "flask", "httpx", "httpx2", "psycopg2", "requests", "urllib",
    "urllib3",
)  # fmt: skip
"""The distro's automatic instrumentations, all off: a library does not instrument its app (and
the Azure SDK's would trace every storage call the engine makes)."""

_log = logging.getLogger("durable_ext.azure_monitor")
_lock = threading.Lock()
_outcome: AzureMonitorExport | None = None
"""What the first call in this process did (later calls repeat nothing)."""


class AzureMonitorExport(StrEnum):
    """What `export_to_azure_monitor` did."""

    OFF = "off"
    """No connection string: nothing exported."""
    CONFIGURED = "configured"
    """We configured Azure Monitor; our loggers and the global tracer provider export."""
    CONNECTED = "connected"
    """The worker or the app had configured OpenTelemetry: our loggers reach its handler."""
    NO_HANDLER = "no-handler"
    """The worker or the app configures OpenTelemetry, but no handler of its was found."""
    MISSING_EXTRA = "missing-extra"
    """The connection string is set but the extra is not installed (one warning said so)."""
    FAILED = "failed"
    """configure_azure_monitor raised (one warning said so); the engine runs without export."""


def export_to_azure_monitor(environ: Mapping[str, str] | None = None) -> AzureMonitorExport:
    """Export our logs and spans to Application Insights if `APPLICATIONINSIGHTS_CONNECTION_STRING`
    is set; once per process (the hosts call it at engine start). Never raises."""
    global _outcome
    env = os.environ if environ is None else environ
    if not env.get(CONNECTION_STRING_SETTING, "").strip():
        return AzureMonitorExport.OFF
    with _lock:
        if _outcome is None:
            _outcome = _export(env)
        return _outcome


def _export(env: Mapping[str, str]) -> AzureMonitorExport:
    loggers = _loggers(env)
    if any(_is_true(env.get(name)) for name in WORKER_SETTINGS):
        return _connect(loggers, env)
    try:
        from azure.monitor.opentelemetry import configure_azure_monitor
        from opentelemetry._logs import get_logger_provider
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk.resources import Resource
    except ImportError as exc:
        _log.warning(
            "%s is set but Application Insights export needs the extra %s (%s): "
            "the engine runs, its logs and spans are not exported",
            CONNECTION_STRING_SETTING, EXTRA, exc,
        )  # fmt: skip
        return AzureMonitorExport.MISSING_EXTRA
    if isinstance(get_logger_provider(), LoggerProvider):  # the app configured it already
        return _connect(loggers, env)
    site = env.get("WEBSITE_SITE_NAME", "").strip()
    try:
        configure_azure_monitor(
            connection_string=env[CONNECTION_STRING_SETTING].strip(),
            logger_name=TRACKING_CATEGORY,
            resource=Resource.create({"service.name": site} if site else {}),
            enable_live_metrics=False,
            enable_performance_counters=False,
            instrumentation_options={name: {"enabled": False} for name in INSTRUMENTATIONS},
        )
    except Exception as exc:  # noqa: BLE001 - telemetry must never stop the engine
        _log.warning("Application Insights export is off: configuring it failed: %r", exc)
        return AzureMonitorExport.FAILED
    _attach(_otel_handlers(logging.getLogger(TRACKING_CATEGORY)), loggers)
    _log.info("Exporting durable_ext's logs and spans to Application Insights")
    return AzureMonitorExport.CONFIGURED


def _connect(loggers: list[logging.Logger], env: Mapping[str, str]) -> AzureMonitorExport:
    """Someone else configured OpenTelemetry: make our loggers reach its handler."""
    name = env.get(WORKER_LOGGER_SETTING, "")
    handlers = _otel_handlers(_logger(name))
    if not handlers:
        _log.warning(
            "OpenTelemetry is configured by the worker or the app, but logger %r has no "
            "OpenTelemetry handler: durable_ext's logs are not exported",
            name or "root",
        )
        return AzureMonitorExport.NO_HANDLER
    _attach(handlers, loggers)
    return AzureMonitorExport.CONNECTED


def _loggers(env: Mapping[str, str]) -> list[logging.Logger]:
    """Ours and the ones the setting names, ancestors first (so a child that already reaches
    the handler through an ancestor gets no second one)."""
    asked = (name.strip() for name in env.get(LOGGERS_SETTING, "").split(","))
    names = {"" if name == "root" else name for name in (*OWN_LOGGERS, *asked) if name}
    ordered = sorted(names, key=lambda name: (name.count(".") if name else -1, name))
    return [_logger(name) for name in ordered]


def _logger(name: str) -> logging.Logger:
    return logging.getLogger(name) if name and name != "root" else logging.getLogger()


def _otel_handlers(logger: logging.Logger) -> list[logging.Handler]:
    """OpenTelemetry's logging handlers on `logger` (the class moved between releases)."""
    return [
        h
        for h in logger.handlers
        if type(h).__name__ == "LoggingHandler" and type(h).__module__.startswith("opentelemetry")
    ]


def _attach(handlers: Iterable[logging.Handler], loggers: list[logging.Logger]) -> None:
    """Each logger reaches each handler exactly once: added where it is missing (`loggers`
    come ancestors first), taken off a logger that also reaches it through an ancestor."""
    for handler in handlers:
        for logger in loggers:
            if not _reaches(logger, handler):
                logger.addHandler(handler)
        for logger in loggers:
            parent = logger.parent if logger.propagate else None
            if handler in logger.handlers and parent is not None and _reaches(parent, handler):
                logger.removeHandler(handler)


def _reaches(logger: logging.Logger, handler: logging.Handler) -> bool:
    """A record logged on `logger` gets to `handler` already (on it or an ancestor it
    propagates to)."""
    current: logging.Logger | None = logger
    while current is not None:
        if handler in current.handlers:
            return True
        if not current.propagate:
            return False
        current = current.parent
    return False


def _is_true(value: str | None) -> bool:
    return (value or "").strip().lower() in ("true", "1")
