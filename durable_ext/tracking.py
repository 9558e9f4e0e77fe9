"""Durable Functions' tracking events: one log record per lifecycle change, on the logger
`Host.Triggers.DurableTask`, with the extension's message texts and `prop__` fields.

Each record's message is the rendered .NET template (`{instanceId}: Function '{functionName}
({functionType})' scheduled. Reason: ... SequenceNumber: 12.`); its `extra` carries every template
value as `prop__<name>` (strings, booleans as `True`/`False`, None left out), the template as
`prop__{OriginalFormat}`, and `Category` and `LogLevel`, so an exporter that turns record
attributes into `customDimensions` (Azure Monitor's does) produces the rows the Durable Functions
queries expect. Replayed events are dropped unless `traceReplayEvents`; inputs, outputs, reasons
and errors are `(Redacted N characters)` unless `traceInputsAndOutputs`.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Mapping
from enum import StrEnum
from importlib.metadata import PackageNotFoundError, version
from typing import Any

__all__ = [
    "TRACKING_CATEGORY",
    "FunctionState",
    "FunctionType",
    "TrackingLog",
    "redact",
]

TRACKING_CATEGORY = "Host.Triggers.DurableTask"
"""The logger (and Application Insights category) of every tracking event."""

_logger = logging.getLogger(TRACKING_CATEGORY)
_sequence = itertools.count()
"""One counter per process, as the extension's (it restarts with the process)."""


def _extension_version() -> str:
    try:
        return version("durable-ext")
    except PackageNotFoundError:
        return "0+unknown"


_EXTENSION_VERSION = _extension_version()


class FunctionType(StrEnum):
    Activity = "Activity"
    Orchestrator = "Orchestrator"
    Entity = "Entity"


class FunctionState(StrEnum):
    """The extension's `FunctionState` values (the `state` field)."""

    Scheduled = "Scheduled"
    Started = "Started"
    Awaited = "Awaited"
    Listening = "Listening"
    Completed = "Completed"
    Terminated = "Terminated"
    Failed = "Failed"
    ExternalEventRaised = "ExternalEventRaised"
    ExternalEventDropped = "ExternalEventDropped"
    TimerExpired = "TimerExpired"
    Rewound = "Rewound"
    Suspended = "Suspended"


_PREFIX = "{instanceId}: Function '{functionName} ({functionType})'"
_SUFFIX = (
    ". HubName: {hubName}. AppName: {appName}. SlotName: {slotName}. "
    "ExtensionVersion: {extensionVersion}. SequenceNumber: {sequenceNumber}."
)
_TASK_SUFFIX = _SUFFIX + " TaskEventId: {taskEventId}"

