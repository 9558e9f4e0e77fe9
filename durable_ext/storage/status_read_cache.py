"""Status reads answered in memory for the instances this process's worker owns.

While a worker owns an instance's partition it is the only writer of the instance's Instances row,
except a client in another process creating or purging it. So a status read (`get_status`, the
status check of `raise_event`, the HTTP status endpoint) of such an instance can be answered with
the row this process last read, as long as no write by this process has touched the row since that
read began, and the read is at most `max_age` old: the bound on how late this process sees another
process's create or purge. Reads by the worker itself never use it (its decisions need the row as
stored).

Every write to the Instances table in this process goes through `InstanceStore`, which reports it
here when it completes: a read that began before a write completed is not kept.
"""

from __future__ import annotations

import dataclasses
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .instance_store import InstanceRow

__all__ = ["StatusReadCache"]

_CAPACITY = 10_000


class StatusReadCache:
    """Rows read for status, kept while they are provably current (see the module docstring).
    Off until `enable` names who owns which instance."""

    def __init__(self, capacity: int = _CAPACITY) -> None:
        self._capacity = capacity
        self._owned: Callable[[str], bool] | None = None
        self._max_age = 0.0
        self._clock = 0
        """Counts completed writes; a read remembers its value when it begins."""
        self._written: OrderedDict[str, int] = OrderedDict()
        self._forgotten = 0
        """The newest write evicted from `_written`: reads begun before it are not kept."""
        self._rows: OrderedDict[str, tuple[float, bool, InstanceRow | None]] = OrderedDict()
        """Per instance: when it was read, whether with its payloads, the row."""

    def enable(self, owned: Callable[[str], bool], max_age: float) -> None:
        """Answer reads of the instances `owned` says this process's worker owns."""
        self._owned, self._max_age = owned, max_age
        self._rows.clear()

    def disable(self) -> None:
        self._owned = None
        self._rows.clear()

    def _usable(self, instance_id: str) -> bool:
        return self._owned is not None and self._max_age > 0 and self._owned(instance_id)

    def lookup(self, instance_id: str, payloads: bool) -> tuple[bool, InstanceRow | None]:
        """(True, a copy of the row or None for no row) when it may be answered from memory;
        `payloads`: the row must have been read with its payload blobs."""
        entry = self._rows.get(instance_id)
        if entry is None or not self._usable(instance_id):
            return False, None
        read_at, with_payloads, row = entry
        if payloads and not with_payloads:
            return False, None
        if time.monotonic() - read_at > self._max_age:
            del self._rows[instance_id]
            return False, None
        return True, dataclasses.replace(row) if row is not None else None

    def begin_read(self) -> int:
        """The mark to give `store` with the row this read returns."""
        return self._clock

    def store(
        self, instance_id: str, began: int, row: InstanceRow | None, payloads: bool
    ) -> None:
        """Keep a row read since `began` (`payloads`: with its payload blobs), unless a write may
        have overtaken the read."""
        if not self._usable(instance_id):
            return
        if began < self._forgotten or self._written.get(instance_id, -1) > began:
            return
        self._rows[instance_id] = (
            time.monotonic(),
            payloads,
            dataclasses.replace(row) if row is not None else None,
        )
        self._rows.move_to_end(instance_id)
        if len(self._rows) > self._capacity:
            self._rows.popitem(last=False)

    def written(self, instance_id: str) -> None:
        """A write to the row completed (or failed): forget the row, fence reads in flight."""
        self._clock += 1
        self._written[instance_id] = self._clock
        self._written.move_to_end(instance_id)
        if len(self._written) > self._capacity:
            _, clock = self._written.popitem(last=False)
            self._forgotten = max(self._forgotten, clock)
        self._rows.pop(instance_id, None)
