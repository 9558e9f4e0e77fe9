"""What both partition managers share: which partitions this worker owns, until when it may act
on each, and the callbacks that tell the worker.

The *ownership deadline* of a partition is the monotonic time at which the last successful claim
or renewal was *sent*, plus the lease interval, minus a safety margin (`margin_for`). Until then no
other worker may take the partition (a blob lease or a Partitions row cannot expire before the
storage service, or another worker's clock, has seen the lease interval pass since that request
arrived, and the request arrived after it was sent). Past it the worker must not touch the
partition: the dispatcher checks the deadline right before every request it makes for a
partition's instances, so a worker that was frozen (SIGSTOP, a VM pause, a blocked event loop)
never starts a write after it resumes. The margin covers clock skew between workers (the table
manager compares `ExpiresAt`, written with the owner's clock, against the reader's clock). The
history sentinel ETag stays the final fence.

The deadlines are read from other threads (the worker's event loop reads what the ownership
thread writes), so they live behind a lock. The REST transport asks `ownership_guard` (set by the
worker for the work of one partition) right before each attempt of each request, retries
included, so a request is never started for a partition the worker may no longer act on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from datetime import timedelta

from .names import MAX_PARTITIONS, MIN_PARTITIONS

__all__ = [
    "OwnershipDeadlines",
    "OwnershipLostError",
    "PartitionCallback",
    "PartitionOwnership",
    "check_ownership",
    "margin_for",
    "ownership_guard",
]

logger = logging.getLogger("durable_ext.leases")

PartitionCallback = Callable[[int], Awaitable[None]]

_MARGIN_FRACTION = 6
"""The safety margin is a sixth of the lease interval: 5 s for DTFx's 30 s default."""


ownership_guard: ContextVar[Callable[[], bool] | None] = ContextVar("ownership_guard", default=None)
"""In the work of one partition: whether this worker may still act on it (None elsewhere)."""


class OwnershipLostError(Exception):
    """This worker may no longer act on the partition a request or an episode is for."""


def check_ownership() -> None:
    """Raise `OwnershipLostError` when the current work's partition may no longer be acted on."""
    guard = ownership_guard.get()
    if guard is not None and not guard():
        raise OwnershipLostError("this worker may no longer act on the partition")


def margin_for(lease_interval: timedelta) -> float:
    """Seconds of the lease interval a worker gives up before its lease may be taken."""
    return lease_interval.total_seconds() / _MARGIN_FRACTION


class OwnershipDeadlines:
    """Per partition, the monotonic time until which this worker may act on it (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._deadlines: dict[int, float] = {}

    def set(self, index: int, deadline: float) -> None:
        with self._lock:
            self._deadlines[index] = deadline

    def clear(self, index: int) -> None:
        with self._lock:
            self._deadlines.pop(index, None)

    def deadline(self, index: int) -> float | None:
        """The deadline of a partition this worker owns; None when it owns it no longer."""
        with self._lock:
            return self._deadlines.get(index)

    def valid(self, index: int) -> bool:
        """True while this worker may still act on partition `index`."""
        deadline = self.deadline(index)
        return deadline is not None and time.monotonic() < deadline


class PartitionOwnership:
    """Ownership state of one worker: owned partitions, their deadlines, and the callbacks.

    Per partition `on_acquired` and `on_lost` alternate, starting with `on_acquired`, and never
    overlap. `on_lost` must stop all work on the partition before it returns."""

    def __init__(
        self,
        partition_count: int,
        worker_id: str,
        lease_interval: timedelta,
        on_acquired: PartitionCallback | None,
        on_lost: PartitionCallback | None,
        deadlines: OwnershipDeadlines | None = None,
    ) -> None:
        if not worker_id:
            raise ValueError("worker_id must not be empty")
        if not MIN_PARTITIONS <= partition_count <= MAX_PARTITIONS:
            raise ValueError(
                f"partition_count must be from {MIN_PARTITIONS} to {MAX_PARTITIONS}, got {partition_count}"
            )
        self.partition_count = partition_count
        self.worker_id = worker_id
        self.deadlines = deadlines or OwnershipDeadlines()
        self.on_change: Callable[[], None] | None = None
        """Called (on the manager's thread) whenever `owned` changes."""
        self._lease_seconds = lease_interval.total_seconds()
        self._margin = margin_for(lease_interval)
        self._on_acquired = on_acquired
        self._on_lost = on_lost
        self._owned: frozenset[int] = frozenset()
        self._callback_locks = [asyncio.Lock() for _ in range(partition_count)]
        self._changed = asyncio.Event()

    @property
    def owned(self) -> frozenset[int]:
        """Indexes of the partitions this worker owns now."""
        return self._owned

    async def wait_until(self, predicate: Callable[[frozenset[int]], bool], timeout: float) -> bool:
        """Wait until `predicate(owned)` holds; False if it still does not after `timeout` seconds."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while not predicate(self.owned):
                    await self._changed.wait()
                return True
        return predicate(self.owned)

    # -- for the managers -------------------------------------------------------------------

    def _renewed(self, index: int, sent_at: float) -> bool:
        """A claim or renewal of `index` sent at monotonic `sent_at` succeeded. True when the
        previous deadline had passed: the worker has stopped the partition and must be told
        (`on_acquired` again) that it may go on."""
        lapsed = not self.deadlines.valid(index)
        self.deadlines.set(index, sent_at + self._lease_seconds - self._margin)
        return lapsed

    def _set_owned(self, index: int, owned: bool) -> None:
        if owned:
            self._owned = self._owned | {index}
        else:
            self.deadlines.clear(index)
            self._owned = self._owned - {index}
        self._changed.set()
        self._changed = asyncio.Event()
        if self.on_change is not None:
            self.on_change()

    async def _call_acquired(self, index: int) -> bool:
        """Tell the worker; False (logged) when its `on_acquired` failed."""
        async with self._callback_locks[index]:
            if self._on_acquired is None:
                return True
            try:
                await self._on_acquired(index)
                return True
            except Exception:
                logger.exception("on_acquired(%d) failed; giving the partition up", index)
                return False

    async def _call_lost(self, index: int) -> None:
        async with self._callback_locks[index]:
            if self._on_lost is None:
                return
            try:
                await self._on_lost(index)
            except Exception:
                logger.exception("on_lost(%d) failed", index)
