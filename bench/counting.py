"""Counting the storage requests durable_ext makes (nothing is mocked: every request still goes out).

`counting_connection` gives a `StorageConnection` whose client options carry an `ActorCounters`
(a `RequestWatcher`): its blob, queue and table clients get the counter's hooks, and its lean REST
transports (queue messages, table rows) report to it through their request observer. The Azure
Storage SDKs build their pipelines from a fixed policy list and ignore azure-core's
``per_call_policies``, so the counter goes in through the public ``raw_request_hook`` /
``raw_response_hook`` keywords instead: both SDKs run those hooks after their retry policy, once per
HTTP attempt, so retries are counted as the requests they are.

Requests are also told apart by who made them: the bench marks its client calls with the `ACTOR`
context variable (``ACTOR.set("client")`` inside the coroutine that makes them); everything else —
the worker's dispatchers, leases and polling, in tasks of their own — counts as ``worker``.

Each request is put in a category (``queue.send``, ``table.batch``, ``blob.lease`` ...) from its
method and URL, with the seconds from the hook on the way out to the hook on the way back. Queue
receives that come back empty are counted apart (``queue.receive.empty``): they are polling, not
work.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from durable_ext.storage.client_options import RequestObserver, StorageClientOptions
from durable_ext.storage.connection import StorageConnection

__all__ = [
    "ACTOR",
    "ActorCounters",
    "counting_connection",
    "RequestCounter",
    "RequestStats",
    "classify",
]

ACTOR: ContextVar[str] = ContextVar("bench_storage_actor", default="worker")
"""Who makes the requests of the current task: ``worker`` (default) or ``client``."""

_STARTED = "bench.request_started"
_CATEGORY = "bench.request_category"
_MAX_SAMPLES = 50_000


def classify(service: str, method: str, url: str) -> str:
    """The category of one request, e.g. ``queue.receive`` or ``table.batch``."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    method = method.upper()
    if service == "queue":
        if path.endswith("/messages"):
            return {"POST": "queue.send", "GET": "queue.receive", "DELETE": "queue.clear"}.get(
                method, "queue.other"
            )
        if "/messages/" in path:
            return {"DELETE": "queue.delete", "PUT": "queue.update"}.get(method, "queue.other")
        return "queue.admin"
    if service == "table":
        if path.endswith("/$batch"):
            return "table.batch"
        if path.endswith("/Tables") or "/Tables(" in path:
            return "table.admin"
        last = path.rsplit("/", 1)[-1]
        if method == "GET":
            return "table.get" if "PartitionKey=" in last else "table.query"
        if method in ("PATCH", "MERGE"):
            return "table.merge"
        if method == "PUT":
            return "table.update"
        if method == "POST":
            return "table.insert"
        if method == "DELETE":
            return "table.delete"
        return "table.other"
    if service == "blob":
        if "comp=lease" in parts.query:
            return "blob.lease"
        return {
            "PUT": "blob.put",
            "GET": "blob.get",
            "HEAD": "blob.get",
            "DELETE": "blob.delete",
        }.get(method, "blob.other")
    return f"{service}.other"


@dataclass(slots=True)
class RequestStats:
    """Requests of one category: how many, response bytes, and durations (the first 50,000)."""

    count: int = 0
    response_bytes: int = 0
    seconds: list[float] = field(default_factory=list)

    def add(self, seconds: float | None, response_bytes: int) -> None:
        self.count += 1
        self.response_bytes += response_bytes
        if seconds is not None and len(self.seconds) < _MAX_SAMPLES:
            self.seconds.append(seconds)


class RequestCounter:
    """Counts requests per category."""

    def __init__(self) -> None:
        self.stats: dict[str, RequestStats] = {}

    def reset(self) -> None:
        self.stats = {}

    def add(self, category: str, seconds: float | None, response_bytes: int) -> None:
        self.stats.setdefault(category, RequestStats()).add(seconds, response_bytes)

    def total(self, include_empty_receives: bool = True) -> int:
        return sum(
            s.count
            for category, s in self.stats.items()
            if include_empty_receives or category != "queue.receive.empty"
        )

    def counts(self) -> dict[str, int]:
        return {category: s.count for category, s in sorted(self.stats.items())}

    def response_bytes(self) -> dict[str, int]:
        return {category: s.response_bytes for category, s in sorted(self.stats.items())}

    def durations(self) -> dict[str, list[float]]:
        return {category: list(s.seconds) for category, s in sorted(self.stats.items())}


class ActorCounters:
    """One `RequestCounter` per actor (see `ACTOR`); `hooks(service)` gives the client keywords
    that feed them."""

    def __init__(self) -> None:
        self.by_actor: dict[str, RequestCounter] = {}

    def __getitem__(self, actor: str) -> RequestCounter:
        return self.by_actor.setdefault(actor, RequestCounter())

    def reset(self) -> None:
        self.by_actor = {}

    def sdk_hooks(self, service: str) -> dict[str, Any]:
        """Hooks for an SDK client of `service` (a `RequestWatcher`)."""
        def on_request(request: Any) -> None:
            http = request.http_request
            request.context[_CATEGORY] = classify(service, http.method, http.url)
            request.context[_STARTED] = time.perf_counter()

        def on_response(response: Any) -> None:
            context = response.context
            category = context.get(_CATEGORY) or classify(
                service, response.http_request.method, response.http_request.url
            )
            started = context.get(_STARTED)
            elapsed = time.perf_counter() - started if started is not None else None
            if category == "queue.receive" and not _has_messages(response):
                category = "queue.receive.empty"
            self[ACTOR.get()].add(category, elapsed, _response_bytes(response))

        return {"raw_request_hook": on_request, "raw_response_hook": on_response}

    def rest_observer(self, service: str) -> RequestObserver:
        """The same counting for the engine's lean REST transport (see durable_ext.storage.rest)."""

        def observe(method: str, url: str, status: int, seconds: float, body: bytes) -> None:
            category = classify(service, method, url)
            if category == "queue.receive" and b"<QueueMessage>" not in body:
                category = "queue.receive.empty"
            self[ACTOR.get()].add(category, seconds, len(body))

        return observe


def _response_bytes(response: Any) -> int:
    """The response body's size: Content-Length, else the loaded body, else 0 (streamed)."""
    length = response.http_response.headers.get("Content-Length")
    if length is not None and length.isdigit():
        return int(length)
    try:
        return len(response.http_response.body())
    except Exception:  # noqa: BLE001 - a streamed body that is not loaded yet
        return 0


def _has_messages(response: Any) -> bool:
    try:
        body: bytes = response.http_response.body()
    except Exception:  # noqa: BLE001 - a streamed body cannot be peeked; count it as work
        return True
    return b"<QueueMessage>" in body


def counting_connection(connection_string: str) -> tuple[StorageConnection, ActorCounters]:
    """A connection whose clients count every request, per actor, in the returned counters."""
    counters = ActorCounters()
    connection = StorageConnection.from_connection_string(connection_string)
    return connection.with_options(StorageClientOptions(watcher=counters)), counters
