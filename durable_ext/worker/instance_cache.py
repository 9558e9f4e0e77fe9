"""The instance cache (DTFx "extended sessions"): replayed orchestrations kept in memory.

An N-step chain then costs O(N) replay in all instead of O(N²), and an episode skips the history
read. Safety: an entry holds only what a checkpoint has already committed, together with the
sentinel ETag that checkpoint returned. The next checkpoint is conditional on that ETag, so if any
other worker wrote the instance in between, the write fails (412), the episode is abandoned and the
instance is reloaded from storage. A cached history is never trusted to *reject* a message either:
if a message would be dropped or put back because of what the cached history says (an older
execution, an unscheduled task, a finished instance), the dispatcher reloads history before
deciding, so a worker that lost a partition without knowing it cannot discard the newer owner's
messages. Entries of a partition are dropped when its lease is lost, and idle entries expire.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from ..orchestration.executor import OrchestrationExecutor
from ..orchestration.history_summary import HistorySummary
from ..orchestration.status import OrchestrationRuntimeStatus
from ..storage.history_store import LoadedHistory

__all__ = ["CachedInstance", "InstanceCache", "StatusMark"]


@dataclass(frozen=True, slots=True)
class StatusMark:
    """What this worker's last Instances merge for an instance wrote, and when (monotonic)."""

    execution_id: str
    runtime_status: OrchestrationRuntimeStatus
    custom_status: str | None
    written_at: float


@dataclass(slots=True)
class CachedInstance:
    """An executor that has processed exactly `history.events`, and the ETag they were stored under."""

    executor: OrchestrationExecutor
    history: LoadedHistory
    summary: HistorySummary
    status: StatusMark | None = None
    last_used: float = field(default_factory=time.monotonic)


class InstanceCache:
    """At most `capacity` instances, least recently used evicted first, expiring after `idle_timeout`."""

    def __init__(self, capacity: int, idle_timeout: float) -> None:
        self._capacity = capacity
        self._idle_timeout = idle_timeout
        self._entries: OrderedDict[str, CachedInstance] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def take(self, instance_id: str) -> CachedInstance | None:
        """Remove and return the entry, unless it has expired."""
        entry = self._entries.pop(instance_id, None)
        if entry is None or time.monotonic() - entry.last_used > self._idle_timeout:
            return None
        return entry

    def put(self, instance_id: str, entry: CachedInstance) -> None:
        if self._capacity <= 0:
            return
        entry.last_used = time.monotonic()
        self._entries[instance_id] = entry
        self._entries.move_to_end(instance_id)
        self._evict()

    def _evict(self) -> None:
        now = time.monotonic()
        while self._entries:
            oldest_id, oldest = next(iter(self._entries.items()))
            if len(self._entries) > self._capacity or now - oldest.last_used > self._idle_timeout:
                del self._entries[oldest_id]
            else:
                break

    def drop_where(self, predicate: Callable[[str], bool]) -> int:
        """Drop every entry whose instance id matches; returns how many."""
        doomed = [instance_id for instance_id in self._entries if predicate(instance_id)]
        for instance_id in doomed:
            del self._entries[instance_id]
        return len(doomed)
