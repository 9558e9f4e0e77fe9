"""Waking a function app for durable work: the `durabletask_wakeup` queue trigger and its senders.

`DFApp` registers `durabletask_wakeup`, a native queue trigger on the hub's wake-up queue
(`storage.wake_queue`), when the app can have one: host.json names an `extensionBundle` (the
queue trigger comes from the storage extension in the bundle; without it the host would put the
function in error) and the hub name and connection resolve at import. The function starts the
engine if needed and holds while it has work, like the heartbeat (`engine_functions.hold`).

Who puts wake-up messages:
- a durable client, after it sends durable work (start, raise event, terminate, suspend, resume,
  rewind), unless that is covered: inside the app, while an invocation of this process already
  holds for the engine; any client, when it put one within the last `WAKE_COALESCE` seconds;
- the engine that owns partition 0, to ask for more instances while a backlog lasts
  (`scale_signal`).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..settings import SettingsError, load_durable_task_settings, read_app_host_json
from ..storage.names import InvalidTaskHubNameError, TaskHubNames
from ..storage.wake_queue import WakeQueue

__all__ = [
    "DEFAULT_QUEUE_BATCH_SIZE",
    "WAKE_COALESCE",
    "WAKE_UP_FUNCTION",
    "WakeUpBinding",
    "WakeUpSender",
    "queue_batch_size",
    "wake_up_binding",
]

log = logging.getLogger("durable_ext.wake_up")

WAKE_UP_FUNCTION = "durabletask_wakeup"
WAKE_COALESCE = 5.0
"""Seconds after a wake-up message during which a client puts no other (the platform reacts to
one message as to several; the engine asks for more instances itself)."""
DEFAULT_QUEUE_BATCH_SIZE = 16
"""host.json `extensions.queues.batchSize` by default: the queue trigger's target executions per
instance for target-based scaling."""


@dataclass(frozen=True, slots=True)
class WakeUpBinding:
    """What the wake-up function's queue trigger binds to."""

    queue_name: str
    connection: str


def wake_up_binding(
    script_root: Path, app_settings: Mapping[str, str] | None = None
) -> WakeUpBinding | None:
    """The wake-up queue trigger of the app in `script_root`, or None when it cannot have one
    (no host.json, no `extensionBundle`, or settings that do not resolve: the engine reports
    those). Reads files only, never storage."""
    settings = dict(os.environ if app_settings is None else app_settings)
    path = script_root / "host.json"
    if not path.exists():
        return None
    try:
        host_json = read_app_host_json(path, settings)
        if "extensionBundle" not in host_json:
            log.info(
                "host.json has no extensionBundle: no wake-up queue trigger (see docs/azure.md)"
            )
            return None
        durable = load_durable_task_settings(host_json, settings)
        queue_name = TaskHubNames(durable.hub_name).wake_queue
    except (SettingsError, InvalidTaskHubNameError, OSError, ValueError) as exc:
        log.warning("No wake-up queue trigger: %s", exc)
        return None
    return WakeUpBinding(queue_name, durable.connection_name)


def queue_batch_size(host_json: Mapping[str, Any]) -> int:
    """host.json `extensions.queues.batchSize` (the queue trigger's), else its default."""
    queues = host_json.get("extensions", {}).get("queues", {})
    try:
        size = int(queues.get("batchSize", DEFAULT_QUEUE_BATCH_SIZE))
    except (TypeError, ValueError):
        return DEFAULT_QUEUE_BATCH_SIZE
    return size if size > 0 else DEFAULT_QUEUE_BATCH_SIZE


class WakeUpSender:
    """Puts a wake-up message after a client sent durable work, unless `covered()` says an
    invocation already holds for the engine, or one was put within `coalesce` seconds."""

    def __init__(
        self,
        queue: WakeQueue,
        covered: Callable[[], bool] | None = None,
        coalesce: float = WAKE_COALESCE,
    ) -> None:
        self._queue = queue
        self._covered = covered
        self._coalesce = coalesce
        self._last: float | None = None

    async def after_send(self, reason: str) -> None:
        """Called once the durable message is stored. Never raises: the work is queued either
        way, and the next heartbeat picks it up if no instance wakes for it."""
        if self._covered is not None and self._covered():
            return
        now = time.monotonic()
        if self._last is not None and now - self._last < self._coalesce:
            return
        self._last = now
        try:
            await self._queue.request(reason)
        except Exception as exc:  # noqa: BLE001 - reported; the client's call has succeeded
            self._last = None
            log.warning("Could not put a wake-up message on %s: %s", self._queue.name, exc)
