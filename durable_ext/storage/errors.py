"""One-line descriptions of storage failures for logs (the SDK's messages span many lines)."""

from __future__ import annotations

from azure.core.exceptions import HttpResponseError

__all__ = ["describe_storage_error"]


def describe_storage_error(error: BaseException) -> str:
    """`409 QueueNotFound`, or the exception type and the first line of its message."""
    if isinstance(error, HttpResponseError):
        code = getattr(error, "error_code", None) or (error.reason or "")
        return f"{error.status_code} {code}".strip()
    first_line = (str(error).strip().splitlines() or [""])[0]
    return f"{type(error).__name__}: {first_line[:200]}"
