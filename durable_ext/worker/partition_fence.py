"""The worker's side of partition ownership: may it still act on a partition, right now?

A partition is actionable while its ownership deadline (`storage.partition_ownership`, renewed on
the ownership thread) lies ahead and the dispatcher has not revoked it (the manager said it is
lost, or the deadline passed once: a revoked partition stays revoked until it is acquired again,
even if a late renewal moves the deadline). The dispatcher asks right before every request it makes
for a partition's instances (receive, send, history write, Instances merge, delete), never from an
answer it got before an `await`, and the REST transport asks again before every attempt of every
request (retries included) through `ownership_guard`, so a worker that was frozen past the
deadline starts no write when it wakes up.
"""

from __future__ import annotations

from collections.abc import Callable

from ..storage.partition_ownership import OwnershipDeadlines, OwnershipLostError

__all__ = ["PartitionFence"]


class PartitionFence:
    """Ownership deadlines plus the partitions the dispatcher has revoked."""

    def __init__(self, deadlines: OwnershipDeadlines) -> None:
        self.deadlines = deadlines
        self._revoked: set[int] = set()

    def may_act(self, index: int) -> bool:
        return index not in self._revoked and self.deadlines.valid(index)

    def check(self, index: int) -> None:
        """Raise `OwnershipLostError` unless this worker may act on partition `index`."""
        if not self.may_act(index):
            raise OwnershipLostError(f"partition {index} is no longer owned by this worker")

    def guard(self, index: int) -> Callable[[], bool]:
        """For `ownership_guard`: the REST transport asks it before every request attempt."""
        return lambda: self.may_act(index)

    def revoke(self, index: int) -> bool:
        """Revoke `index`; False when it was revoked already."""
        if index in self._revoked:
            return False
        self._revoked.add(index)
        return True

    def restore(self, index: int) -> None:
        """`index` was acquired (again)."""
        self._revoked.discard(index)

    def deadline(self, index: int) -> float | None:
        return self.deadlines.deadline(index)
