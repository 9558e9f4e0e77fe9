"""`Runtime`: run an app's orchestrators and activities in-process, with a client, for scripts and tests.

async with df.Runtime(app, connection="UseDevelopmentStorage=true", hub="MyHub") as rt:
    instance_id = await rt.client.start_new("hello_orchestrator")
    status = await rt.client.wait_for_completion(instance_id)
"""

from __future__ import annotations

import os
from types import TracebackType
from typing import Any

from .client import DurableOrchestrationClient, management_function_path
from .hub_clients import HubClients
from .storage.connection import StorageConnection
from .storage.task_hub import TaskHub
from .worker import FunctionRegistry, TaskHubWorker, WorkerOptions

__all__ = ["Runtime", "registry_of"]


def registry_of(app: Any) -> FunctionRegistry:
    """The function registry of a DFApp/Blueprint, or the registry itself."""
    if isinstance(app, FunctionRegistry):
        return app
    registry = getattr(app, "durable_registry", None)
    if isinstance(registry, FunctionRegistry):
        return registry
    raise TypeError(
        f"expected a DFApp, a Blueprint or a FunctionRegistry, got {type(app).__name__}"
    )


class Runtime:
    """A task hub, a worker running the app's functions, and a client: one async context."""

    def __init__(
        self,
        app: Any,
        *,
        connection: str | StorageConnection = "UseDevelopmentStorage=true",
        hub: str = "TestHubName",
        options: WorkerOptions | None = None,
        run_worker: bool = True,
        connection_name: str = "Storage",
        system_key: str | None = None,
        management_path: str = management_function_path(),
    ) -> None:
        self.registry = registry_of(app)
        if isinstance(connection, str):
            connection = StorageConnection.from_connection_string(connection)
        self.options = options or WorkerOptions()
        self.hub = TaskHub(connection, hub, self.options.partition_count)
        self._run_worker = run_worker
        self.worker: TaskHubWorker | None = None
        self.client = DurableOrchestrationClient(
            self.hub,
            registry=self.registry,
            connection_name=connection_name,
            system_key=system_key,
            management_path=management_path,
            default_version=self.options.versioning.version,
            replace_running_instances=self.options.replace_running_instances,
        )
        self.hub_clients = HubClients(self.client, connection, os.environ)
        """Clients of other task hubs, as `durable_client_input(task_hub=...)` names them."""

    async def __aenter__(self) -> Runtime:
        self.hub.open()
        try:
            if self._run_worker:
                self.worker = TaskHubWorker(self.hub, self.registry, self.options)
                await self.worker.start()
            else:
                await self.hub.create_if_not_exists()
        except BaseException:
            await self.hub.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self.worker is not None:
                await self.worker.stop()
        finally:
            await self.hub_clients.close()
            await self.hub.close()
