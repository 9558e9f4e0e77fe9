"""Read a task hub's raw storage state straight from Azurite, bypassing durable_ext.

Tests use this to check what durable_ext *wrote* (table rows, queue bodies, blobs) against the DTFx
layout, so nothing here goes through `durable_ext.storage`. Also: an independent FNV-1a and a
polling helper that waits for a condition with a deadline (no fixed sleeps).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, TypeVar

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables.aio import TableServiceClient
from azure.storage.blob.aio import BlobServiceClient
from azure.storage.queue import QueueMessage
from azure.storage.queue.aio import QueueServiceClient

from durable_ext.runtime import Runtime
from durable_ext.worker import FunctionRegistry
from tests.azurite import AzuriteInstance
from tests.worker.conftest import fast_options

__all__ = [
    "RawStorage",
    "fnv1a32_reference",
    "odata_quote",
    "wait_until",
]

T = TypeVar("T")


def fnv1a32_reference(data: bytes) -> int:
    """FNV-1a, 32 bits, written from the published algorithm (not copied from durable_ext)."""
    offset_basis, prime = 0x811C9DC5, 0x01000193
    value = offset_basis
    for byte in data:
        value ^= byte
        value = (value * prime) % (1 << 32)
    return value


def odata_quote(value: str) -> str:
    """An OData string literal (for the tests' own raw queries)."""
    return "'" + value.replace("'", "''") + "'"


async def wait_until(
    condition: Callable[[], Awaitable[T]],
    *,
    timeout: float,
    interval: float = 0.05,
    what: str = "condition",
) -> T:
    """Poll `condition()` until it returns something truthy (returned), or fail at the deadline."""
    deadline = time.monotonic() + timeout
    last: T = await condition()
    while not last:
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")
        await asyncio.sleep(interval)
        last = await condition()
    return last


class RawStorage:
    """Plain Azure SDK service clients on one account. Use as `async with RawStorage(cs) as raw:`."""

    def __init__(self, connection_string: str) -> None:
        self.tables = TableServiceClient.from_connection_string(connection_string)
        self.queues = QueueServiceClient.from_connection_string(connection_string)
        self.blobs = BlobServiceClient.from_connection_string(connection_string)

    async def __aenter__(self) -> RawStorage:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self.tables.close()
        await self.queues.close()
        await self.blobs.close()

    # -- listing ---------------------------------------------------------------------------------
    async def queue_names(self) -> set[str]:
        """Every queue of the account."""
        return {queue.name async for queue in self.queues.list_queues()}

    async def table_names(self) -> set[str]:
        """Every table of the account (as stored: tables keep the case they were created with)."""
        return {table.name async for table in self.tables.list_tables()}

    async def container_names(self) -> set[str]:
        """Every blob container of the account."""
        return {container.name async for container in self.blobs.list_containers()}

    async def blob_names(self, container: str) -> set[str]:
        """Every blob in a container (empty if the container does not exist)."""
        client = self.blobs.get_container_client(container)
        try:
            return {blob.name async for blob in client.list_blobs()}
        except ResourceNotFoundError:
            return set()

    # -- tables ------------------------------------------------------------------------------------
    async def partition(self, table: str, partition_key: str) -> list[dict[str, Any]]:
        """Every row of one partition, sorted by RowKey (as the service returns them)."""
        client = self.tables.get_table_client(table)
        rows = [
            dict(row, etag=row.metadata["etag"])
            async for row in client.query_entities(f"PartitionKey eq {odata_quote(partition_key)}")
        ]
        return sorted(rows, key=lambda r: r["RowKey"])

    async def all_rows(self, table: str) -> list[dict[str, Any]]:
        """Every row of a table."""
        client = self.tables.get_table_client(table)
        return [dict(row, etag=row.metadata["etag"]) async for row in client.list_entities()]

    # -- queues ------------------------------------------------------------------------------------
    async def peek(self, queue: str) -> list[QueueMessage]:
        """The visible messages at the front of a queue (up to 32), without dequeuing them."""
        return list(await self.queues.get_queue_client(queue).peek_messages(max_messages=32))

    async def peek_json(self, queue: str) -> list[dict[str, Any]]:
        """Peeked bodies parsed as JSON (the bodies must be raw UTF-8 JSON, not Base64)."""
        bodies = []
        for message in await self.peek(queue):
            text = str(message.content)
            assert text.startswith("{"), f"queue body is not raw JSON: {text[:80]!r}"
            bodies.append(json.loads(text))
        return bodies

    async def message_count(self, queue: str) -> int:
        """Messages in a queue, visible or not (exact on Azurite)."""
        properties = await self.queues.get_queue_client(queue).get_queue_properties()
        return int(properties.approximate_message_count or 0)

    # -- blobs -------------------------------------------------------------------------------------
    async def download(self, container: str, blob: str) -> bytes:
        stream = await self.blobs.get_blob_client(container, blob).download_blob()
        return bytes(await stream.readall())

    async def download_gzip_text(self, container: str, blob: str) -> str:
        """A gzip blob's content, decompressed as UTF-8."""
        return gzip.decompress(await self.download(container, blob)).decode("utf-8")


def make_runtime(
    registry: FunctionRegistry, azurite: AzuriteInstance, hub: str, *, run_worker: bool = True
) -> Runtime:
    """A Runtime on `hub` with the fast test timings (4 partitions)."""
    return Runtime(
        registry,
        connection=azurite.connection_string,
        hub=hub,
        options=fast_options(),
        run_worker=run_worker,
    )