SCHEDULED = (
    _PREFIX + " scheduled. Reason: {reason}. IsReplay: {isReplay}. State: {state}. "
    "RuntimeStatus: {runtimeStatus}" + _SUFFIX
)
STARTED = (
    _PREFIX + " started. IsReplay: {isReplay}. Input: {input}. State: {state}. "
    "RuntimeStatus: {runtimeStatus}" + _TASK_SUFFIX
)
AWAITED = _PREFIX + " awaited. IsReplay: {isReplay}. State: {state}" + _SUFFIX
LISTENING = (
    _PREFIX
    + " is waiting for input. Reason: {reason}. IsReplay: {isReplay}. State: {state}"
    + _SUFFIX
)
EVENT_RAISED = _PREFIX + " received a '{eventName}' event. State: {state}" + _SUFFIX
COMPLETED = (
    _PREFIX + " completed. ContinuedAsNew: {continuedAsNew}. IsReplay: {isReplay}. "
    "Output: {output}. State: {state}. RuntimeStatus: {runtimeStatus}" + _TASK_SUFFIX
)
TERMINATED = (
    _PREFIX
    + " was terminated. Reason: {reason}. State: {state}. RuntimeStatus: {runtimeStatus}"
    + _SUFFIX
)
FAILED = (
    _PREFIX + " failed with an error. Reason: {reason}. IsReplay: {isReplay}. State: {state}. "
    "RuntimeStatus: {runtimeStatus}" + _TASK_SUFFIX
)
TIMER_EXPIRED = (
    _PREFIX + " was resumed by a timer scheduled for '{expirationTime}'. IsReplay: {isReplay}. "
    "State: {state}" + _SUFFIX
)
EVENT_SAVED = (
    _PREFIX + " saved a '{eventName}' event to an in-memory queue. State: {state}" + _SUFFIX
)
REWOUND = _PREFIX + " was rewound. Reason: {reason}. State: {state}" + _SUFFIX
SUSPENDING = (
    "{instanceId}: Suspending function '{functionName} ({functionType})'. Reason: {reason}. "
    "State: {state}. RuntimeStatus: {runtimeStatus}" + _SUFFIX
)
RESUMING = SUSPENDING.replace("Suspending function", "Resuming function")
INFORMATION = "{details}. InstanceId: {instanceId}. Function: {functionName}" + _SUFFIX
ENTITY_RESPONSE = (
    _PREFIX + " received an entity response. OperationId: {operationId}. State: {state}" + _SUFFIX
)
OPERATION_COMPLETED = (
    _PREFIX + " completed '{operationName}' operation {operationId} in {duration}ms. "
    "IsReplay: {isReplay}. Input: {input}. Output: {output}" + _SUFFIX
)
OPERATION_FAILED = (
    _PREFIX + " failed '{operationName}' operation {operationId} after {duration}ms with "
    "exception {exception}. Input: {input}. IsReplay: {isReplay}" + _SUFFIX
)

_LEVEL_NAMES = {logging.INFO: "Information", logging.WARNING: "Warning", logging.ERROR: "Error"}


def redact(text: str | None) -> str:
    """`(Redacted N characters)`, N counted in UTF-16 code units as .NET counts a string."""
    length = len(text.encode("utf-16-le")) // 2 if text else 0
    return f"(Redacted {length} characters)"


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    return "(null)" if value is None else str(value)


