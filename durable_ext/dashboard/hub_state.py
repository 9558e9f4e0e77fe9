"""The task hub view's data: partitions and owners, queue depths, workers seen, oldest messages."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from ..storage.queues import TaskHubQueue
from ..storage.task_hub import TaskHub
from .ownership import partition_owners

__all__ = ["task_hub_state"]


async def _queue_state(queue: TaskHubQueue, now: datetime) -> dict[str, Any]:
    """A queue's approximate depth and the age of its head message (None: no such queue yet)."""
    try:
        depth, oldest = await asyncio.gather(queue.count(), queue.oldest_visible_time())
    except ResourceNotFoundError:
        return {"queue": queue.name, "messages": None, "oldestMessageAgeSeconds": None}
    age = max(0.0, (now - oldest).total_seconds()) if oldest is not None else None
    return {"queue": queue.name, "messages": depth, "oldestMessageAgeSeconds": age}


async def task_hub_state(hub: TaskHub, now: datetime) -> dict[str, Any]:
    """What `GET /taskhub` answers (docs/openapi.json, `TaskHubState`)."""
    owners, work_items, *controls = await asyncio.gather(
        partition_owners(hub),
        _queue_state(hub.work_items, now),
        *(_queue_state(queue, now) for queue in hub.control_queues),
    )
    partitions = [
        {"partition": owner.index, "owner": owner.owner, **control}
        for owner, control in zip(owners, controls, strict=True)
    ]
    return {
        "taskHub": hub.names.hub,
        "partitionCount": hub.partition_count,
        "partitions": partitions,
        "workItems": work_items,
        "workers": sorted({owner.owner for owner in owners if owner.owner}),
    }
