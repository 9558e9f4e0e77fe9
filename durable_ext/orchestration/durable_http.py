"""Durable HTTP: `call_http`'s request and token source, and the task that polls a 202 durably.

A request runs as the built-in activity `BuiltIn::HttpActivity` (the worker runs it:
worker/http_activity.py). Its input is the request in the Durable Functions extension's JSON,
`[{"method", "uri", "content", "headers", "tokenSource", "asynchronousPatternEnabled"}]`, its
result the response `{"statusCode", "headers", "content"}`. A 202 answer with a `Location` header
is polled as the extension polls it: a durable timer (`Retry-After` seconds, else
`httpSettings.defaultAsyncRequestSleepTimeMilliseconds`), then a GET of the `Location` with the
same headers (minus `x-functions-key`) and token source, until the status is another one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from .actions import ScheduleActivity
from .tasks import (
    AtomicTask,
    LongTimerTask,
    TaskBase,
    TaskState,
    TimerTask,
    WhenAllTask,
    new_timer,
)

if TYPE_CHECKING:
    from .runtime import OrchestrationRuntime

__all__ = [
    "HTTP_ACTIVITY_NAME",
    "TokenSource",
    "ManagedIdentityTokenSource",
    "DurableHttpRequest",
    "DurableHttpTask",
    "response_header",
]

HTTP_ACTIVITY_NAME = "BuiltIn::HttpActivity"
_MANAGED_IDENTITY = "AzureManagedIdentity"


class TokenSource:
    """Where the built-in HTTP activity gets the bearer token it adds to a request."""

    def to_json(self) -> dict[str, Any]:
        raise NotImplementedError


class ManagedIdentityTokenSource(TokenSource):
    """A token for `resource` (e.g. `https://management.core.windows.net/`) from the app's
    identity, through azure-identity's DefaultAzureCredential (the managed identity in Azure)."""

    def __init__(self, resource: str) -> None:
        super().__init__()
        self._resource = resource
        self._kind = _MANAGED_IDENTITY

    @property
    def resource(self) -> str:
        """The Microsoft Entra resource id of the API being called."""
        return self._resource

    def to_json(self) -> dict[str, Any]:
        return {"resource": self._resource, "kind": self._kind}


@dataclass(frozen=True, slots=True)
class DurableHttpRequest:
    """A durable HTTP request, shaped as the SDK's `models.DurableHttpRequest`."""

    method: str
    uri: str
    content: str | None = None
    headers: dict[str, str] | None = None
    token_source: TokenSource | None = None

    def to_json(self) -> dict[str, Any]:
        """`{"method", "uri", "content", "headers"[, "tokenSource"]}`, as the SDK sends it."""
        out: dict[str, Any] = {
            "method": self.method,
            "uri": self.uri,
            "content": self.content,
            "headers": self.headers,
        }
        source = self.token_source
        if source is not None:
            out["tokenSource"] = source.to_json() if hasattr(source, "to_json") else source
        return out


def response_header(response: dict[str, Any], name: str) -> str | None:
    """A header of a durable HTTP response (names compare case-insensitively; the first value
    of a repeated header)."""
    for key, value in (response.get("headers") or {}).items():
        if key.lower() == name.lower():
            if isinstance(value, list):
                return str(value[0]) if value else None
            return str(value)
    return None


def _activity(request: dict[str, Any]) -> AtomicTask:
    return AtomicTask(-1, ScheduleActivity(HTTP_ACTIVITY_NAME, json.dumps([request])))


def _poll_request(request: dict[str, Any], location: str) -> dict[str, Any]:
    headers = {
        k: v for k, v in (request.get("headers") or {}).items() if k.lower() != "x-functions-key"
    }
    return {**request, "method": "GET", "uri": location, "content": None, "headers": headers}


def _retry_after(response: dict[str, Any], now: datetime) -> timedelta | None:
    value = response_header(response, "Retry-After")
    if value is None:
        return None
    if value.strip().isdigit():
        return timedelta(seconds=int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when - now, timedelta(0))


class DurableHttpTask(WhenAllTask):
    """`call_http`: the request, then while the answer is a 202 with a Location (and the
    asynchronous pattern is on), a durable timer and a GET of the Location; the value is the last
    response. A request that cannot be made (connection refused, DNS, timeout) fails the task."""

    def __init__(self, request: dict[str, Any], runtime: OrchestrationRuntime) -> None:
        self._request = request
        self._runtime = runtime
        self._next = request
        super().__init__([_activity(request)])

    def try_set_value(self, child: TaskBase) -> None:
        if child.state is TaskState.FAILED:
            self.set_value(True, child.result)
            return
        if isinstance(child, TimerTask | LongTimerTask):
            self._append_scheduled(_activity(self._next), self._runtime)
            return
        response = child.result
        location = response_header(response, "Location") if isinstance(response, dict) else None
        polling = self._request.get("asynchronousPatternEnabled", True)
        if not (polling and location and response.get("statusCode") == 202):
            self.set_value(False, response)
            return
        now = self._runtime.info.current_utc_datetime
        delay = _retry_after(response, now)
        if delay is None:
            delay = self._runtime.options.http_async_sleep
        self._next = _poll_request(self._request, location)
        self._append_scheduled(new_timer(self._runtime, now + delay), self._runtime)
