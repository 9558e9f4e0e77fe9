"""Exceptions the engine raises into orchestrator code or reports as orchestration failures."""

from __future__ import annotations

import json

from .history import FailureDetails

__all__ = [
    "TaskFailedError",
    "NonDeterministicOrchestrationError",
    "OrchestratorUsageError",
    "UnknownFunctionError",
]


class TaskFailedError(Exception):
    """An activity or sub-orchestration failed.

    `str(error)` reads like the Python SDK's message (`"{reason} \\n {details}"`, where details is a
    JSON object with `Message`), so code that parses it keeps working; new code reads
    `failure_details` (error type, message, stack trace, inner failure) instead.
    """

    def __init__(self, reason: str, failure_details: FailureDetails) -> None:
        details = json.dumps(
            {"Message": failure_details.error_message, "ErrorType": failure_details.error_type}
        )
        super().__init__(f"{reason} \n {details}")
        self.reason = reason
        self.failure_details = failure_details


class NonDeterministicOrchestrationError(Exception):
    """The orchestrator code no longer does what its history says it did."""


class OrchestratorUsageError(Exception):
    """The orchestrator function misused the API (yielded a non-task, is not a generator, ...)."""


class UnknownFunctionError(LookupError):
    """No function is registered under that name."""