class TrackingLog:
    """The tracking events of one task hub, filtered and redacted by the host.json settings.

    Events are built only when the logger is enabled for their level, so a host that does not
    listen pays one level check per event.
    """

    def __init__(
        self,
        hub_name: str,
        *,
        trace_inputs_and_outputs: bool = False,
        trace_replay_events: bool = False,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        self.hub_name = hub_name
        self.trace_inputs_and_outputs = trace_inputs_and_outputs
        self.trace_replay_events = trace_replay_events
        self._common = {
            "hubName": hub_name,
            "appName": env.get("WEBSITE_SITE_NAME", ""),
            "slotName": env.get("WEBSITE_SLOT_NAME", ""),
            "extensionVersion": _EXTENSION_VERSION,
        }

    def payload(self, text: str | None) -> str:
        """An input, output or reason as the settings allow it in a log."""
        if self.trace_inputs_and_outputs:
            return _show(text)
        return redact(text)

    def error(self, error_type: str, message: str | None, stack: str | None) -> str:
        """A failure as the settings allow it: type, message and stack; or, redacted, the type
        and the frames' locations only (a message may carry data; the extension's
        `SanitizeException` keeps the type and the stack trace)."""
        if self.trace_inputs_and_outputs:
            return f"{error_type}: {message or ''}\n{stack or ''}".rstrip()
        frames = [line for line in (stack or "").splitlines() if line.startswith('  File "')]
        return "\n".join([error_type, *frames])

    def wanted(self, level: int, is_replay: bool = False) -> bool:
        """Whether an event of this level and replay flag would be logged."""
        return (self.trace_replay_events or not is_replay) and _logger.isEnabledFor(level)

    # -- the events --------------------------------------------------------------------------
    def scheduled(
        self,
        instance_id: str,
        function_name: str,
        function_type: FunctionType,
        reason: str,
        is_replay: bool = False,
    ) -> None:
        self._emit(logging.INFO, SCHEDULED, instance_id, function_name, function_type, is_replay,
                   reason=reason, isReplay=is_replay, state=FunctionState.Scheduled,
                   runtimeStatus="Pending")  # fmt: skip

    def started(
        self,
        instance_id: str,
        function_name: str,
        function_type: FunctionType,
        input_json: str | None,
        is_replay: bool = False,
        task_event_id: int = -1,
    ) -> None:
        self._emit(logging.INFO, STARTED, instance_id, function_name, function_type, is_replay,
                   isReplay=is_replay, input=lambda: self.payload(input_json),
                   state=FunctionState.Started, runtimeStatus="Running",
                   taskEventId=task_event_id)  # fmt: skip

    def awaited(self, instance_id: str, function_name: str, is_replay: bool = False) -> None:
        self._emit(logging.INFO, AWAITED, instance_id, function_name, FunctionType.Orchestrator,
                   is_replay, isReplay=is_replay, state=FunctionState.Awaited)  # fmt: skip

    def listening(
        self, instance_id: str, function_name: str, reason: str, is_replay: bool = False
    ) -> None:
        self._emit(logging.INFO, LISTENING, instance_id, function_name, FunctionType.Orchestrator,
                   is_replay, reason=reason, isReplay=is_replay,
                   state=FunctionState.Listening)  # fmt: skip

    def event_raised(
        self, instance_id: str, function_name: str, event_name: str, is_replay: bool = False
    ) -> None:
        self._emit(logging.INFO, EVENT_RAISED, instance_id, function_name,
                   FunctionType.Orchestrator, is_replay, eventName=event_name,
                   state=FunctionState.ExternalEventRaised)  # fmt: skip

    def event_saved(
        self, instance_id: str, function_name: str, event_name: str, is_replay: bool = False
    ) -> None:
        self._emit(logging.INFO, EVENT_SAVED, instance_id, function_name,
                   FunctionType.Orchestrator, is_replay, eventName=event_name,
                   state=FunctionState.ExternalEventDropped)  # fmt: skip

    def completed(
        self,
        instance_id: str,
        function_name: str,
        function_type: FunctionType,
        output: str | None,
        *,
        continued_as_new: bool = False,
        is_replay: bool = False,
        task_event_id: int = -1,
        replayed_output: bool = False,
    ) -> None:
        shown = (lambda: "(replayed)") if replayed_output else (lambda: self.payload(output))
        self._emit(logging.INFO, COMPLETED, instance_id, function_name, function_type, is_replay,
                   continuedAsNew=continued_as_new, isReplay=is_replay, output=shown,
                   state=FunctionState.Completed, runtimeStatus="Completed",
                   taskEventId=task_event_id)  # fmt: skip

    def failed(
        self,
        instance_id: str,
        function_name: str,
        function_type: FunctionType,
        reason: str,
        *,
        is_replay: bool = False,
        task_event_id: int = -1,
    ) -> None:
        """`reason` is already shaped for the log (`error()` or `payload()`)."""
        self._emit(logging.ERROR, FAILED, instance_id, function_name, function_type, is_replay,
                   reason=reason, isReplay=is_replay, state=FunctionState.Failed,
                   runtimeStatus="Failed", taskEventId=task_event_id)  # fmt: skip

    def timer_expired(
        self, instance_id: str, function_name: str, fire_at: str, is_replay: bool = False
    ) -> None:
        self._emit(logging.INFO, TIMER_EXPIRED, instance_id, function_name,
                   FunctionType.Orchestrator, is_replay, expirationTime=fire_at,
                   isReplay=is_replay, state=FunctionState.TimerExpired)  # fmt: skip

    def terminated(self, instance_id: str, function_name: str, reason: str | None) -> None:
        self._control(logging.WARNING, TERMINATED, instance_id, function_name, reason,
                      FunctionState.Terminated, "Terminated")  # fmt: skip

    def rewound(self, instance_id: str, function_name: str, reason: str | None) -> None:
        self._control(logging.WARNING, REWOUND, instance_id, function_name, reason,
                      FunctionState.Rewound, None)  # fmt: skip

    def suspending(self, instance_id: str, function_name: str, reason: str | None) -> None:
        self._control(logging.INFO, SUSPENDING, instance_id, function_name, reason,
                      FunctionState.Suspended, "Suspended")  # fmt: skip

    def resuming(self, instance_id: str, function_name: str, reason: str | None) -> None:
        self._control(logging.INFO, RESUMING, instance_id, function_name, reason,
                      FunctionState.Scheduled, "Running")  # fmt: skip

    def entity_response(
        self, instance_id: str, function_name: str, operation_id: str, is_replay: bool = False
    ) -> None:
        self._emit(logging.INFO, ENTITY_RESPONSE, instance_id, function_name,
                   FunctionType.Orchestrator, is_replay, operationId=operation_id,
                   state=FunctionState.ExternalEventRaised)  # fmt: skip

    def operation_completed(
        self,
        instance_id: str,
        entity_name: str,
        operation: str,
        operation_id: str,
        duration_ms: float,
        input_json: str | None,
        output: str | None,
    ) -> None:
        """One entity operation ran (the batch's events carry the entity's state)."""
        self._emit(logging.INFO, OPERATION_COMPLETED, instance_id, entity_name,
                   FunctionType.Entity, False, operationName=operation, operationId=operation_id,
                   duration=round(duration_ms), isReplay=False,
                   input=lambda: self.payload(input_json),
                   output=lambda: self.payload(output))  # fmt: skip

    def operation_failed(
        self,
        instance_id: str,
        entity_name: str,
        operation: str,
        operation_id: str,
        duration_ms: float,
        input_json: str | None,
        exception: str,
    ) -> None:
        """One entity operation raised; `exception` is already shaped by `error()`."""
        self._emit(logging.ERROR, OPERATION_FAILED, instance_id, entity_name,
                   FunctionType.Entity, False, operationName=operation, operationId=operation_id,
                   duration=round(duration_ms), exception=exception,
                   input=lambda: self.payload(input_json), isReplay=False)  # fmt: skip

    def information(self, details: str, instance_id: str = "", function_name: str = "") -> None:
        """The extension's informational event (worker lifecycle, configuration)."""
        self._emit(logging.INFO, INFORMATION, instance_id, function_name, None, False,
                   details=details)  # fmt: skip

    # -- rendering ----------------------------------------------------------------------------
    def _control(
        self,
        level: int,
        template: str,
        instance_id: str,
        function_name: str,
        reason: str | None,
        state: FunctionState,
        runtime_status: str | None,
    ) -> None:
        """A client's control of an instance (terminate, rewind, suspend, resume)."""
        self._emit(level, template, instance_id, function_name, FunctionType.Orchestrator, False,
                   reason=lambda: self.payload(reason), state=state,
                   runtimeStatus=runtime_status)  # fmt: skip

    def _emit(
        self,
        level: int,
        template: str,
        instance_id: str,
        function_name: str,
        function_type: FunctionType | None,
        is_replay: bool,
        **values: Any,
    ) -> None:
        """Log one event if wanted; a callable value is computed only then (a redaction)."""
        if not self.wanted(level, is_replay):
            return
        fields: dict[str, Any] = {
            "instanceId": instance_id,
            "functionName": function_name,
            "functionType": function_type,
            **{name: value() if callable(value) else value for name, value in values.items()},
            **self._common,
            "sequenceNumber": next(_sequence),
        }
        shown = {name: _show(value) for name, value in fields.items()}
        extra = {f"prop__{name}": shown[name] for name, value in fields.items() if value is not None}
        extra["prop__{OriginalFormat}"] = template
        extra["Category"] = TRACKING_CATEGORY
        extra["LogLevel"] = _LEVEL_NAMES[level]
        _logger.log(level, template.format_map(shown), extra=extra)
