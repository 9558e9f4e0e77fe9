"""Who owns each partition of a task hub, as the dashboard's task hub view shows it.

Read from the partition managers' own records: the `{Hub}Partitions` table of the table
manager (the default: `CurrentOwner` while `ExpiresAt` is ahead), else the legacy blob leases
(`storage/leases.py`'s layout, one blob per control queue naming its owner).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime

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
    """Every partition of `hub` with its owner: from the Partitions table when it names a live
    owner, else from the lease blobs (a hub on the legacy manager)."""
    owners = await _table_owners(hub)
    if owners is not None and any(o.owner for o in owners):
        return owners
    return await _lease_owners(hub)


async def _table_owners(hub: TaskHub) -> list[PartitionOwner] | None:
    """The owners the table manager's rows name (None: the hub has no Partitions table)."""
    table = hub.table_service.get_table_client(hub.names.partitions_table)
    now = datetime.now(UTC)
    rows: dict[str, dict[str, object]] = {}
    try:
        async for entity in table.list_entities():
            rows[str(entity["RowKey"])] = dict(entity)
    except ResourceNotFoundError:
        return None
    found = []
    for index in range(hub.partition_count):
        row = rows.get(hub.names.control_queue(index), {})
        expires = row.get("ExpiresAt")
        live = isinstance(expires, datetime) and expires > now
        found.append(
            PartitionOwner(index, str(row.get("CurrentOwner") or "") or None if live else None)
        )
    return found


async def _lease_owners(hub: TaskHub) -> list[PartitionOwner]:
    """The owners the legacy blob leases name."""
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
