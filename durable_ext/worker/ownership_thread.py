"""Partition ownership on a thread of its own, so renewals never wait for the worker's event loop.

Orchestrators run synchronously inside the worker's event loop: a replay that computes for longer
than the lease interval would otherwise stop every renewal, the partitions would expire, and the
worker would lose them to others (and, past their deadlines, abandon its own episodes). Here the
app lease and the partition manager (the table manager, or the legacy blob leases) run on a
separate thread with their own event loop and storage clients (and their own token credential).

The worker learns of changes through callbacks that run on its own loop, in order per partition:
`on_acquired` and `on_lost` are posted without waiting (a blocked worker loop must not hold up the
renewals of other partitions; the ownership deadlines, updated on this thread and read by the
dispatcher right before every request, are what keeps a slow worker from acting on a lost
partition), while `on_drain` is awaited: a row is released only when the worker has drained it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from ..storage.app_lease import AppLease
from ..storage.leases import PartitionLeaseManager
from ..storage.partition_ownership import OwnershipDeadlines, PartitionCallback
from ..storage.partition_table import TablePartitionManager
from ..storage.task_hub import TaskHub
from .options import WorkerOptions

__all__ = ["OwnershipThread"]

log = logging.getLogger("durable_ext.leases")

Manager = PartitionLeaseManager | TablePartitionManager


class OwnershipThread:
    """Runs a worker's app lease and partition manager on a dedicated thread."""

    def __init__(
        self,
        hub: TaskHub,
        options: WorkerOptions,
        *,
        on_acquired: PartitionCallback,
        on_drain: PartitionCallback,
        on_lost: PartitionCallback,
        deadlines: OwnershipDeadlines,
    ) -> None:
        self._hub = hub
        self._options = options
        self._callbacks = {"acquired": on_acquired, "drain": on_drain, "lost": on_lost}
        self.deadlines = deadlines
        """Per owned partition, until when the worker may act on it (read from any thread)."""
        self.kind = "legacy" if options.use_legacy_partition_management else "table"
        """Which partition manager runs: "table" (`{Hub}Partitions`) or "legacy" (blob leases)."""
        self._manager: Manager | None = None
        self._app_lease: AppLease | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._worker_loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested: asyncio.Event | None = None
        self._release = True
        self._changed = asyncio.Event()
        self._last: dict[int, asyncio.Task[None]] = {}
        self._posted: set[concurrent.futures.Future[None]] = set()

    # -- worker side -------------------------------------------------------------------------

    @property
    def owned(self) -> frozenset[int]:
        """Indexes of the partitions this worker owns now."""
        return self._manager.owned if self._manager is not None else frozenset()

    @property
    def app_lease_held(self) -> bool:
        """True while this app holds the app lease (always, when the app lease is off)."""
        return self._app_lease is None or self._app_lease.held

    async def start(self) -> None:
        """Start the thread: create the lease stores, try the app lease once and, if held, run
        the partition manager's first pass before returning."""
        if self._thread is not None:
            raise RuntimeError("OwnershipThread is already started")
        self._worker_loop = asyncio.get_running_loop()
        started: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._main(started)), name="partition-ownership", daemon=True
        )
        self._thread.start()
        try:
            await asyncio.wrap_future(started)
        except BaseException:
            await asyncio.to_thread(self._thread.join)
            self._thread = None
            raise

    async def stop(self, release: bool = True) -> None:
        """Stop the thread. `release=True` drains and releases every owned partition (the app
        lease is kept and expires, as in DTFx); False leaves everything to expire, as a crash."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._release = release
        if self._loop is not None and self._stop_requested is not None:
            with contextlib.suppress(RuntimeError):  # its loop has ended already
                self._loop.call_soon_threadsafe(self._stop_requested.set)
        await asyncio.to_thread(thread.join)
        posted = [asyncio.wrap_future(future) for future in self._posted]
        await asyncio.gather(*posted, return_exceptions=True)

    async def wait_until(self, predicate: Callable[[frozenset[int]], bool], timeout: float) -> bool:
        """Wait until `predicate(owned)` holds; False if it still does not after `timeout` seconds."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while not predicate(self.owned):
                    self._changed.clear()
                    if predicate(self.owned):
                        break
                    await self._changed.wait()
                return True
        return predicate(self.owned)

    def _notify_changed(self) -> None:
        self._changed.set()

    async def _in_order(self, kind: str, index: int) -> None:
        """Run a callback on the worker loop after the previous one of the same partition."""
        previous = self._last.get(index)
        current = asyncio.current_task()
        assert current is not None
        self._last[index] = current
        if previous is not None:
            await asyncio.gather(previous, return_exceptions=True)
        try:
            await self._callbacks[kind](index)
        except Exception:
            log.exception("on_%s(%d) failed", kind, index)
        finally:
            if self._last.get(index) is current:
                del self._last[index]

    # -- ownership thread --------------------------------------------------------------------

    def _post(self, kind: str, index: int) -> concurrent.futures.Future[None]:
        assert self._worker_loop is not None
        future = asyncio.run_coroutine_threadsafe(self._in_order(kind, index), self._worker_loop)
        self._posted.add(future)
        future.add_done_callback(self._posted.discard)
        return future

    def _relay(self, kind: str, wait: bool) -> PartitionCallback:
        async def relay(index: int) -> None:
            future = self._post(kind, index)
            if wait:
                await asyncio.wrap_future(future)

        return relay

    async def _main(self, started: concurrent.futures.Future[None]) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_requested = asyncio.Event()
        connection = self._hub.connection.detached()
        blobs = connection.blob_service()
        tables = connection.table_service()
        try:
            try:
                manager = self._manager = self._make_manager(blobs, tables)
                await manager.create_store()
                app_runner = await self._start_app_lease(blobs, manager)
            except Exception as error:  # noqa: BLE001 - handed to start()'s caller
                started.set_exception(error)
                return
            started.set_result(None)
            await self._stop_requested.wait()
            if app_runner is not None:
                app_runner.cancel()
                await asyncio.gather(app_runner, return_exceptions=True)
            await manager.stop(release=self._release)
        finally:
            await asyncio.gather(blobs.close(), tables.close(), return_exceptions=True)
            await connection.close()

    def _make_manager(self, blobs: Any, tables: Any) -> Manager:
        options = self._options
        hub = self._hub
        common: dict[str, Any] = {
            "lease_interval": options.lease_interval,
            "acquire_interval": options.lease_acquire_interval,
            "on_acquired": self._relay("acquired", wait=False),
            "on_lost": self._relay("lost", wait=False),
            "deadlines": self.deadlines,
        }
        manager: Manager
        if options.use_legacy_partition_management:
            manager = PartitionLeaseManager(
                blobs,
                hub.names.hub,
                hub.partition_count,
                options.worker_id,
                renew_interval=options.lease_renew_interval,
                **common,
            )
        else:
            manager = TablePartitionManager(
                tables,
                hub.names.hub,
                hub.partition_count,
                options.worker_id,
                operation_timeout=options.partition_table_operation_timeout,
                drain_timeout=options.drain_timeout,
                on_drain=self._relay("drain", wait=True),
                **common,
            )
        worker_loop = self._worker_loop
        assert worker_loop is not None

        def changed() -> None:
            worker_loop.call_soon_threadsafe(self._notify_changed)

        manager.on_change = changed
        return manager

    async def _start_app_lease(self, blobs: Any, manager: Manager) -> asyncio.Task[None] | None:
        """Without the app lease, start the manager. With it: one attempt now (and the first
        pass if it succeeds); the rest in the background."""
        options = self._options
        if not options.use_app_lease:
            await manager.start()
            return None
        app_lease = self._app_lease = AppLease(
            blobs,
            self._hub.names.hub,
            options.app_name,
            lease_interval=options.app_lease_interval,
            renew_interval=options.app_lease_renew_interval,
            acquire_interval=options.app_lease_acquire_interval,
        )
        await app_lease.create()
        held = await app_lease.acquire()
        if held:
            await manager.start()

        async def stop_manager() -> None:
            await manager.stop(release=True)

        work: Awaitable[None] = app_lease.run(manager.start, stop_manager, held=held)
        return asyncio.ensure_future(work)
