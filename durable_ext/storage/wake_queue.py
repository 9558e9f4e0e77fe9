"""The task hub's wake-up queue: the one queue the Functions host itself watches.

The platform scales a function app (and wakes one scaled to zero) by the triggers it knows; it
never reads the DTFx control and work-item queues, and a native trigger on them would consume
their messages. So durable_ext keeps a small queue of its own, `{hub}-wakeup`, that a queue
trigger of the app (`durabletask_wakeup`, registered by `DFApp`) consumes: a client that sends
durable work while no engine may be running puts one message there, and the engine tops the queue
up to ask for more instances while a backlog lasts (`host.scale_signal`). Its length is the
platform's scale signal: target-based scaling wants about `length / batchSize` instances.

Messages are base64-encoded JSON, the queue trigger's default `messageEncoding`, and expire after
`WAKE_MESSAGE_TTL` so a hub without such an app does not accumulate them. They are never
delayed: a delayed message counts in the queue's length while invisible, so it would keep an
instance alive until it came due.
"""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.queue.aio import QueueClient

from .queues import create_queue, delete_queue

__all__ = ["WAKE_MESSAGE_TTL", "WakeQueue", "decode_wake_message", "encode_wake_message"]

WAKE_MESSAGE_TTL = 3600
"""Seconds a wake-up message lives: long enough for any platform to react, short enough that a
hub no function app serves keeps only the last hour's."""


def encode_wake_message(reason: str) -> str:
    """The queue text of one wake-up request (base64 of a small JSON document)."""
    document = {"reason": reason, "at": datetime.now(UTC).isoformat()}
    return base64.b64encode(json.dumps(document).encode("utf-8")).decode("ascii")


def decode_wake_message(body: bytes) -> dict[str, str]:
    """The JSON document of a wake-up message's body (as the queue trigger hands it over)."""
    document = json.loads(body.decode("utf-8"))
    if not isinstance(document, dict):
        raise ValueError("a wake-up message is a JSON object")
    return {str(k): str(v) for k, v in document.items()}


class WakeQueue:
    """The wake-up queue of one task hub (an SDK queue client of the caller's event loop)."""

    def __init__(self, client: QueueClient) -> None:
        self._client = client

    @property
    def name(self) -> str:
        return self._client.queue_name

    async def create(self) -> None:
        """Create the queue if it does not exist."""
        await create_queue(self._client)

    async def request(self, reason: str, count: int = 1) -> None:
        """Put `count` wake-up messages, all at once (creating the queue the first time it is
        missing)."""
        text = encode_wake_message(reason)
        try:
            await self._put(text)
        except ResourceNotFoundError:
            await self.create()
            await self._put(text)
        await asyncio.gather(*(self._put(text) for _ in range(count - 1)))

    async def _put(self, text: str) -> None:
        await self._client.send_message(text, time_to_live=WAKE_MESSAGE_TTL)

    async def length(self) -> int:
        """Approximate number of messages, in flight (invisible) ones included: what the
        platform's scale controller reads; 0 while the queue does not exist."""
        try:
            properties = await self._client.get_queue_properties()
        except ResourceNotFoundError:
            return 0
        return int(properties.approximate_message_count or 0)

    async def delete_queue(self) -> None:
        await delete_queue(self._client)
