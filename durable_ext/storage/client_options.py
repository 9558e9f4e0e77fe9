"""How a connection's requests are made: one options object for both storage paths.

The Azure SDK clients (blobs, container and queue management, listing queries) and the lean REST
transport (queue messages, table rows) take their retries, timeouts and request observation from
the same `StorageClientOptions`, as DTFx passes one settings object to its storage service. The
defaults keep each path's own behaviour (the SDK's retry policy; three quick retries on the lean
path); `FAIL_FAST` is what a command-line tool wants.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

__all__ = ["FAIL_FAST", "RequestObserver", "RequestWatcher", "StorageClientOptions"]

RequestObserver = Callable[[str, str, int, float, bytes], None]
"""Called once per lean-path HTTP attempt: method, URL, status, seconds, response body."""
Service = Literal["blob", "queue", "table"]
DEFAULT_REST_RETRY_DELAYS = (0.1, 0.5, 2.0)
"""The lean path's waits before its three retries: a lost connection or a 503 usually clears
within a second, and the engine's own loops retry after that."""


class RequestWatcher(Protocol):
    """Watches every storage request of a connection (the benchmarks count them)."""

    def sdk_hooks(self, service: Service) -> Mapping[str, Any]:
        """Keyword arguments for an SDK client (`raw_request_hook`, `raw_response_hook`)."""
        ...

    def rest_observer(self, service: Literal["queue", "table"]) -> RequestObserver:
        """The observer of the lean REST transport of `service`."""
        ...


@dataclass(frozen=True, slots=True)
class StorageClientOptions:
    """Retries, timeouts and request watching for every client of a connection. None keeps
    each path's default."""

    retries: int | None = None
    """Retries after a failed attempt (connection failures; 408, 429 and 5xx answers)."""
    first_retry_delay: float = 0.5
    """Seconds before the first retry when `retries` is set; later retries wait longer (the
    lean path doubles it; the SDKs add `1 ** n` seconds to it, their exponential formula)."""
    connect_timeout: float | None = None
    read_timeout: float | None = None
    watcher: RequestWatcher | None = None

    def sdk_kwargs(self, service: Service) -> dict[str, Any]:
        """Keyword arguments for an Azure SDK service client of `service`."""
        kwargs: dict[str, Any] = {}
        if self.retries is not None:
            kwargs.update(retry_total=self.retries, retry_connect=min(self.retries, 1))
            if service == "table":
                kwargs["retry_backoff_factor"] = self.first_retry_delay
            else:
                kwargs.update(
                    initial_backoff=self.first_retry_delay, increment_base=1, random_jitter_range=0
                )
        if self.connect_timeout is not None:
            kwargs["connection_timeout"] = self.connect_timeout
        if self.read_timeout is not None:
            kwargs["read_timeout"] = self.read_timeout
        if self.watcher is not None:
            kwargs.update(self.watcher.sdk_hooks(service))
        return kwargs

    @property
    def rest_retry_delays(self) -> tuple[float, ...] | None:
        """The lean path's waits before each retry (None: its default)."""
        if self.retries is None:
            return None
        return tuple(self.first_retry_delay * 2**i for i in range(self.retries))

    def rest_observer(self, service: Literal["queue", "table"]) -> RequestObserver | None:
        return self.watcher.rest_observer(service) if self.watcher is not None else None


FAIL_FAST = StorageClientOptions(retries=2, first_retry_delay=0.5, connect_timeout=5, read_timeout=60)
"""A command-line tool says "not reachable" within seconds, not after the SDK's default back-off
(minutes for blobs and queues): two retries (one of a refused connection), about a second apart,
and a 5 s connect timeout, on both paths."""
