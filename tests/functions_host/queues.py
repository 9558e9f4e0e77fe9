"""Queue triggers: poll each queue-trigger function's queue as the host's queue listener does
(Microsoft.Azure.WebJobs.Extensions.Storage.Queues, host.json `extensions.queues`).

- Connection: the binding's `connection` names an app setting; `AzureWebJobs<name>` is tried
  first, then `<name>` (a connection string here; identity-based settings are not modelled).
- Polling: a batch of up to `batchSize` (16) messages, each received invisible for the message
  lease (10 min, renewed at half-time while the invocation runs); after an empty poll the wait
  grows from 100 ms, doubling, up to `maxPollingInterval` (1 min), and drops back after a hit.
  A new batch is fetched once the running invocations fall to `newBatchThreshold`
  (`batchSize / 2`). A queue that does not exist, or storage that cannot be reached, counts as
  empty (the listener logs and polls again).
- Body: `messageEncoding` base64 by default (a body that is not base64 fails the invocation),
  handed over as `func.QueueMessage` with its id, dequeue count and times.
- Outcome: success deletes the message; a failure makes it visible again after
  `visibilityTimeout` (0); a message dequeued more than `maxDequeueCount` (5) times moves to
  `<queue>-poison`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
from azure.functions.queue import QueueMessage as WorkerQueueMessage
from azure.storage.queue import QueueMessage as StorageMessage
from azure.storage.queue.aio import QueueClient

from .invocations import Invocation
from .metadata import IndexedFunction

__all__ = ["QueueOptions", "run_queue_listener", "queue_connection_string"]

log = logging.getLogger("tests.functions_host.queues")

MESSAGE_LEASE = timedelta(minutes=10)
MIN_POLLING_INTERVAL = 0.1


@dataclass(frozen=True)
class QueueOptions:
    """host.json `extensions.queues` with the extension's defaults."""

    batch_size: int = 16
    new_batch_threshold: int = 8
    max_polling_interval: float = 60.0
    visibility_timeout: float = 0.0
    max_dequeue_count: int = 5
    base64: bool = True

    @classmethod
    def from_host_json(cls, host_json: Mapping[str, Any]) -> QueueOptions:
        queues = host_json.get("extensions", {}).get("queues", {})
        batch = int(queues.get("batchSize", 16))
        return cls(
            batch_size=batch,
            new_batch_threshold=int(queues.get("newBatchThreshold", batch // 2)),
            max_polling_interval=_seconds(queues.get("maxPollingInterval"), 60.0),
            visibility_timeout=_seconds(queues.get("visibilityTimeout"), 0.0),
            max_dequeue_count=int(queues.get("maxDequeueCount", 5)),
            base64=str(queues.get("messageEncoding", "base64")).lower() == "base64",
        )


def _seconds(value: Any, default: float) -> float:
    """A host.json TimeSpan ("00:00:02") or milliseconds as a number, in seconds."""
    if value is None:
        return default
    if isinstance(value, int | float):
        return float(value) / 1000
    hours, minutes, seconds = str(value).split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def queue_connection_string(connection: str | None) -> str:
    """The connection string the binding's `connection` names (AzureWebJobs<name>, then <name>)."""
    name = connection or "AzureWebJobsStorage"
    for candidate in (f"AzureWebJobs{name}", name):
        value = os.environ.get(candidate)
        if value:
            return value
    raise LookupError(f"Storage account connection string '{name}' does not exist")


async def run_queue_listener(
    fn: IndexedFunction,
    queue_name: str,
    options: QueueOptions,
    invoke: Callable[[WorkerQueueMessage], Awaitable[Invocation]],
) -> None:
    """Poll `queue_name` (the trigger's, `%Setting%`s resolved) and invoke `fn` per message
    until cancelled."""
    trigger = fn.trigger or {}
    queue_name = queue_name.lower()
    connection = queue_connection_string(trigger.get("connection"))
    limit = asyncio.Semaphore(options.batch_size + options.new_batch_threshold)
    running: set[asyncio.Task[None]] = set()
    async with (
        QueueClient.from_connection_string(connection, queue_name) as queue,
        QueueClient.from_connection_string(connection, f"{queue_name}-poison") as poison,
    ):
        delay = MIN_POLLING_INTERVAL
        try:
            while True:
                while len(running) > options.new_batch_threshold:
                    await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                messages = await _receive(queue, options.batch_size)
                if not messages:
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, options.max_polling_interval)
                    continue
                delay = MIN_POLLING_INTERVAL
                for message in messages:
                    await limit.acquire()
                    task = asyncio.create_task(
                        _process(queue, poison, message, options, invoke, limit)
                    )
                    running.add(task)
                    task.add_done_callback(running.discard)
        finally:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)


