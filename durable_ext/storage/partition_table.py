"""Partition ownership through the `{Hub}Partitions` table: DTFx's table partition manager ("V3",
`TablePartitionManager.cs`), the default of Durable Functions v3 and of this package.

One row per control queue: PartitionKey `""`, RowKey the queue name (`{h}-control-NN`), and
`CurrentOwner` (worker id, absent when free), `NextOwner` (the worker waiting to take it over),
`OwnedSince`, `LastRenewal`, `ExpiresAt` (UTC), `IsDraining`. Every change is a Replace
conditioned on the ETag just read; a 412 ends the pass and the next pass re-reads at once.

One pass (every `acquire_interval`; every second while draining or waiting for a release; at
once after a failure, up to 10 in a row) reads every row, then for each:

* owned by someone else but still served here (this worker lost it without noticing): stop now;
* **claim** it when free (no owner, no next owner), expired (`now >= ExpiresAt`, by this
  worker's clock) or released to this worker (no owner, `NextOwner` = me): owner = me;
* someone else's row: counted for balancing under its owner (under `NextOwner` while it moves);
  if its owner is shutting down (`IsDraining` and no `NextOwner`), **steal** it (`NextOwner` = me);
* my row: **renew** (`LastRenewal` = now, `ExpiresAt` = now + `lease_interval`) while nobody
  wants it; once a `NextOwner` is set, **drain**: stop taking its messages, finish or give back
  what is held (`on_drain`, at most `drain_timeout`), renewing meanwhile with `IsDraining` set;
  when the drain is done, **release** (`CurrentOwner` removed, `IsDraining` false); the next
  owner claims it on its next pass.

Then balance: `target = partitions // (other owners + 1)`; from each owner above target take
(`NextOwner` = me) as many as this worker lacks, or one when it is at target and the other is
more than one above. A graceful stop drains and releases every owned row.

Unlike DTFx as written, this worker serves a queue only while the row names it `CurrentOwner` and
is not draining (DTFx also starts listening on a row it has merely stolen or just released, and
stops again on the next pass). The ownership deadline (`partition_ownership`) is refreshed by each
successful claim or renewal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import AzureError, HttpResponseError, ResourceExistsError
from azure.data.tables import TableEntity, UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient

from .names import TaskHubNames
from .partition_ownership import (
    OwnershipDeadlines,
    PartitionCallback,
    PartitionOwnership,
)

__all__ = ["TablePartitionManager", "PARTITION_KEY"]

logger = logging.getLogger("durable_ext.leases")

PARTITION_KEY = ""
_CLAIM_EXPIRY = timedelta(minutes=1)
"""DTFx writes this expiry on a claim (the same pass then renews it to `lease_interval`)."""
_BUSY_SLEEP = 1.0
"""Seconds between passes while draining or waiting for a release (DTFx)."""
_MAX_FAILURES = 10
_SHUTDOWN_TIMEOUT = timedelta(minutes=10)


class _EtagConflictError(Exception):
    """Another worker changed a row since this pass read it."""


@dataclass(slots=True)
class _Pass:
    """What one pass saw (DTFx `ReadTableReponse`)."""

    draining: bool = False
    waiting: bool = False
    owned: int = 0


class _Row:
    """One Partitions row as read, with its ETag, and what this pass changed in it."""

    def __init__(self, entity: TableEntity) -> None:
        self.row_key: str = entity["RowKey"]
        self.current_owner: str | None = entity.get("CurrentOwner") or None
        self.next_owner: str | None = entity.get("NextOwner") or None
        self.owned_since: datetime | None = entity.get("OwnedSince")
        self.last_renewal: datetime | None = entity.get("LastRenewal")
        self.expires_at: datetime | None = entity.get("ExpiresAt")
        self.is_draining = bool(entity.get("IsDraining", False))
        self.etag: str = entity.metadata["etag"] or ""

    def entity(self) -> dict[str, Any]:
        values: dict[str, Any] = {
            "PartitionKey": PARTITION_KEY,
            "RowKey": self.row_key,
            "CurrentOwner": self.current_owner,
            "NextOwner": self.next_owner,
            "OwnedSince": self.owned_since,
            "LastRenewal": self.last_renewal,
            "ExpiresAt": self.expires_at,
            "IsDraining": self.is_draining,
        }
        return {key: value for key, value in values.items() if value is not None}


class TablePartitionManager(PartitionOwnership):
    """Owns a fair share of a task hub's partitions through `{Hub}Partitions` rows, handing
    partitions over by draining. Callbacks: `on_acquired(index)`, `on_drain(index)` (stop taking
    messages, settle what is held; the row is released when it returns) and `on_lost(index)`."""

    def __init__(
        self,
        table_service: TableServiceClient,
        hub_name: str,
        partition_count: int,
        worker_id: str,
        *,
        lease_interval: timedelta = timedelta(seconds=30),
        acquire_interval: timedelta = timedelta(seconds=10),
        operation_timeout: timedelta = timedelta(seconds=2),
        drain_timeout: timedelta = timedelta(seconds=60),
        on_acquired: PartitionCallback | None = None,
        on_drain: PartitionCallback | None = None,
        on_lost: PartitionCallback | None = None,
        deadlines: OwnershipDeadlines | None = None,
    ) -> None:
        if lease_interval <= timedelta(0) or acquire_interval <= timedelta(0):
            raise ValueError("lease_interval and acquire_interval must be positive")
        if acquire_interval >= lease_interval:
            raise ValueError(
                f"acquire_interval ({acquire_interval}) must be shorter than lease_interval "
                f"({lease_interval}): the table manager renews once per pass"
            )
        super().__init__(
            partition_count, worker_id, lease_interval, on_acquired, on_lost, deadlines
        )
        self.names = TaskHubNames(hub_name)
        self._table: TableClient = table_service.get_table_client(self.names.partitions_table)
        self._table_service = table_service
        self._lease_interval = lease_interval
        self._acquire_seconds = acquire_interval.total_seconds()
        self._operation_seconds = operation_timeout.total_seconds()
        self._drain_seconds = drain_timeout.total_seconds()
        self._on_drain = on_drain
        self._indexes = {self.names.control_queue(i): i for i in range(partition_count)}
        self._drains: dict[int, asyncio.Task[None]] = {}
        self._shutting_down = False
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None

    # -- public ----------------------------------------------------------------------------

    async def create_store(self) -> None:
        """Create the Partitions table and one free row per partition (idempotent, race-safe;
        existing rows are never overwritten)."""
        with contextlib.suppress(ResourceExistsError):
            await self._table_service.create_table(self.names.partitions_table)
        await asyncio.gather(*(self._insert_row(name) for name in self._indexes))
        others = [e["RowKey"] async for e in self._table.list_entities(select=["RowKey"])]
        unknown = sorted(set(others) - set(self._indexes))
        if unknown:
            raise ValueError(
                f"{self.names.partitions_table} has rows for control queues this hub does not "
                f"have with {self.partition_count} partitions ({', '.join(unknown)}): the hub "
                "was created with another partition count, which cannot change"
            )

    async def start(self) -> None:
        """Start the pass loop; the first pass completes before this returns."""
        if self._loop_task is not None:
            raise RuntimeError("TablePartitionManager is already started")
        self._shutting_down = False
        self._wake.clear()
        first = await self._guarded_pass()
        self._loop_task = asyncio.create_task(self._run(first), name="partition-table")

    async def stop(self, release: bool = True) -> None:
        """`release=True`: drain and release every owned row (others take them over at once),
        then stop; after 10 minutes the rest is left to expire. `release=False`: stop now and
        leave the rows to expire, as a crash would."""
        task, self._loop_task = self._loop_task, None
        if task is None:
            return
        if release:
            self._shutting_down = True
            self._wake.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(task), _SHUTDOWN_TIMEOUT.total_seconds())
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        for drain in self._drains.values():
            drain.cancel()
        await asyncio.gather(*self._drains.values(), return_exceptions=True)
        self._drains.clear()
        await asyncio.gather(*(self._lose(index, "stopped") for index in self.owned))

    # -- loop ------------------------------------------------------------------------------

    async def _run(self, last: _Pass | None) -> None:
        failures = 0 if last is not None else 1
        while True:
            if self._shutting_down and last is not None and last.owned == 0:
                logger.info("Released every partition for shutdown")
                return
            if last is None:
                failures += 1
            else:
                failures = 0
            if 0 < failures < _MAX_FAILURES:
                sleep = 0.0
            elif last is not None and (last.draining or last.waiting or self._shutting_down):
                sleep = min(_BUSY_SLEEP, self._acquire_seconds)
            else:
                sleep = self._acquire_seconds
            # A stop, or a finished drain, ends the sleep early: a drained row is released at
            # once (DTFx waits for its next pass, up to a second later).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(sleep):
                    await self._wake.wait()
            self._wake.clear()
            last = await self._guarded_pass()
            if last is None:
                await self._lose_lapsed()

    async def _lose_lapsed(self) -> None:
        """After a failed pass: give up the partitions whose ownership deadline has passed (the
        worker has stopped them already; others may claim them by now)."""
        for index in sorted(self.owned):
            if not self.deadlines.valid(index):
                await self._lose(index, "not renewed before its ownership deadline")

    async def _guarded_pass(self) -> _Pass | None:
        try:
            async with asyncio.timeout(self._operation_seconds):
                return await self._pass()
        except _EtagConflictError:
            return None
        except TimeoutError:
            logger.warning(
                "Reading and writing the partition table took longer than %.0f s; retrying",
                self._operation_seconds,
            )
        except AzureError as error:
            logger.warning("Partition table pass failed, retrying: %r", error)
        except Exception:
            logger.exception("Partition table pass failed unexpectedly, retrying")
        return None

    async def _pass(self) -> _Pass:
        rows = [_Row(entity) async for entity in self._table.list_entities()]
        rows = [row for row in rows if row.row_key in self._indexes]
        rows.sort(key=lambda row: row.row_key)
        seen = _Pass()
        others: dict[str, list[_Row]] = {}
        for row in rows:
            index = self._indexes[row.row_key]
            if row.current_owner != self.worker_id and index in self.owned:
                await self._lose(index, f"now owned by {row.current_owner or 'nobody'}")
            await self._visit(index, row, seen, others)
        if not self._shutting_down:
            await self._balance(rows, others, seen)
        return seen

    async def _visit(
        self, index: int, row: _Row, seen: _Pass, others: dict[str, list[_Row]]
    ) -> None:
        """One row of a pass: decide, write if anything changed, then tell the worker."""
        me = self.worker_id
        now = datetime.now(UTC)
        claimed = stole = renewed = released = False
        if not self._shutting_down:
            expired = row.expires_at is not None and now >= row.expires_at
            free = row.current_owner is None and row.next_owner is None
            released_to_me = row.current_owner is None and row.next_owner == me
            if free or expired or released_to_me:
                self._claim(row, now)
                claimed = True
            if row.current_owner != me:
                if row.next_owner is None and not row.is_draining and row.current_owner:
                    others.setdefault(row.current_owner, []).append(row)
                elif row.next_owner == me:
                    seen.owned += 1
                    seen.waiting = True
                elif row.next_owner is not None:
                    others.setdefault(row.next_owner, []).append(row)
                elif row.is_draining and row.current_owner:
                    row.next_owner = me  # its owner is shutting down
                    stole = seen.waiting = True
            elif row.next_owner is None:
                seen.owned += 1
                self._renew(row, now)
                renewed = True
            else:
                seen.draining = True
                renewed, released = self._drain_step(index, row, now)
                seen.owned += 0 if released else 1
        elif row.current_owner == me:
            seen.draining = True
            renewed, released = self._drain_step(index, row, now)
            seen.owned += 0 if released else 1
        if not (claimed or stole or renewed or released):
            return
        sent_at = time.monotonic()
        await self._replace(row)
        if stole:
            logger.info(
                "Stealing partition %d from %s, which is shutting down", index, row.current_owner
            )
        if released:
            logger.info("Released partition %d to %s", index, row.next_owner or "anyone")
            await self._lose(index, "released")
            return
        if row.current_owner == me:
            lapsed = self._renewed(index, sent_at)
            if index not in self.owned and not row.is_draining:
                await self._gain(index)
            elif lapsed and index in self.owned and not row.is_draining:
                logger.info("Renewed partition %d after its ownership deadline", index)
                await self._call_acquired(index)

    def _claim(self, row: _Row, now: datetime) -> None:
        row.current_owner = self.worker_id
        row.next_owner = None
        row.owned_since = row.last_renewal = now
        row.expires_at = now + _CLAIM_EXPIRY
        row.is_draining = False

    def _renew(self, row: _Row, now: datetime) -> None:
        row.last_renewal = now
        row.expires_at = now + self._lease_interval

    def _drain_step(self, index: int, row: _Row, now: datetime) -> tuple[bool, bool]:
        """Start or follow the drain of a row this worker must hand over: (renewed, released)."""
        drain = self._drains.get(index)
        if drain is not None and drain.done():
            del self._drains[index]
            row.current_owner = None
            row.is_draining = False
            return False, True
        if drain is None:
            logger.info("Draining partition %d for %s", index, row.next_owner or "shutdown")
            self._drains[index] = asyncio.create_task(self._drain(index))
            row.is_draining = True
        self._renew(row, now)
        return True, False

    async def _drain(self, index: int) -> None:
        try:
            await self._drain_with_timeout(index)
        finally:
            self._wake.set()

    async def _drain_with_timeout(self, index: int) -> None:
        if self._on_drain is None:
            return
        try:
            async with asyncio.timeout(self._drain_seconds):
                await self._on_drain(index)
        except TimeoutError:
            logger.warning(
                "Draining partition %d took over %.0f s; releasing it anyway",
                index,
                self._drain_seconds,
            )
        except Exception:
            logger.exception("on_drain(%d) failed; releasing the partition", index)

    async def _balance(self, rows: list[_Row], others: dict[str, list[_Row]], seen: _Pass) -> None:
        if not others:
            return
        target = len(rows) // (len(others) + 1)
        if target < seen.owned:
            return
        for owned_rows in others.values():
            wanted = target - seen.owned
            if wanted < 0:
                break
            excess = len(owned_rows) - target
            if excess <= 0:
                continue
            if wanted == 0 and excess > 1:
                wanted = 1
            for row in owned_rows[: min(wanted, excess)]:
                seen.owned += 1
                previous = row.current_owner
                row.next_owner = self.worker_id
                await self._replace(row)
                logger.info("Stealing partition %d from %s", self._indexes[row.row_key], previous)
                seen.waiting = True

    # -- storage and callbacks -------------------------------------------------------------

    async def _insert_row(self, row_key: str) -> None:
        with contextlib.suppress(ResourceExistsError):
            await self._table.create_entity(
                {"PartitionKey": PARTITION_KEY, "RowKey": row_key, "IsDraining": False}
            )

    async def _replace(self, row: _Row) -> None:
        try:
            await self._table.update_entity(
                row.entity(),
                mode=UpdateMode.REPLACE,
                etag=row.etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except HttpResponseError as error:
            if error.status_code == 412:
                logger.info("Partition row %s changed since it was read; re-reading", row.row_key)
                raise _EtagConflictError from error
            raise

    async def _gain(self, index: int) -> None:
        self._set_owned(index, True)
        logger.info("Acquired partition %d", index)
        if not await self._call_acquired(index):
            self._set_owned(index, False)
            await self._call_lost(index)

    async def _lose(self, index: int, reason: str) -> None:
        """Forget a partition (its deadline first), stop any drain of it, then `on_lost`."""
        if index not in self.owned:
            return
        self._set_owned(index, False)
        drain = self._drains.pop(index, None)
        if drain is not None:
            drain.cancel()
        if reason != "released":
            logger.info("Lost partition %d: %s", index, reason)
        await self._call_lost(index)
