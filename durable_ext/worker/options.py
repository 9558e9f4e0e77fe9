"""Worker tuning, with DTFx / Durable Functions defaults."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from datetime import timedelta

from ..orchestration.executor import ReplayOptions

__all__ = ["WorkerOptions"]


def _default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(slots=True)
class WorkerOptions:
    """How a worker polls, leases and runs work (see docs/configuration.md)."""

    partition_count: int = 4
    control_queue_batch_size: int = 32
    control_queue_buffer_threshold: int = 256
    control_queue_visibility_timeout: timedelta = timedelta(minutes=5)
    work_item_queue_visibility_timeout: timedelta = timedelta(minutes=5)
    max_queue_polling_interval: timedelta = timedelta(seconds=30)
    max_concurrent_activity_functions: int = 10 * (os.cpu_count() or 1)
    max_concurrent_orchestrator_functions: int = 10 * (os.cpu_count() or 1)
    lease_interval: timedelta = timedelta(seconds=30)
    lease_renew_interval: timedelta = timedelta(seconds=10)
    lease_acquire_interval: timedelta = timedelta(seconds=10)
    worker_id: str = field(default_factory=_default_worker_id)
    replay: ReplayOptions = field(default_factory=ReplayOptions)
    shutdown_timeout: timedelta = timedelta(seconds=30)