async def _receive(queue: QueueClient, batch_size: int) -> list[StorageMessage]:
    try:
        pages = queue.receive_messages(
            messages_per_page=batch_size,
            visibility_timeout=int(MESSAGE_LEASE.total_seconds()),
            max_messages=batch_size,
        )
        return [message async for message in pages]
    except ResourceNotFoundError:
        return []
    except AzureError as exc:
        log.info("Polling %s failed: %s", queue.queue_name, exc)
        return []


async def _process(
    queue: QueueClient,
    poison: QueueClient,
    message: StorageMessage,
    options: QueueOptions,
    invoke: Callable[[WorkerQueueMessage], Awaitable[Invocation]],
    limit: asyncio.Semaphore,
) -> None:
    try:
        await _settle(queue, poison, message, options, invoke)
    except AzureError as exc:  # the message reappears when its lease ends
        log.info("Settling message %s failed: %s", message.id, exc)
    finally:
        limit.release()


async def _settle(
    queue: QueueClient,
    poison: QueueClient,
    message: StorageMessage,
    options: QueueOptions,
    invoke: Callable[[WorkerQueueMessage], Awaitable[Invocation]],
) -> None:
    """Invoke for `message` and delete it, retry it later, or move it to the poison queue."""
    if message.dequeue_count > options.max_dequeue_count:
        with contextlib.suppress(ResourceExistsError):
            await poison.create_queue()
        await poison.send_message(message.content)
        await queue.delete_message(message.id, message.pop_receipt)
        return
    try:
        argument = _worker_message(message, options)
    except ValueError as exc:  # the host fails the invocation before the worker sees it
        error: BaseException | None = exc
    else:
        renewal = asyncio.create_task(_renew(queue, message))
        try:
            error = (await invoke(argument)).error
        finally:
            renewal.cancel()
            await asyncio.gather(renewal, return_exceptions=True)
    if error is None:
        await queue.delete_message(message.id, message.pop_receipt)
    else:
        log.warning("Queue message %s failed: %r", message.id, error)
        await queue.update_message(
            message.id, message.pop_receipt, visibility_timeout=int(options.visibility_timeout)
        )


async def _renew(queue: QueueClient, message: StorageMessage) -> None:
    """Keep the message invisible while its invocation runs (the listener's lease renewal)."""
    half = MESSAGE_LEASE.total_seconds() / 2
    while True:
        await asyncio.sleep(half)
        receipt = await queue.update_message(
            message.id, message.pop_receipt, visibility_timeout=int(MESSAGE_LEASE.total_seconds())
        )
        message.pop_receipt = receipt.pop_receipt


def _worker_message(message: StorageMessage, options: QueueOptions) -> WorkerQueueMessage:
    """The `func.QueueMessage` the worker builds; ValueError for a body that is not base64."""
    content = message.content if isinstance(message.content, str) else ""
    try:
        body = base64.b64decode(content, validate=True) if options.base64 else content.encode()
    except binascii.Error as exc:
        raise ValueError(f"the message body is not valid base64: {exc}") from exc
    return WorkerQueueMessage(
        id=message.id,
        body=body,
        dequeue_count=message.dequeue_count,
        expiration_time=message.expires_on,
        insertion_time=message.inserted_on,
        time_next_visible=message.next_visible_on,
        pop_receipt=message.pop_receipt,
    )
