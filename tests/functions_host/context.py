"""The `context` argument as the worker builds it (`bindings/context.py`)."""

from __future__ import annotations

import secrets
import threading
import uuid
from typing import Any

from azure.functions import _abc

__all__ = ["InvocationContext", "new_context", "THREAD_LOCAL"]

# One process-wide threading.local, shared with the worker's log handler.
THREAD_LOCAL = threading.local()


class _TraceContext(_abc.TraceContext):
    def __init__(self, trace_parent: str) -> None:
        self._trace_parent = trace_parent

    @property
    def trace_state(self) -> str:
        return ""

    @property
    def trace_parent(self) -> str:
        return self._trace_parent

    @property
    def attributes(self) -> dict[str, str]:
        return {}


class _RetryContext(_abc.RetryContext):
    @property
    def retry_count(self) -> int:
        return 0

    @property
    def max_retry_count(self) -> int:
        return 0

    @property
    def exception(self) -> Any:
        return None


class InvocationContext(_abc.Context):
    """invocation_id, function_name, function_directory, trace, retry and thread-local storage."""

    def __init__(self, invocation_id: str, function_name: str, function_directory: str) -> None:
        self._invocation_id = invocation_id
        self._function_name = function_name
        self._function_directory = function_directory
        self._trace = _TraceContext(f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01")

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> Any:
        return THREAD_LOCAL

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return self._function_directory

    @property
    def trace_context(self) -> _TraceContext:
        return self._trace

    @property
    def retry_context(self) -> _RetryContext:
        return _RetryContext()


def new_context(function_name: str, function_directory: str) -> InvocationContext:
    """A context with a fresh invocation id (a GUID string, as the host sends)."""
    return InvocationContext(str(uuid.uuid4()), function_name, function_directory)
