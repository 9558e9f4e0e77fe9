"""Control and work-item queues: send (large messages via blobs), receive, delete, abandon."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.storage.queue.aio import QueueClient

from .errors import describe_storage_error
from .large_payloads import MAX_MESSAGE_BYTES, LargePayloadStore
from .messages import (
    MessageData,
    parse_message,
    serialize_message,
    wrapper_for_blob,
)
from .rest.queue_messages import QueueMessages, RawMessage

__all__ = [
    "LocalConsumer",
    "TaskHubQueue",
    "ReceivedMessage",
    "abandon_delay",
    "create_queue",
    "delete_queue",
    "MAX_VISIBILITY",
]

log = logging.getLogger("durable_ext.queues")
MAX_VISIBILITY = timedelta(days=7) - timedelta(minutes=1)
POISON_DELAY = 600


def abandon_delay(dequeue_count: int) -> int:
    """DTFx abandon back-off in seconds: 2^dequeueCount, at most 600."""
    return POISON_DELAY if dequeue_count >= 10 else min(2 ** max(dequeue_count, 0), POISON_DELAY)


@dataclass(slots=True)
class ReceivedMessage:
    """A message taken from a queue, with what is needed to delete or abandon it."""

    data: MessageData
    message_id: str
    pop_receipt: str
    dequeue_count: int
    inserted_on: datetime
    queue: TaskHubQueue
    hold: timedelta | None = None
    """For a message this process sent held (`send_held`): how long each hold lasts."""
    lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False, compare=False)
    """Serialises delete, abandon and renewal: each needs the pop receipt the one before returned."""


async def create_queue(client: QueueClient) -> None:
    """Create the queue unless it exists."""
    with contextlib.suppress(ResourceExistsError):
        await client.create_queue()


async def delete_queue(client: QueueClient) -> None:
    """Delete the queue if it exists."""
    with contextlib.suppress(ResourceNotFoundError):
        await client.delete_queue()


class LocalConsumer(Protocol):
    """A dispatcher of this process that takes the messages sent to a queue it reads straight
    from the sender (in-process handoff), instead of receiving them."""

    @property
    def handoff_hold(self) -> timedelta:
        """How long a handed-over message stays invisible in the queue (renewed while held)."""
        ...

    def takes(self, message: MessageData) -> bool:
        """Whether it will process `message` now (it owns the target's partition)."""
        ...

    def accept(self, message: ReceivedMessage) -> None:
        """Process a message sent held to the queue (its id and pop receipt are real)."""
        ...


class TaskHubQueue:
    """One storage queue of the task hub: the SDK client manages the queue, `messages` (the lean
    REST path) carries its messages."""

    def __init__(
        self, client: QueueClient, messages: QueueMessages, payloads: LargePayloadStore
    ) -> None:
        self._client = client
        self._messages = messages
        self._payloads = payloads
        self.wake = asyncio.Event()
        """Set whenever this process sends to the queue, so its poller need not wait."""
        self.local_consumer: LocalConsumer | None = None
        """Takes what this process sends to the queue without a receive (see `send`)."""

    @property
    def name(self) -> str:
        return self._client.queue_name

    async def create(self) -> None:
        await create_queue(self._client)

    async def delete_queue(self) -> None:
        await delete_queue(self._client)

    async def _body(self, message: MessageData) -> str:
        """The message text, or a small wrapper pointing at a blob when it is over 45 KB."""
        text = serialize_message(message)
        if len(text.encode("utf-8")) <= MAX_MESSAGE_BYTES:
            return text
        name = await self._payloads.put_message(
            message.instance.instance_id, message.activity_id, message.event.event_type.name, text
        )
        message.compressed_blob_name = name
        return wrapper_for_blob(name)

    async def send(self, message: MessageData, visibility_delay: timedelta | None = None) -> None:
        """Enqueue a message (never expires); bodies over 45 KB go to a blob first."""
        text = await self._body(message)
        delay = None
        if visibility_delay is not None and visibility_delay > timedelta(0):
            delay = int(min(visibility_delay, MAX_VISIBILITY).total_seconds() + 0.999)
        consumer = self.local_consumer
        if delay is None and consumer is not None and consumer.takes(message):
            held = await self._put_held(text, message, consumer.handoff_hold)
            consumer.accept(held)
            return
        await self._messages.put(text, visibility_timeout=delay)
        if delay is None:
            self.wake.set()

    async def send_held(self, message: MessageData, hold: timedelta) -> ReceivedMessage:
        """Enqueue a message invisible for `hold` and return it as if received by this process.

        In-process handoff: the sender works on the message at once, with no receive round trip,
        and deletes it with the pop receipt `send_message` returned. If the process dies first, the
        message becomes visible after `hold` and any worker processes it: nothing is lost.
        """
        return await self._put_held(await self._body(message), message, hold)

    async def _put_held(self, text: str, message: MessageData, hold: timedelta) -> ReceivedMessage:
        sent = await self._messages.put(
            text, visibility_timeout=int(min(hold, MAX_VISIBILITY).total_seconds())
        )
        return ReceivedMessage(
            data=message,
            message_id=sent.id,
            pop_receipt=sent.pop_receipt,
            dequeue_count=0,
            inserted_on=sent.inserted_on,
            queue=self,
            hold=hold,
        )

    async def receive(
        self, max_messages: int, visibility_timeout: timedelta
    ) -> list[ReceivedMessage]:
        """Up to `max_messages` messages; undecodable ones are abandoned with back-off and skipped.

        Cancel-safe: if the caller is cancelled (a worker stopping, a lease lost) while messages are
        on their way, they are made visible again at once rather than hidden for the visibility
        timeout.
        """
        task = asyncio.ensure_future(self._receive(max_messages, visibility_timeout))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                taken = await asyncio.wait_for(task, 5)
                await asyncio.gather(*(self.abandon(m, 0) for m in taken), return_exceptions=True)
            raise

    async def _receive(
        self, max_messages: int, visibility_timeout: timedelta
    ) -> list[ReceivedMessage]:
        """Up to `max_messages` messages, decoded in parallel (as DTFx does); one that cannot be
        decoded (bad envelope, large-message blob missing or failing) is abandoned with back-off
        on its own and skipped, and never holds up the others."""
        batch = await self._messages.get(max_messages, int(visibility_timeout.total_seconds()))
        decoded = await asyncio.gather(*(self._decode(raw) for raw in batch))
        return [message for message in decoded if message is not None]

    async def _decode(self, raw: RawMessage) -> ReceivedMessage | None:
        """The message, or None after abandoning it as poison."""
        blob: str | None = None
        try:
            data = parse_message(raw.content)
            if data.compressed_blob_name:
                blob = data.compressed_blob_name
                data = parse_message(await self._payloads.download(blob))
        except Exception as exc:  # noqa: BLE001 - any failure is this message's alone
            await self._abandon_poison(raw, exc, blob)
            return None
        return ReceivedMessage(
            data=data,
            message_id=raw.id,
            pop_receipt=raw.pop_receipt,
            dequeue_count=raw.dequeue_count,
            inserted_on=raw.inserted_on,
            queue=self,
        )

    async def _abandon_poison(self, raw: RawMessage, error: Exception, blob: str | None) -> None:
        """Put an undecodable message back with the DTFx back-off; a failure to do so is only
        logged (the message then comes back when its visibility timeout ends)."""
        delay = abandon_delay(raw.dequeue_count)
        log.warning(
            "Poison message %s in %s (dequeued %s times) cannot be decoded: %s%s; retrying in %s s",
            raw.id,
            self.name,
            raw.dequeue_count,
            describe_storage_error(error),
            f" (large-message blob {blob})" if blob else "",
            delay,
        )
        try:
            await self._messages.update_visibility(raw.id, raw.pop_receipt, delay)
        except Exception as exc:  # noqa: BLE001 - the visibility timeout brings it back anyway
            log.warning(
                "Could not abandon message %s in %s: %s",
                raw.id,
                self.name,
                describe_storage_error(exc),
            )

    async def delete(self, message: ReceivedMessage) -> bool:
        """Delete a processed message; False when it is gone or its pop receipt has lapsed (it
        was received again since: storage answers both with 404)."""
        async with message.lock:
            try:
                await self._messages.delete(message.message_id, message.pop_receipt)
            except HttpResponseError as exc:
                if exc.status_code not in (404, 400):
                    raise
                return False
            return True

    async def abandon(self, message: ReceivedMessage, delay_seconds: int | None = None) -> None:
        """Make a message visible again after the DTFx back-off (or `delay_seconds`)."""
        delay = abandon_delay(message.dequeue_count) if delay_seconds is None else delay_seconds
        if delay >= POISON_DELAY:
            log.warning(
                "Message %s (%s for %s) abandoned %s times; it may be poison",
                message.message_id,
                message.data.event.event_type.name,
                message.data.instance.instance_id,
                message.dequeue_count,
            )
        await self._set_visibility(message, delay)

    async def renew(self, message: ReceivedMessage, visibility: timedelta) -> bool:
        """Keep a message invisible while it is worked on; False when it is gone or its pop
        receipt has lapsed."""
        return await self._set_visibility(message, int(visibility.total_seconds()))

    async def _set_visibility(self, message: ReceivedMessage, seconds: int) -> bool:
        async with message.lock:
            try:
                message.pop_receipt = await self._messages.update_visibility(
                    message.message_id, message.pop_receipt, seconds
                )
            except HttpResponseError as exc:
                if exc.status_code not in (404, 400):
                    raise
                return False
            return True

    async def count(self) -> int:
        """Approximate number of messages (visible or not)."""
        properties = await self._client.get_queue_properties()
        return int(properties.approximate_message_count or 0)

    async def oldest_visible_time(self) -> datetime | None:
        """When the message at the head of the queue (the first visible one) was inserted; None
        for a queue with no visible message."""
        peeked = await self._client.peek_messages(max_messages=1)
        return peeked[0].inserted_on if peeked else None

    async def visible_count(self, limit: int = 32) -> int:
        """Visible messages, up to `limit` (at most 32): a peek, so delayed timer messages, which
        `count` includes, do not count."""
        return len(await self._client.peek_messages(max_messages=min(limit, 32)))
