"""Partition ownership through blob leases: DTFx's V1 ("legacy") partition manager.

Layout: container `{h}-leases`, one blob per control queue at `default/{h}-control-NN`. The blob
carries an Azure blob lease while a worker owns the partition, and its JSON content names the
owner: `{"PartitionId": "{h}-control-NN", "Owner": worker id, "Token": lease id, "Epoch": n}`.

Two background loops run per worker (`LeaseCollectionBalancer` in DTFx):

* renew, every `renew_interval`: renew each held lease. 409/412 (lease lost, id mismatch) means
  someone stole or broke it: the partition is lost at once. Any other failure (storage down)
  counts as renewed until the partition's ownership deadline: by then the lease may have
  expired and been taken, so the partition is lost too.
* acquire, every `acquire_interval`: read every lease blob; `target = ceil(partitions / owners)`
  where owners are the distinct owners of leased blobs plus this worker. Below target, take
  available leases (not leased, or no Owner); if none is available, steal one lease per pass
  from the busiest owner. Taking a leased blob uses `change_lease` from the Token stored in its
  content, which is how one worker takes a lease it does not hold. Every lease operation is
  conditioned on the ETag just read, so a stale read never wins, and each take bumps Epoch.
  A live lease whose content names this worker but that it does not hold (a restart with the
  same worker id) is reclaimed by renewing it with its Token, as DTFx does at start-up.

A stolen partition may still be served by its previous owner until that owner's next renewal;
the history-table ETag fences that window (reference §4.2, §4.5). A partition whose renewals fail
is given up at its ownership deadline (`partition_ownership`), not at the next renew attempt.
This manager is the `useLegacyPartitionManagement` option; `partition_table` is the default.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
)
from azure.storage.blob.aio import BlobClient, BlobLeaseClient, BlobServiceClient

from .names import TaskHubNames
from .partition_ownership import OwnershipDeadlines, PartitionCallback, PartitionOwnership

__all__ = ["PartitionLeaseManager"]

logger = logging.getLogger("durable_ext.leases")

LEASE_DIRECTORY = "default"
MIN_LEASE_SECONDS = 15
MAX_LEASE_SECONDS = 60
_LEASE_CONFLICT = (409, 412)


@dataclass(slots=True)
class _Held:
    """A lease this worker holds."""

    token: str
    epoch: int
    renewed_at: float  # time.monotonic() when the last successful acquire or renew was sent


@dataclass(frozen=True, slots=True)
class _LeaseBlob:
    """One lease blob as read: lease state and content at the same ETag."""

    index: int
    leased: bool
    owner: str
    token: str
    epoch: int
    etag: str


def _is_lease_conflict(error: HttpResponseError) -> bool:
    return error.status_code in _LEASE_CONFLICT


def _describe(error: HttpResponseError) -> str:
    return f"{error.status_code} {getattr(error, 'error_code', None) or error.reason}"


class PartitionLeaseManager(PartitionOwnership):
    """Owns a fair share of a task hub's partitions through the V1 blob leases, and tells the
    caller through `on_acquired(index)` / `on_lost(index)`. Per partition the callbacks
    alternate, starting with `on_acquired`, and never overlap."""

    def __init__(
        self,
        blob_service: BlobServiceClient,
        hub_name: str,
        partition_count: int,
        worker_id: str,
        *,
        lease_interval: timedelta = timedelta(seconds=30),
        renew_interval: timedelta = timedelta(seconds=10),
        acquire_interval: timedelta = timedelta(seconds=10),
        on_acquired: PartitionCallback | None = None,
        on_lost: PartitionCallback | None = None,
        deadlines: OwnershipDeadlines | None = None,
    ) -> None:
        lease_seconds = lease_interval.total_seconds()
        if not (
            lease_seconds.is_integer() and MIN_LEASE_SECONDS <= lease_seconds <= MAX_LEASE_SECONDS
        ):
            raise ValueError(
                f"lease_interval must be a whole number of seconds from {MIN_LEASE_SECONDS} to "
                f"{MAX_LEASE_SECONDS} (the Azure blob lease limits), got {lease_interval}"
            )
        if not timedelta(0) < renew_interval < lease_interval:
            raise ValueError(
                f"renew_interval must be positive and shorter than lease_interval ({lease_interval}), "
                f"got {renew_interval}"
            )
        if acquire_interval <= timedelta(0):
            raise ValueError(f"acquire_interval must be positive, got {acquire_interval}")
        super().__init__(
            partition_count, worker_id, lease_interval, on_acquired, on_lost, deadlines
        )
        self.names = TaskHubNames(hub_name)
        self._container = blob_service.get_container_client(self.names.leases_container)
        self._renew_seconds = renew_interval.total_seconds()
        self._acquire_seconds = acquire_interval.total_seconds()
        # Network timeout of each lease call, as DTFx uses LeaseRenewInterval: the SDK's own
        # retries would otherwise hold a call for tens of seconds while storage is down.
        self._call_timeout = self._renew_seconds
        self._held: dict[int, _Held] = {}
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    # -- public ----------------------------------------------------------------------------

    async def create_store(self) -> None:
        """Create the lease store (`create_lease_blobs`)."""
        await self.create_lease_blobs()

    async def create_lease_blobs(self) -> None:
        """Create the leases container and one lease blob per partition. Idempotent and safe when
        several workers race: existing blobs are never overwritten."""
        with contextlib.suppress(ResourceExistsError):
            await self._container.create_container()
        await asyncio.gather(
            *(self._create_lease_blob(index) for index in range(self.partition_count))
        )

    async def start(self) -> None:
        """Start the renew and acquire loops; the first acquire pass completes before this returns."""
        if self._tasks:
            raise RuntimeError("PartitionLeaseManager is already started")
        self._stopping.clear()
        self._tasks.append(asyncio.create_task(self._every(self._renew_seconds, self._renew_all)))
        await self._guarded(self._balance)
        self._tasks.append(asyncio.create_task(self._every(self._acquire_seconds, self._balance)))

    async def stop(self, release: bool = True) -> None:
        """Stop the loops and give up every partition, calling `on_lost` for each.

        `release=True` lets the current passes finish, then for each partition calls `on_lost`
        (so its consumer stops first) and releases the lease: Owner and Token are cleared in the
        content, then the blob lease is released, and other workers take it on their next pass.
        `release=False` cancels the loops and leaves the leases on storage to expire, as a crash
        would."""
        tasks, self._tasks = self._tasks, []
        if release:
            self._stopping.set()
        else:
            for task in tasks:
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        give_up = self._release if release else self._lose
        await asyncio.gather(*(give_up(index, held) for index, held in list(self._held.items())))

    # -- loops -----------------------------------------------------------------------------

    async def _every(self, seconds: float, work: Callable[[], Awaitable[None]]) -> None:
        """Run `work` every `seconds` until stop() is requested."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(seconds):
                    await self._stopping.wait()
            if self._stopping.is_set():
                return
            await self._guarded(work)

    @staticmethod
    async def _guarded(work: Callable[[], Awaitable[None]]) -> None:
        """Run one pass; a failure (storage down, a corrupt blob) is logged and retried next pass."""
        try:
            await work()
        except (AzureError, TimeoutError) as error:
            logger.warning(
                "Lease pass %s failed, retrying on the next pass: %r", work.__name__, error
            )
        except Exception:
            logger.exception(
                "Lease pass %s failed unexpectedly, retrying on the next pass", work.__name__
            )

    async def _renew_all(self) -> None:
        await asyncio.gather(
            *(self._renew(index, held) for index, held in list(self._held.items()))
        )

    async def _renew(self, index: int, held: _Held) -> None:
        started = time.monotonic()
        try:
            async with asyncio.timeout(self._call_timeout):
                await BlobLeaseClient(self._blob(index), held.token).renew()
        except (AzureError, TimeoutError) as error:
            if isinstance(error, HttpResponseError) and _is_lease_conflict(error):
                await self._lose(index, held, f"lease lost ({_describe(error)})")
            else:
                await self._renewal_failed(index, held, error)
        else:
            held.renewed_at = started
            if self._held.get(index) is held and self._renewed(index, started):
                logger.info("Renewed partition %d after its ownership deadline", index)
                await self._call_acquired(index)

    async def _renewal_failed(self, index: int, held: _Held, error: Exception) -> None:
        """Storage trouble: assume the lease is still ours until its ownership deadline."""
        silent = time.monotonic() - held.renewed_at
        if not self.deadlines.valid(index):
            await self._lose(index, held, f"not renewed for {silent:.0f} s ({error!r})")
        else:
            logger.warning(
                "Renewing lease of partition %d failed, assuming still held: %r", index, error
            )

    async def _balance(self) -> None:
        """One acquire pass: reclaim, take available leases up to target, else steal one."""
        async with asyncio.timeout(self._call_timeout):
            read = await asyncio.gather(
                *(self._read(index) for index in range(self.partition_count))
            )
        blobs = [blob for blob in read if blob is not None]
        if not blobs:
            return
        for blob in blobs:
            if (
                blob.leased
                and blob.token
                and blob.owner == self.worker_id
                and blob.index not in self._held
            ):
                await self._reclaim(blob)

        counts: dict[str, int] = {self.worker_id: len(self._held)}
        available: list[_LeaseBlob] = []
        for blob in blobs:
            if blob.index in self._held:
                continue
            if not blob.leased or not blob.owner:
                available.append(blob)
            elif blob.owner != self.worker_id:
                counts[blob.owner] = counts.get(blob.owner, 0) + 1
        target = math.ceil(len(blobs) / len(counts))
        needed = target - len(self._held)
        if needed <= 0:
            return
        if available:
            for blob in available:
                if needed == 0:
                    break
                if await self._take(blob):
                    needed -= 1
            return
        others = {owner: count for owner, count in counts.items() if owner != self.worker_id}
        victim = max(others, key=others.__getitem__, default=None)
        # DTFx: steal only from an owner above target (or at target when I need more than one).
        if victim is None or others[victim] <= target - (1 if needed > 1 else 0):
            return
        for blob in blobs:
            if blob.leased and blob.owner == victim and await self._take(blob):
                logger.info("Stole partition %d from %s", blob.index, victim)
                return

    # -- storage operations ----------------------------------------------------------------

    def _blob(self, index: int) -> BlobClient:
        return self._container.get_blob_client(
            f"{LEASE_DIRECTORY}/{self.names.control_queue(index)}"
        )

    def _content(self, index: int, owner: str, token: str, epoch: int) -> str:
        return json.dumps(
            {
                "PartitionId": self.names.control_queue(index),
                "Owner": owner,
                "Token": token,
                "Epoch": epoch,
            },
            separators=(",", ":"),
        )

    async def _create_lease_blob(self, index: int) -> None:
        with contextlib.suppress(ResourceExistsError):
            await self._blob(index).upload_blob(self._content(index, "", "", 0), overwrite=False)

    async def _read(self, index: int) -> _LeaseBlob | None:
        try:
            download = await self._blob(index).download_blob()
            content = json.loads(await download.readall())
        except ResourceNotFoundError:
            logger.warning("Lease blob of partition %d does not exist", index)
            return None
        properties = download.properties
        return _LeaseBlob(
            index=index,
            leased=properties.lease.state == "leased",
            owner=content.get("Owner") or "",
            token=content.get("Token") or "",
            epoch=int(content.get("Epoch") or 0),
            etag=properties.etag,
        )

    async def _take(self, blob: _LeaseBlob) -> bool:
        """Acquire a free lease, or change a held one away from the Token in its content (DTFx
        `AcquireAsync`), then record this worker in the content. False if another worker won."""
        if blob.leased and not blob.token:
            return False  # leased by someone who never wrote its token: wait for it to expire
        client = self._blob(blob.index)
        unchanged = MatchConditions.IfNotModified
        started = time.monotonic()
        try:
            async with asyncio.timeout(self._call_timeout):
                if blob.leased:
                    lease = BlobLeaseClient(client, blob.token)
                    await lease.change(str(uuid.uuid4()), etag=blob.etag, match_condition=unchanged)
                else:
                    lease = BlobLeaseClient(client)
                    await lease.acquire(
                        int(self._lease_seconds), etag=blob.etag, match_condition=unchanged
                    )
                content = self._content(blob.index, self.worker_id, lease.id, blob.epoch + 1)
                await client.upload_blob(content, overwrite=True, lease=lease)
        except HttpResponseError as error:
            if not _is_lease_conflict(error):
                raise
            logger.info(
                "Partition %d was taken by another worker first (%s)", blob.index, _describe(error)
            )
            return False
        await self._gain(blob.index, _Held(lease.id, blob.epoch + 1, started))
        return True

    async def _reclaim(self, blob: _LeaseBlob) -> None:
        """A live lease whose content names this worker but that it does not hold (a previous
        run of this worker, or a lease given up during an outage): renew it with its Token,
        like DTFx does at start-up."""
        started = time.monotonic()
        try:
            async with asyncio.timeout(self._call_timeout):
                await BlobLeaseClient(self._blob(blob.index), blob.token).renew()
        except HttpResponseError as error:
            if not _is_lease_conflict(error):
                raise
            return
        logger.info("Reclaimed partition %d", blob.index)
        await self._gain(blob.index, _Held(blob.token, blob.epoch, started))

    # -- ownership changes: state first (synchronously), then callbacks in order -----------

    def _keep(self, index: int, held: _Held | None) -> None:
        if held is None:
            del self._held[index]
        else:
            self._held[index] = held
            self._renewed(index, held.renewed_at)
        self._set_owned(index, held is not None)

    async def _gain(self, index: int, held: _Held) -> None:
        self._keep(index, held)
        logger.info("Acquired partition %d (epoch %d)", index, held.epoch)
        if not await self._call_acquired(index):
            await self._release(index, held)

    async def _lose(self, index: int, held: _Held, reason: str = "stopped without release") -> None:
        """Forget a partition without touching storage, then call `on_lost`."""
        if self._held.get(index) is not held:
            return  # already given up by someone else
        self._keep(index, None)
        logger.info("Lost partition %d: %s", index, reason)
        await self._call_lost(index)

    async def _release(self, index: int, held: _Held) -> None:
        """Give up a partition gracefully: `on_lost` first, then release the lease."""
        if self._held.get(index) is not held:
            return
        self._keep(index, None)
        await self._call_lost(index)
        client = self._blob(index)
        lease = BlobLeaseClient(client, held.token)
        try:
            async with asyncio.timeout(self._call_timeout):
                await client.upload_blob(
                    self._content(index, "", "", held.epoch), overwrite=True, lease=lease
                )
                await lease.release()
        except (AzureError, TimeoutError) as error:
            logger.warning(
                "Releasing the lease of partition %d failed, it will expire: %r", index, error
            )
        else:
            logger.info("Released partition %d", index)
