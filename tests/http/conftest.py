"""Fixtures: the management API served in-process over real HTTP, on a Runtime on the session Azurite."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer

from durable_ext.client import WEBHOOK_PATH, DurableOrchestrationClient
from durable_ext.http_api import create_management_routes
from durable_ext.runtime import Runtime
from durable_ext.worker import FunctionRegistry
from tests.worker.conftest import fast_options


@dataclass
class Api:
    """An HTTP client on the served app, and the runtime behind it."""

    http: TestClient[Any, Any]
    runtime: Runtime

    @property
    def client(self) -> DurableOrchestrationClient:
        return self.runtime.client

    async def call(self, method: str, path: str, **kwargs: Any) -> ClientResponse:
        """A request to `WEBHOOK_PATH + path`; the body is read before returning."""
        response = await self.http.request(method, WEBHOOK_PATH + path, **kwargs)
        await response.read()
        return response

    def local(self, uri: str) -> str:
        """A generated absolute URI as the path + query under `WEBHOOK_PATH` (for `call`)."""
        prefix = str(self.http.make_url(WEBHOOK_PATH))
        assert uri.startswith(prefix), (uri, prefix)
        return uri[len(prefix) :]


ApiFactory = Callable[..., contextlib.AbstractAsyncContextManager[Api]]


@pytest.fixture
async def api(azurite: Any, hub_name: str) -> AsyncIterator[ApiFactory]:
    """A factory: `async with api(registry, system_key=..., run_worker=...) as a:`."""

    @contextlib.asynccontextmanager
    async def make(
        registry: FunctionRegistry,
        *,
        system_key: str | None = None,
        run_worker: bool = True,
        use_forwarded_host: bool = False,
    ) -> AsyncIterator[Api]:
        runtime = Runtime(
            registry,
            connection=azurite.connection_string,
            hub=hub_name,
            options=fast_options(),
            run_worker=run_worker,
            system_key=system_key,
            management_path=WEBHOOK_PATH,  # the client's URLs point where this API is mounted
        )
        async with runtime:

            def client_for(task_hub: str | None) -> DurableOrchestrationClient:
                if task_hub and task_hub.lower() != runtime.client.task_hub_name.lower():
                    raise LookupError(task_hub)
                return runtime.client

            root = web.Application()
            root.add_subapp(
                WEBHOOK_PATH,
                create_management_routes(
                    client_for,
                    system_key=system_key,
                    use_forwarded_host=use_forwarded_host,
                    orchestrator_names=lambda: registry.orchestrator_names,
                ),
            )
            async with TestClient(TestServer(root, host="127.0.0.1")) as http:
                yield Api(http, runtime)

    yield make
