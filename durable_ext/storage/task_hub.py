"""A task hub's storage: creates, opens and deletes every resource, and routes messages."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables.aio import TableServiceClient
from azure.storage.blob.aio import BlobLeaseClient, BlobServiceClient
from azure.storage.queue.aio import QueueServiceClient

from ..tracing import Tracing
from ..tracking import TrackingLog
from .connection import StorageConnection
from .history_store import HistoryStore
from .instance_store import InstanceStore
from .large_payloads import LargePayloadStore
from .messages import MessageData
from .names import MAX_PARTITIONS, MIN_PARTITIONS, TaskHubNames, partition_index
from .queues import TaskHubQueue
from .rest.queue_messages import QueueMessages
from .rest.table_rows import TableRows
from .rest.transport import RestTransport
from .wake_queue import WakeQueue

__all__ = ["TaskHub", "TaskHubConfigurationError", "TASK_HUB_INFO_BLOB"]

TASK_HUB_INFO_BLOB = "taskhub.json"


class TaskHubConfigurationError(ValueError):
    """The hub exists with settings that do not match (e.g. another partition count)."""


class TaskHub:
    """Clients and stores for one task hub. Use as `async with TaskHub(...) as hub:`."""

    def __init__(
        self, connection: StorageConnection, hub_name: str, partition_count: int = 4
    ) -> None:
        if not MIN_PARTITIONS <= partition_count <= MAX_PARTITIONS:
            raise TaskHubConfigurationError(
                f"partitionCount must be from {MIN_PARTITIONS} to {MAX_PARTITIONS}, got {partition_count}"
            )
        self.names = TaskHubNames(hub_name)
        self.partition_count = partition_count
        self.tracking = TrackingLog(self.names.hub)
        """Where the hub's tracking events go (a host replaces it with its settings' one)."""
        self.tracing = Tracing()
        """The hub's OpenTelemetry spans: off unless a host switches them on."""
        self.connection = connection
        self._queue_service: QueueServiceClient | None = None
        self._table_service: TableServiceClient | None = None
        self._blob_service: BlobServiceClient | None = None
        self._rest: list[RestTransport] = []

    async def __aenter__(self) -> TaskHub:
        self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def open(self) -> None:
        """Create the clients (no network traffic)."""
        self._queue_service = self.connection.queue_service()
        self._table_service = self.connection.table_service()
        self._blob_service = self.connection.blob_service()
        queue_rest = self.connection.rest_transport("queue")
        table_rest = self.connection.rest_transport("table")
        self._rest = [queue_rest, table_rest]
        names = self.names
        self.payloads = LargePayloadStore(
            self._blob_service.get_container_client(names.large_messages_container)
        )
        self.history = HistoryStore(TableRows(table_rest, names.history_table), self.payloads)
        self.instances = InstanceStore(
            self._table_service.get_table_client(names.instances_table),
            TableRows(table_rest, names.instances_table),
            names.hub,
            self.payloads,
        )
        self.control_queues = [
            self._queue(queue_rest, name) for name in names.control_queues(self.partition_count)
        ]
        self.work_items = self._queue(queue_rest, names.work_item_queue)
        self.wake_queue = WakeQueue(self._queue_service.get_queue_client(names.wake_queue))

    def _queue(self, rest: RestTransport, name: str) -> TaskHubQueue:
        assert self._queue_service is not None
        client = self._queue_service.get_queue_client(name)
        return TaskHubQueue(client, QueueMessages(rest, name), self.payloads)

    @property
    def blob_service(self) -> BlobServiceClient:
        assert self._blob_service is not None, "TaskHub is not open"
        return self._blob_service

    @property
    def table_service(self) -> TableServiceClient:
        assert self._table_service is not None, "TaskHub is not open"
        return self._table_service

    async def close(self) -> None:
        for client in (self._queue_service, self._table_service, self._blob_service):
            if client is not None:
                await client.close()
        for transport in self._rest:
            await transport.close()
        self._queue_service = self._table_service = self._blob_service = None
        self._rest = []

    # -- lifecycle -----------------------------------------------------------------------------
    async def create_if_not_exists(self) -> None:
        """Create every DTFx resource (idempotent, safe when several workers race). The wake-up
        queue is made by its first message, so a hub never woken has DTFx's layout exactly."""
        assert self._table_service is not None and self._blob_service is not None
        await self._check_or_write_info()
        await asyncio.gather(
            self._create_table(self.names.history_table),
            self._create_table(self.names.instances_table),
            self.work_items.create(),
            *(queue.create() for queue in self.control_queues),
        )

    async def _create_table(self, name: str) -> None:
        assert self._table_service is not None
        with contextlib.suppress(ResourceExistsError):
            await self._table_service.create_table(name)

    async def _check_or_write_info(self) -> None:
        container = self.blob_service.get_container_client(self.names.leases_container)
        with contextlib.suppress(ResourceExistsError):
            await container.create_container()
        blob = container.get_blob_client(TASK_HUB_INFO_BLOB)
        info = {
            "TaskHubName": self.names.hub,
            "CreatedAt": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z",
            "PartitionCount": self.partition_count,
        }
        try:
            await blob.upload_blob(json.dumps(info), overwrite=False)
            return
        except ResourceExistsError:
            pass
        existing: dict[str, Any] = json.loads(await (await blob.download_blob()).readall())
        count = existing.get("PartitionCount")
        if count != self.partition_count:
            raise TaskHubConfigurationError(
                f"Task hub '{self.names.hub}' was created with {count} partitions, but "
                f"partitionCount is {self.partition_count}. The partition count of a hub cannot "
                "change: use the original count, or a new hub name."
            )

    async def delete(self) -> None:
        """Delete every queue, table and container of the hub (Partitions table and app-lease
        container included; an app lease held by a running app is broken with it)."""
        assert self._table_service is not None and self._blob_service is not None
        names = self.names
        tables = (names.history_table, names.instances_table, names.partitions_table)
        containers = (
            names.leases_container,
            names.large_messages_container,
            names.app_lease_container,
        )
        await asyncio.gather(
            self.work_items.delete_queue(),
            self.wake_queue.delete_queue(),
            *(queue.delete_queue() for queue in self.control_queues),
            *(self._table_service.delete_table(name) for name in tables),
            *(self._delete_container(name) for name in containers),
        )

    async def _delete_container(self, name: str) -> None:
        container = self.blob_service.get_container_client(name)
        with contextlib.suppress(ResourceNotFoundError):
            try:
                await container.delete_container()
            except HttpResponseError as error:
                if error.status_code != 412:  # leased (the app lease): break it, then delete
                    raise
                await BlobLeaseClient(container).break_lease(0)
                await container.delete_container()

    async def recorded_partition_count(self) -> int | None:
        """The partition count recorded in the hub's info blob (this hub's own count when the
        blob does not say); None when the hub does not exist."""
        container = self.blob_service.get_container_client(self.names.leases_container)
        try:
            download = await container.get_blob_client(TASK_HUB_INFO_BLOB).download_blob()
            info = json.loads(await download.readall())
        except ResourceNotFoundError:
            return None
        except ValueError:
            return self.partition_count
        count = info.get("PartitionCount") if isinstance(info, dict) else None
        return count if isinstance(count, int) else self.partition_count

    async def exists(self) -> bool:
        """True when the hub's info blob exists."""
        container = self.blob_service.get_container_client(self.names.leases_container)
        try:
            await container.get_blob_client(TASK_HUB_INFO_BLOB).get_blob_properties()
        except ResourceNotFoundError:
            return False
        except HttpResponseError:
            raise
        return True

    # -- routing ---------------------------------------------------------------------------------
    def partition_of(self, instance_id: str) -> int:
        return partition_index(instance_id, self.partition_count)

    def control_queue_for(self, instance_id: str) -> TaskHubQueue:
        return self.control_queues[self.partition_of(instance_id)]

    async def send_to_instance(self, message: MessageData, delay: timedelta | None = None) -> None:
        """Enqueue a message on the control queue of its target instance."""
        await self.control_queue_for(message.instance.instance_id).send(message, delay)
