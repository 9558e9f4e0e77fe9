"""Messages this worker holds: taken from a queue (received, or sent to itself held) and not yet
deleted or abandoned. They stay invisible to other workers until settled: each is renewed when half
its visibility has passed (DTFx renews a work item's messages before they lapse), however long it
waits for a slot, a busy instance or a long episode.

A second copy of a held message (same id: received again because a renewal failed and its hold ran
out) replaces the held one in place, so the held message carries the newest pop receipt and its
eventual delete or abandon acts on the copy too (DTFx `MessageCollection.AddOrReplace`); the copy
itself is not processed a second time. A copy of a message whose delete failed after it was applied
is deleted on sight instead of being applied again.

One registry serves both dispatchers of a worker, so an activity result handed to the orchestration
dispatcher in memory (the work item's message, now carrying the result) stays held as it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from ..storage.errors import describe_storage_error
from ..storage.partition_ownership import OwnershipLostError, ownership_guard
from ..storage.queues import ReceivedMessage
from .storage_limiter import StorageLimiter

__all__ = ["HeldMessages"]

log = logging.getLogger("durable_ext.held_messages")

_REMEMBERED_UNSETTLED = 10_000
_RENEW_RETRY_SECONDS = 1.0
_DELETE_RETRY_CAP_SECONDS = 10.0
_COMPACT_FACTOR = 4
_COMPACT_SLACK = 1024


@dataclass(slots=True)
class _Hold:
    message: ReceivedMessage
    visibility: float
    """Seconds each receive or renewal hides the message for."""
    renew_at: float
    """Loop time of the next renewal: half its visibility after the last receive or renewal."""
    applied: bool = False
    """Its effect is committed: it may only be deleted now, never put back."""


class HeldMessages:
    """The messages a worker holds, kept invisible by renewal until deleted or abandoned."""

    def __init__(self, storage: StorageLimiter) -> None:
        self._storage = storage
        self._held: dict[str, _Hold] = {}
        self._due: list[tuple[float, int, str]] = []
        self._sequence = 0
        self._changed = asyncio.Event()
        self._unsettled: OrderedDict[str, None] = OrderedDict()
        self._background: set[asyncio.Task[None]] = set()
        self._renewer: asyncio.Task[None] | None = None
        self.may_renew: Callable[[ReceivedMessage], bool] = lambda message: True
        """False for a message this worker may no longer keep (its partition is lost): it is
        let go instead of renewed, and reappears when its visibility lapses."""

    def __len__(self) -> int:
        return len(self._held)

    def __contains__(self, message_id: object) -> bool:
        return message_id in self._held

    def messages(self) -> list[ReceivedMessage]:
        """The held messages (for diagnostics and tests)."""
        return [hold.message for hold in self._held.values()]

    # -- taking ----------------------------------------------------------------
    def hold(self, message: ReceivedMessage, visibility: timedelta) -> bool:
        """Hold `message` (just received, hidden for `visibility`); False when it is a copy of a
        message already held or already applied, which the caller must then drop."""
        seconds = max(visibility.total_seconds(), 1.0)
        now = asyncio.get_running_loop().time()
        held = self._held.get(message.message_id)
        if held is not None:
            if held.message is not message:
                log.warning(
                    "Message %s in %s was received again while held (dequeued %s times); "
                    "the new copy replaces the held one",
                    message.message_id,
                    message.queue.name,
                    message.dequeue_count,
                )
                held.message.pop_receipt = message.pop_receipt
                held.message.dequeue_count = message.dequeue_count
                held.renew_at = now + seconds / 2
                self._schedule(held)
                return False
            return True
        if message.message_id in self._unsettled:
            log.warning(
                "Message %s in %s was already applied; deleting the copy received again",
                message.message_id,
                message.queue.name,
            )
            self._in_background(self._delete_copy(message))
            return False
        hold = _Hold(message, seconds, now + seconds / 2)
        self._held[message.message_id] = hold
        self._schedule(hold)
        return True

    # -- settling -------------------------------------------------------------------------------
    def mark_applied(self, messages: Iterable[ReceivedMessage]) -> None:
        """The messages' effects are committed (history written): from now on they are deleted,
        and an abandon of any of them does nothing."""
        for message in messages:
            held = self._held.get(message.message_id)
            if held is not None and held.message is message:
                held.applied = True

    async def delete(self, message: ReceivedMessage) -> None:
        """Delete an applied message, retrying storage failures while it is still held; a message
        that is gone (its pop receipt lapsed) is remembered so a copy is deleted, not re-applied."""
        hold = self._held.get(message.message_id)
        loop = asyncio.get_running_loop()
        patience = hold.visibility * 2 if hold is not None else 60.0
        deadline = loop.time() + patience
        delay = 0.5
        try:
            while True:
                try:
                    deleted = await self._storage.run(message.queue.delete, message)
                except OwnershipLostError:
                    log.info(
                        "Not deleting %s: its partition is no longer owned", message.message_id
                    )
                    return
                except Exception as exc:  # noqa: BLE001 - storage outage: retry while we hold it
                    if loop.time() + delay > deadline:
                        log.error(
                            "Could not delete applied message %s in %s: %s; it will be delivered "
                            "again and dropped as already applied if it reaches this worker",
                            message.message_id,
                            message.queue.name,
                            describe_storage_error(exc),
                        )
                        self._remember_unsettled(message.message_id)
                        return
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, _DELETE_RETRY_CAP_SECONDS)
                    continue
                if not deleted:
                    log.warning(
                        "Applied message %s in %s was gone when deleted (its hold had lapsed); "
                        "a copy delivered again will be dropped if it reaches this worker",
                        message.message_id,
                        message.queue.name,
                    )
                    self._remember_unsettled(message.message_id)
                return
        except asyncio.CancelledError:
            self._remember_unsettled(message.message_id)
            raise
        finally:
            self._release(message)

    async def abandon(self, message: ReceivedMessage, delay_seconds: int | None = None) -> None:
        """Make a held message visible again (after the DTFx back-off, or `delay_seconds`);
        nothing for a message already settled or applied."""
        held = self._held.get(message.message_id)
        if held is None or held.message is not message or held.applied:
            return
        unguarded = ownership_guard.set(None)  # giving a message back is always allowed
        try:
            await self._storage.run(message.queue.abandon, message, delay_seconds)
        except Exception as exc:  # noqa: BLE001 - it reappears when its hold lapses anyway
            log.debug("abandoning %s failed: %s", message.message_id, exc)
        finally:
            ownership_guard.reset(unguarded)
            self._release(message)

    def _release(self, message: ReceivedMessage) -> None:
        held = self._held.get(message.message_id)
        if held is not None and held.message is message:
            del self._held[message.message_id]

    def _remember_unsettled(self, message_id: str) -> None:
        self._unsettled[message_id] = None
        while len(self._unsettled) > _REMEMBERED_UNSETTLED:
            self._unsettled.popitem(last=False)

    async def _delete_copy(self, message: ReceivedMessage) -> None:
        with contextlib.suppress(Exception):
            if await message.queue.delete(message):
                self._unsettled.pop(message.message_id, None)

    # -- renewing -------------------------------------------------------------------------------
    def start(self) -> None:
        """Start renewing (idempotent)."""
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.create_task(self._renew_loop(), name="held-messages")

    async def stop(self) -> None:
        """Stop renewing; messages still held lapse after their visibility."""
        tasks = [t for t in (self._renewer, *self._background) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._renewer = None

    def _schedule(self, hold: _Hold) -> None:
        self._sequence += 1
        entry = (hold.renew_at, self._sequence, hold.message.message_id)
        heapq.heappush(self._due, entry)
        if len(self._due) > _COMPACT_FACTOR * len(self._held) + _COMPACT_SLACK:
            self._compact()
        if self._due[0] is entry:
            self._changed.set()

    def _compact(self) -> None:
        """Drop the entries of settled messages (they stay in the heap until due otherwise, up to
        half a visibility timeout of traffic): one entry per held message remains."""
        self._due = [
            entry
            for entry in self._due
            if (hold := self._held.get(entry[2])) is not None and hold.renew_at == entry[0]
        ]
        heapq.heapify(self._due)
        self._changed.set()

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _renew_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            due: dict[str, _Hold] = {}
            while self._due and self._due[0][0] <= now:
                renew_at, _, message_id = heapq.heappop(self._due)
                hold = self._held.get(message_id)
                if hold is not None and hold.renew_at <= now:
                    due[message_id] = hold
            if due:
                await asyncio.gather(*(self._renew(hold) for hold in due.values()))
                continue
            self._changed.clear()
            timeout = self._due[0][0] - now if self._due else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout)

    async def _renew(self, hold: _Hold) -> None:
        loop = asyncio.get_running_loop()
        message = hold.message
        if not self.may_renew(message):
            self._release(message)
            return
        started = loop.time()
        try:
            renewed = await self._storage.run(
                message.queue.renew, message, timedelta(seconds=hold.visibility)
            )
        except Exception as exc:  # noqa: BLE001 - retried; a lapse only risks a second copy
            log.warning(
                "Renewing held message %s in %s failed: %s; retrying",
                message.message_id,
                message.queue.name,
                describe_storage_error(exc),
            )
            hold.renew_at = loop.time() + min(_RENEW_RETRY_SECONDS, hold.visibility / 4)
        else:
            if not renewed:
                if self._held.get(message.message_id) is hold:
                    log.warning(
                        "Held message %s in %s lost its hold (received again elsewhere, or gone)",
                        message.message_id,
                        message.queue.name,
                    )
                return
            hold.renew_at = started + hold.visibility / 2
        if self._held.get(message.message_id) is hold:
            self._schedule(hold)
