"""`TaskHubWorker`: partition ownership, the orchestration dispatcher and the activity dispatcher."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from ..storage.partition_ownership import OwnershipDeadlines
from ..storage.task_hub import TaskHub
from ..tracing import Tracing
from ..tracking import TrackingLog
from .activity_dispatcher import ActivityDispatcher
from .held_messages import HeldMessages
from .options import WorkerOptions
from .orchestration_dispatcher import OrchestrationDispatcher
from .ownership_thread import OwnershipThread
from .registry import FunctionRegistry
from .storage_limiter import StorageLimiter

__all__ = ["TaskHubWorker", "WorkerLoad", "WorkerOptions"]

log = logging.getLogger("durable_ext.worker")


@dataclass(frozen=True)
class WorkerLoad:
    """What a worker is doing right now (read on its event loop)."""

    orchestrations: int
    """Instances whose control-queue messages are being processed."""
    activities: int
    """Work items taken and not yet settled."""
    next_timer_due: float | None
    """Loop time (`time.monotonic()`) of the earliest durable timer this worker waits for."""

    @property
    def busy(self) -> bool:
        return bool(self.orchestrations or self.activities)


class TaskHubWorker:
    """Runs a registry's orchestrations and activities on a task hub, alongside other workers."""

    def __init__(
        self, hub: TaskHub, registry: FunctionRegistry, options: WorkerOptions | None = None
    ) -> None:
        self.hub = hub
        self.options = options or WorkerOptions(partition_count=hub.partition_count)
        hub.tracking = TrackingLog(
            hub.names.hub,
            trace_inputs_and_outputs=self.options.trace_inputs_and_outputs,
            trace_replay_events=self.options.trace_replay_events,
        )
        hub.tracing = Tracing(self.options.distributed_tracing)
        self.storage = StorageLimiter(self.options.max_storage_operation_concurrency)
        """One bound on storage operations for the whole worker (shared by its dispatchers)."""
        self.held = HeldMessages(self.storage)
        deadlines = OwnershipDeadlines()
        self.orchestrations = OrchestrationDispatcher(
            hub, registry, self.options, self.held, self.storage, deadlines
        )
        self.held.may_renew = self.orchestrations.may_hold
        self.activities = ActivityDispatcher(hub, registry, self.options, self.held)
        if self.options.in_process_handoff:
            self.orchestrations.local_activities = self.activities
            self.activities.local_orchestrations = self.orchestrations
            if self.options.client_handoff:
                for queue in hub.control_queues:
                    queue.local_consumer = self.orchestrations
        max_age = self.options.status_read_max_age.total_seconds()
        if max_age > 0:
            hub.instances.status_reads.enable(self.orchestrations.owns, max_age)
        self.leases = OwnershipThread(
            hub,
            self.options,
            on_acquired=self.orchestrations.start_partition,
            on_drain=self.orchestrations.drain_partition,
            on_lost=self.orchestrations.stop_partition,
            deadlines=deadlines,
        )
        """Partition ownership (app lease and partition manager), on a thread of its own."""
        self._started = False

    async def start(self) -> None:
        """Create the hub if needed, take partition leases and start both dispatchers."""
        began = time.monotonic()
        self.hub.tracking.information(f"Starting task hub worker. WorkerId: {self.options.worker_id}")
        await self.hub.create_if_not_exists()
        self.held.start()
        self.activities.start()
        await self.leases.start()
        self._started = True
        log.info("Worker %s started on hub %s", self.options.worker_id, self.hub.names.hub)
        latency = round((time.monotonic() - began) * 1000)
        self.hub.tracking.information(f"Task hub worker started. Latency: {latency} ms")

    def load(self) -> WorkerLoad:
        """In-flight work and the next timer (call on the worker's event loop)."""
        return WorkerLoad(
            self.orchestrations.in_flight,
            self.activities.in_flight,
            self.orchestrations.next_timer_due(),
        )

    async def stop(self) -> None:
        """Stop taking work, let in-flight work finish (up to the shutdown timeout), release leases."""
        if not self._started:
            return
        self._started = False
        timeout = self.options.shutdown_timeout.total_seconds()
        for queue in self.hub.control_queues:
            queue.local_consumer = None
        self.hub.instances.status_reads.disable()
        await self.activities.stop(timeout)
        await self.orchestrations.stop(timeout)
        await self.leases.stop(release=True)
        await self.held.stop()
        log.info("Worker %s stopped", self.options.worker_id)
