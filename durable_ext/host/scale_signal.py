"""The scale-out signal: the engine tells the platform how many instances its backlog needs.

The platform's scale controller reads only the queues of native triggers, so the engine that owns
partition 0 (one per task hub) measures the backlog every 10 seconds (`scaleSignalInterval`) and
tops the wake-up queue up to the length that target-based scaling turns into that many instances
(`length / batchSize`, rounded up). Each message is consumed by an invocation of
`durabletask_wakeup` that starts that instance's engine and holds while it has work; once the
backlog is gone the holds end, their messages are deleted, and the platform scales in.

The backlog is counted as Durable Functions' own scaler counts it, with one difference: control
queues are peeked (visible messages, up to 32 each), not counted, because their approximate
length includes durable timers waiting to come due, which need no instance now.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass

from ..storage.task_hub import TaskHub
from ..worker.options import WorkerOptions

__all__ = [
    "MAX_WAKE_MESSAGES_PER_ROUND",
    "Backlog",
    "instances_wanted",
    "measure_backlog",
    "signal_scale",
    "wake_messages_missing",
]

MAX_WAKE_MESSAGES_PER_ROUND = 64
"""At most this many messages per round: the request grows over a few rounds, as the platform
adds instances a few at a time anyway."""


@dataclass(frozen=True, slots=True)
class Backlog:
    """Work waiting in the task hub's queues."""

    work_items: int
    """Activity messages (approximate count: the work-item queue holds no delayed messages)."""
    visible_control_messages: tuple[int, ...]
    """Per control queue, visible messages (up to 32 each)."""


def instances_wanted(backlog: Backlog, options: WorkerOptions) -> int:
    """Instances the backlog needs: activities by `maxConcurrentActivityFunctions` each (without
    limit), orchestrations by `maxConcurrentOrchestratorFunctions` each, at most one per control
    queue with visible messages (a partition runs on one instance)."""
    activities = math.ceil(backlog.work_items / options.max_concurrent_activity_functions)
    busy_partitions = sum(1 for count in backlog.visible_control_messages if count > 0)
    waiting = sum(backlog.visible_control_messages)
    orchestrations = min(
        busy_partitions, math.ceil(waiting / options.max_concurrent_orchestrator_functions)
    )
    return max(activities, orchestrations)


def wake_messages_missing(wanted: int, queue_length: int, batch_size: int) -> int:
    """Messages to add so that `ceil(length / batch_size)`, the platform's target, reaches
    `wanted` (never more than MAX_WAKE_MESSAGES_PER_ROUND at once; none to remove)."""
    if wanted <= 0:
        return 0
    target_length = (wanted - 1) * batch_size + 1
    return max(0, min(target_length - queue_length, MAX_WAKE_MESSAGES_PER_ROUND))


async def measure_backlog(hub: TaskHub) -> Backlog:
    """The backlog of `hub` (one count and one peek per control queue)."""
    work_items, *control = await asyncio.gather(
        hub.work_items.count(), *(queue.visible_count() for queue in hub.control_queues)
    )
    return Backlog(work_items, tuple(control))


async def signal_scale(hub: TaskHub, options: WorkerOptions, batch_size: int) -> int:
    """Measure the backlog and top the wake-up queue up; returns the messages added."""
    backlog, length = await asyncio.gather(measure_backlog(hub), hub.wake_queue.length())
    missing = wake_messages_missing(instances_wanted(backlog, options), length, batch_size)
    if missing:
        await hub.wake_queue.request("backlog", missing)
    return missing
