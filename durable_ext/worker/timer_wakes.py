"""Wake a control queue's poller when a timer in it comes due, with one loop handle per queue.

A timer message is sent invisible until its fire time; instead of waiting for the next polling
back-off tick, the poller is woken then. Each queue has at most one `call_later` handle, armed for
its earliest pending fire time and re-armed for the next one when it runs, however many timers are
pending. An instance's fire times are forgotten when it finishes, so the timers of orchestrations
that no longer wait for them (an event won a `task_any` race, then the orchestration completed)
keep neither a handle nor memory until their fire time.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from dataclasses import dataclass, field

__all__ = ["TimerWakes"]

_COMPACT_SLACK = 32
"""Forgotten entries are purged from a queue's heap once they outnumber the live ones by this."""


@dataclass(slots=True)
class _QueueWakes:
    wake: asyncio.Event
    heap: list[tuple[float, int, str]] = field(default_factory=list)
    """(loop time, instance token, instance id); entries of forgotten instances are skipped."""
    live: int = 0
    handle: asyncio.TimerHandle | None = None


@dataclass(slots=True)
class _Instance:
    token: int
    queue: _QueueWakes
    pending: int = 0


class TimerWakes:
    """Pending timer fire times per control queue (see the module docstring)."""

    def __init__(self) -> None:
        self._queues: dict[int, _QueueWakes] = {}
        self._instances: dict[str, _Instance] = {}
        self._tokens = itertools.count()

    def add(self, instance_id: str, wake: asyncio.Event, delay_seconds: float) -> None:
        """Set `wake` (a control queue's) `delay_seconds` from now, for a timer of `instance_id`."""
        queue = self._queues.setdefault(id(wake), _QueueWakes(wake))
        instance = self._instances.get(instance_id)
        if instance is None:
            instance = self._instances[instance_id] = _Instance(next(self._tokens), queue)
        instance.pending += 1
        queue.live += 1
        when = asyncio.get_running_loop().time() + delay_seconds
        heapq.heappush(queue.heap, (when, instance.token, instance_id))
        self._arm(queue)

    def forget(self, instance_id: str) -> None:
        """`instance_id` waits for none of its timers any more (it finished)."""
        instance = self._instances.pop(instance_id, None)
        if instance is None:
            return
        queue = instance.queue
        queue.live -= instance.pending
        if queue.live == 0:
            queue.heap.clear()
            self._disarm(queue)
        elif len(queue.heap) > 2 * queue.live + _COMPACT_SLACK:
            queue.heap = [entry for entry in queue.heap if self._is_live(entry)]
            heapq.heapify(queue.heap)

    def next_due(self) -> float | None:
        """Loop time of the earliest armed wake-up (never later than the earliest live timer)."""
        armed = [q.handle.when() for q in self._queues.values() if q.handle is not None]
        return min(armed, default=None)

    def _is_live(self, entry: tuple[float, int, str]) -> bool:
        instance = self._instances.get(entry[2])
        return instance is not None and instance.token == entry[1]

    def _arm(self, queue: _QueueWakes) -> None:
        """Make sure the queue's handle runs no later than its earliest live fire time."""
        while queue.heap and not self._is_live(queue.heap[0]):
            heapq.heappop(queue.heap)
        if not queue.heap:
            self._disarm(queue)
            return
        when = queue.heap[0][0]
        if queue.handle is not None and queue.handle.when() <= when:
            return  # an earlier (possibly forgotten) time: it re-arms when it runs
        self._disarm(queue)
        queue.handle = asyncio.get_running_loop().call_at(when, self._fire, queue)

    def _fire(self, queue: _QueueWakes) -> None:
        due = max(queue.handle.when() if queue.handle else 0.0, asyncio.get_running_loop().time())
        queue.handle = None
        while queue.heap and queue.heap[0][0] <= due:
            entry = heapq.heappop(queue.heap)
            if self._is_live(entry):
                instance = self._instances[entry[2]]
                instance.pending -= 1
                queue.live -= 1
                if instance.pending == 0:
                    del self._instances[entry[2]]
        queue.wake.set()
        self._arm(queue)

    @staticmethod
    def _disarm(queue: _QueueWakes) -> None:
        if queue.handle is not None:
            queue.handle.cancel()
            queue.handle = None
