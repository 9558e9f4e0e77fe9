"""Who owns each partition of a task hub, as the dashboard's task hub view shows it.

Read from the partition manager's own records: today the V1 blob leases (`storage/leases.py`'s
layout, one blob per control queue naming its owner). `partition_owners` is the one function to
change when the partition manager changes.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

from azure.core.exceptions import ResourceNotFoundError

from ..storage.leases import LEASE_DIRECTORY
from ..storage.task_hub import TaskHub

__all__ = ["PartitionOwner", "partition_owners"]


@dataclass(frozen=True, slots=True)
class PartitionOwner:
    """One partition and the worker that holds it (None: nobody holds a live lease)."""

    index: int
    owner: str | None


async def partition_owners(hub: TaskHub) -> list[PartitionOwner]:
    """Every partition of `hub` with its owner, read from the lease blobs."""
    container = hub.blob_service.get_container_client(hub.names.leases_container)

    async def read(index: int) -> PartitionOwner:
        blob = container.get_blob_client(f"{LEASE_DIRECTORY}/{hub.names.control_queue(index)}")
        try:
            download = await blob.download_blob()
            content = json.loads(await download.readall() or b"{}")
        except ResourceNotFoundError:
            return PartitionOwner(index, None)
        leased = download.properties.lease.state == "leased"
        return PartitionOwner(index, (content.get("Owner") or None) if leased else None)

    return list(await asyncio.gather(*(read(i) for i in range(hub.partition_count))))
