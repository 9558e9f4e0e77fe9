"""Clients of other task hubs: what `durable_client_input(task_hub=, connection_name=)` and the
client methods' `task_hub_name=`/`connection_name=` arguments name.

The app's own hub and connection get the app's client; another hub (`%AppSetting%` references
allowed, as in a durableClient binding) or connection gets a client of its own, opened on first use
with the partition count the hub was created with, and kept until `close()`. Such a client cannot
check orchestrator names (the other app's functions are not known here).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from .client import DurableOrchestrationClient
from .settings import get_app_setting
from .storage.connection import StorageConnection
from .storage.task_hub import TaskHub

__all__ = ["HubClients"]


def _connection_key(name: str) -> str:
    return name.removeprefix("AzureWebJobs").lower()


class HubClients:
    """The app's client, and clients of the other hubs it is asked for."""

    def __init__(
        self,
        own: DurableOrchestrationClient,
        connection: StorageConnection,
        settings: Mapping[str, str],
    ) -> None:
        """`connection` is the own client's; `settings` resolve other connections and `%Name%`."""
        self.own = own
        self._connection = connection
        self._settings = settings
        self._others: dict[tuple[str, str], tuple[DurableOrchestrationClient, TaskHub]] = {}
        self._lock = asyncio.Lock()
        own.other_hubs = self.get

    def _hub_name(self, task_hub: str) -> str:
        name = task_hub.strip()
        if len(name) > 2 and name.startswith("%") and name.endswith("%"):
            value = get_app_setting(self._settings, name[1:-1])
            if value is None:
                raise ValueError(f"task hub {task_hub!r} names an app setting that is not set")
            return value
        return name

    async def get(self, task_hub: str | None, connection: str | None) -> DurableOrchestrationClient:
        """The client of `task_hub` on `connection` (None: the app's own)."""
        own = self.own
        hub_name = self._hub_name(task_hub) if task_hub else own.task_hub_name
        connection_name = connection or own.connection_name
        key = (hub_name.lower(), _connection_key(connection_name))
        if key == (own.task_hub_name.lower(), _connection_key(own.connection_name)):
            return own
        async with self._lock:
            known = self._others.get(key)
            if known is None:
                known = self._others[key] = await self._open(hub_name, connection_name)
        return known[0]

    async def _open(
        self, hub_name: str, connection_name: str
    ) -> tuple[DurableOrchestrationClient, TaskHub]:
        name = connection_name.removeprefix("AzureWebJobs")
        connection = (
            self._connection
            if _connection_key(name) == _connection_key(self.own.connection_name)
            else StorageConnection.from_app_settings(name, self._settings)
        )
        hub = TaskHub(connection, hub_name)
        hub.open()
        count = await hub.recorded_partition_count()
        if count is not None and count != hub.partition_count:
            await hub.close()
            hub = TaskHub(connection, hub_name, count)
            hub.open()
        client = DurableOrchestrationClient(
            hub,
            connection_name=name,
            management_path=self.own.management_path,
        )
        client.other_hubs = self.get
        return client, hub

    async def close(self) -> None:
        """Close the other hubs' clients (the app's own belongs to its owner)."""
        others, self._others = self._others, {}
        for _, hub in others.values():
            await hub.close()
