"""The worker inside the Azure Functions Python worker process (deployed apps).

There is no `durable-ext start` in Azure: the first durable-client call (or `start_embedded(app)` in
function_app.py, which starts the worker at import so timers fire without traffic) starts a
`Runtime` on a background thread with its own event loop, configured from the app settings
(environment) and host.json in the script root (`read_app_host_json`: in Azure a missing host.json
is an error, not the default task hub). Clients are created per event loop.
"""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path
from typing import Any

from ..client import DurableOrchestrationClient, management_function_path
from ..runtime import Runtime
from ..settings import (
    DurableTaskSettings,
    load_durable_task_settings,
    load_http_settings,
    read_app_host_json,
)
from ..storage.connection import StorageConnection
from ..storage.task_hub import TaskHub
from ..worker.options import WorkerOptions

__all__ = ["start_embedded", "embedded_client_provider"]

_lock = threading.Lock()
_started: dict[int, EmbeddedWorker] = {}


class EmbeddedWorker:
    """A Runtime running on a daemon thread."""

    def __init__(self, app: Any) -> None:
        script_root = os.environ.get("AzureWebJobsScriptRoot")  # noqa: SIM112 - the host's own name
        root = Path(script_root or os.getcwd())
        environ = dict(os.environ)
        host_json = read_app_host_json(root / "host.json", environ)  # HostJsonError in Azure
        self.settings: DurableTaskSettings = load_durable_task_settings(host_json, environ)
        self.management_path = management_function_path(
            load_http_settings(host_json, environ).route_prefix
        )
        self.connection = StorageConnection.from_app_settings(
            self.settings.connection_name, dict(os.environ)
        )
        self._app = app
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._clients: dict[int, DurableOrchestrationClient] = {}
        self._thread = threading.Thread(target=self._run, name="durable-ext-worker", daemon=True)
        self._thread.start()
        self._ready.wait(60)
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        runtime = Runtime(
            self._app,
            connection=self.connection,
            hub=self.settings.hub_name,
            options=WorkerOptions.from_settings(self.settings),
        )
        try:
            async with runtime:
                self._ready.set()
                await asyncio.Event().wait()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            raise

    async def client(self) -> DurableOrchestrationClient:
        """A client whose storage clients belong to the calling event loop."""
        key = id(asyncio.get_running_loop())
        client = self._clients.get(key)
        if client is None:
            hub = TaskHub(self.connection, self.settings.hub_name, self.settings.partition_count)
            hub.open()
            client = DurableOrchestrationClient(
                hub,
                connection_name=self.settings.connection_name,
                system_key=os.environ.get("DURABLE_EXT_SYSTEM_KEY"),
                management_path=self.management_path,
            )
            self._clients[key] = client
        return client


def start_embedded(app: Any) -> EmbeddedWorker:
    """Start (once per app) the worker for `app` in this process."""
    with _lock:
        worker = _started.get(id(app))
        if worker is None:
            worker = EmbeddedWorker(app)
            _started[id(app)] = worker
        return worker


async def embedded_client_provider(
    app: Any, task_hub: str | None, connection: str | None
) -> DurableOrchestrationClient:
    """The client provider used when no local host installed one."""
    worker = await asyncio.to_thread(start_embedded, app)
    return await worker.client()
