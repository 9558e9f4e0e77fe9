"""How a failure is recorded: the one builder of `FailureDetails` and `TaskFailed` that the
executor, the worker and the in-memory test harness share, so they report a failure alike."""

from __future__ import annotations

import traceback
from datetime import datetime

from .errors import TaskFailedError, UnknownFunctionError
from .history import FailureDetails, TaskFailed

__all__ = [
    "activity_failed",
    "failure_details",
    "missing_function",
    "orchestration_failure",
    "orchestration_failure_text",
]


def failure_details(exc: BaseException) -> FailureDetails:
    """FailureDetails of an exception: its type name, message (the type name when empty),
    stack trace, and a TaskFailedError's inner failure. A missing function has no stack trace
    (it is the engine's finding, not a line of user code)."""
    inner = exc.failure_details if isinstance(exc, TaskFailedError) else None
    message = exc.reason if isinstance(exc, TaskFailedError) else str(exc)
    trace = (
        None if isinstance(exc, UnknownFunctionError) else "".join(traceback.format_exception(exc))
    )
    return FailureDetails(
        error_type=type(exc).__name__,
        error_message=message or type(exc).__name__,
        stack_trace=trace,
        inner_failure=inner,
    )


def missing_function(kind: str, name: str) -> UnknownFunctionError:
    """The error for a function that is not registered (`kind`: "Activity", "Orchestrator")."""
    return UnknownFunctionError(f"{kind} function '{name}' does not exist.")


def activity_failed(scheduled_id: int, name: str, exc: BaseException, now: datetime) -> TaskFailed:
    """The TaskFailed of activity `name` (scheduled as event `scheduled_id`) that raised `exc`."""
    details = failure_details(exc)
    return TaskFailed(
        timestamp=now,
        task_scheduled_id=scheduled_id,
        reason=f"Activity function '{name}' failed: {details.error_message}",
        details=details.stack_trace,
        failure_details=details,
    )


def orchestration_failure_text(name: str | None, message: str) -> str:
    """The message of orchestration `name` that failed with `message` (the SDK's wording)."""
    return f"Orchestrator function '{name}' failed: {message}"


def orchestration_failure(name: str | None, exc: BaseException) -> FailureDetails:
    """FailureDetails of orchestration `name` that ended with `exc`."""
    details = failure_details(exc)
    details.error_message = orchestration_failure_text(name, details.error_message)
    return details
