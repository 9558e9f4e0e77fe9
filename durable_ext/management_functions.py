"""The management API as the app's own HTTP functions, so the Functions host serves it in Azure.

The host never routes `/runtime/webhooks/durabletask` to an app (it refuses app routes starting
with `admin` or `runtime`), so `DFApp` registers these functions under the app's `routePrefix`:

| Function | Methods | Route |
|---|---|---|
| `durabletask_start` | POST | `durabletask/orchestrators/{functionName}/{instanceId?}` |
| `durabletask_instances` | GET, DELETE | `durabletask/instances` |
| `durabletask_instance` | GET, DELETE | `durabletask/instances/{instanceId}` |
| `durabletask_instance_operation` | POST | `durabletask/instances/{instanceId}/{operation}` |
| `durabletask_raise_event` | POST | `durabletask/instances/{instanceId}/{operation}/{eventName}` |
| `durabletask_entities` | GET, POST, DELETE | `durabletask/entities/{entityName?}/{entityKey?}` |
| `durabletask_orchestrators` | GET | `durabletask/orchestrators` |
| `durabletask_history` | GET | `durabletask/instances/{instanceId}/history` |
| `durabletask_taskhub` | GET | `durabletask/taskhub` |
| `durabletask_counts` | GET | `durabletask/taskhub/counts` |
| `durabletask_dashboard` | GET | `durabletask/dashboard/{asset?}` (the page: no key, no data) |

They call the handlers of `http_api` (one implementation, also mounted by `durable-ext start` at
`/runtime/webhooks/durabletask`). They are ANONYMOUS for the host and check the key themselves: the
key is the app setting `DURABLE_EXT_SYSTEM_KEY` (the key the client's URLs carry; a Key Vault
reference in Azure), presented as `code=` or `x-functions-key`; `DURABLE_EXT_MASTER_KEY`, when set, is
accepted too. Without a key the API is open under `durable-ext start`, and elsewhere unless the
settings are Azure's (`settings.running_in_azure`): there it refuses every request.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import azure.functions as func
from aiohttp import web

from . import http_api
from .client import DurableOrchestrationClient, public_base_url
from .dashboard.assets import asset_response, dashboard_mode
from .runtime import registry_of
from .settings import get_app_setting, running_in_azure

__all__ = [
    "register_management_functions",
    "MANAGEMENT_FUNCTIONS",
    "ClientSource",
    "UnavailableReason",
    "set_open_without_key",
    "set_host_keys",
]

log = logging.getLogger("durable_ext.http_api")

ClientSource = Callable[[], Awaitable[DurableOrchestrationClient]]
UnavailableReason = Callable[[], "str | None"]
_open_without_key = False
_host_keys: tuple[str | None, str | None] | None = None


def set_open_without_key(value: bool) -> None:
    """Serve the API without a key when none is set, even where the settings look like Azure
    (`durable-ext start` does: it never runs in the Functions host)."""
    global _open_without_key
    _open_without_key = value

def set_host_keys(keys: tuple[str | None, str | None] | None) -> None:
    """Serve with these (system key, master key), which a local host read once from its app
    settings at start, instead of reading them from the environment on every request (None: read
    them per request, as in Azure). `durable-ext start` sets them unless its
    `ApiLevers.settings_once` lever is off: the host reads its settings once anyway (its own
    management mount and its function keys never change after start), and a copy of the
    environment with two case-insensitive scans of it was the largest cost of a status poll in
    this wrapper. Safety: nothing stored is involved; only keys set by the app's own code in
    `os.environ` after the host started would be missed (the host misses those too)."""
    global _host_keys
    _host_keys = keys


MANAGEMENT_FUNCTIONS: tuple[tuple[str, tuple[str, ...], str, http_api.ApiHandler], ...] = (
    (
        "durabletask_start",
        ("POST",),
        "durabletask/orchestrators/{functionName}/{instanceId?}",
        http_api.start,
    ),
    ("durabletask_instances", ("GET", "DELETE"), "durabletask/instances", http_api.instances),
    (
        "durabletask_instance",
        ("GET", "DELETE"),
        "durabletask/instances/{instanceId}",
        http_api.instance,
    ),
    (
        "durabletask_instance_operation",
        ("POST",),
        "durabletask/instances/{instanceId}/{operation}",
        http_api.instance_operation,
    ),
    (
        "durabletask_raise_event",
        ("POST",),
        "durabletask/instances/{instanceId}/{operation}/{eventName}",
        http_api.raise_event,
    ),
    (
        "durabletask_entities",
        ("GET", "POST", "DELETE"),
        "durabletask/entities/{entityName?}/{entityKey?}",
        http_api.entities,
    ),
    ("durabletask_orchestrators", ("GET",), "durabletask/orchestrators", http_api.orchestrators),
    (
        "durabletask_history",
        ("GET",),
        "durabletask/instances/{instanceId}/history",
        http_api.history,
    ),
    ("durabletask_taskhub", ("GET",), "durabletask/taskhub", http_api.task_hub),
    ("durabletask_counts", ("GET",), "durabletask/taskhub/counts", http_api.counts),
)
"""(function name, methods, route under routePrefix, handler) of every management function."""


def register_management_functions(
    app: Any, client: ClientSource, unavailable: UnavailableReason
) -> None:
    """Register the management functions and the dashboard page on `app` (a `DFApp`);
    `client()` gives the client and `unavailable()` why the engine cannot serve it (503), or
    None."""

    def orchestrator_names() -> list[str]:
        return registry_of(app).orchestrator_names

    for name, methods, route, handler in MANAGEMENT_FUNCTIONS:
        function = _function(name, handler, client, unavailable, orchestrator_names)
        _register(app, name, methods, route, function)
    _register(app, DASHBOARD_FUNCTION, ("GET",), DASHBOARD_ROUTE, dashboard)


def _register(
    app: Any,
    name: str,
    methods: tuple[str, ...],
    route: str,
    function: Callable[[func.HttpRequest], Awaitable[func.HttpResponse]],
) -> None:
    routed = app.route(
        route=route,
        methods=list(methods),
        auth_level=func.AuthLevel.ANONYMOUS,
        trigger_arg_name="req",
    )(function)
    app.function_name(name)(routed)


def _function(
    name: str,
    handler: http_api.ApiHandler,
    client: ClientSource,
    unavailable: UnavailableReason,
    orchestrator_names: Callable[[], list[str]],
) -> Callable[[func.HttpRequest], Awaitable[func.HttpResponse]]:
    async def management(req: func.HttpRequest) -> func.HttpResponse:
        return await serve(handler, req, client, unavailable, orchestrator_names)

    management.__name__ = management.__qualname__ = name
    return management


DASHBOARD_FUNCTION = "durabletask_dashboard"
DASHBOARD_ROUTE = "durabletask/dashboard/{asset?}"


async def dashboard(req: func.HttpRequest) -> func.HttpResponse:
    """The dashboard's page and files (docs/dashboard.md); the data comes from the API."""
    url = urlsplit(req.url)
    try:
        mode = dashboard_mode(os.environ)
    except ValueError as exc:
        return func.HttpResponse(str(exc), status_code=500)
    answer = asset_response(url.path, url.query, req.route_params.get("asset"), mode)
    return func.HttpResponse(
        body=answer.body,
        status_code=answer.status,
        headers=answer.headers,
        mimetype=answer.content_type,
        charset="utf-8",
    )


async def serve(
    handler: http_api.ApiHandler,
    req: func.HttpRequest,
    client: ClientSource,
    unavailable: UnavailableReason,
    orchestrator_names: Callable[[], list[str]] | None = None,
) -> func.HttpResponse:
    """Answer one management request that came in through an HTTP function: the key is checked
    before the client is asked for (so a caller without the key learns nothing, even a 503); once
    the client is there (a first call starts the engine), an engine that cannot run answers 503
    with the reason."""
    if _host_keys is not None:
        (system_key, master_key), key_required = _host_keys, False
    else:
        environ = dict(os.environ)
        system_key = get_app_setting(environ, "DURABLE_EXT_SYSTEM_KEY")
        master_key = get_app_setting(environ, "DURABLE_EXT_MASTER_KEY")
        key_required = running_in_azure(environ) and not _open_without_key
    keys = http_api.ApiSettings(
        client_for=_no_client,
        system_key=system_key,
        master_key=master_key,
        default_connection="",
        key_required=key_required,
        orchestrator_names=orchestrator_names,
    )

    async def with_client(request: http_api.ApiRequest) -> web.Response:
        try:
            durable_client = await client()
        except Exception as exc:
            log.exception("Management API request %s %s: no durable client", req.method, url.path)
            return web.json_response(
                {"error": f"The durable engine is not available: {exc}"}, status=503
            )
        reason = unavailable()
        if reason is not None:
            return web.json_response({"error": reason[:1].upper() + reason[1:]}, status=503)
        return await handler(replace(request, settings=_settings(keys, durable_client)))

    url = urlsplit(req.url)
    body = req.get_body() or b""

    async def read() -> bytes:
        return body

    request = http_api.ApiRequest(
        settings=keys,
        method=req.method,
        path=url.path,
        target=url.path + (f"?{url.query}" if url.query else ""),
        base_url=public_base_url(req.url),
        query=tuple(req.params.items()),
        headers=http_api.api_headers(req.headers.items()),
        match_info=dict(req.route_params),
        read=read,
    )
    return _to_function_response(await http_api.respond(with_client, request))


def _no_client(task_hub: str | None) -> DurableOrchestrationClient:
    raise LookupError(task_hub)


def _settings(
    keys: http_api.ApiSettings, client: DurableOrchestrationClient
) -> http_api.ApiSettings:
    def client_for(task_hub: str | None) -> DurableOrchestrationClient:
        if task_hub and task_hub.lower() != client.task_hub_name.lower():
            raise LookupError(task_hub)
        return client

    return replace(
        keys,
        client_for=client_for,
        default_connection=client.connection_name,
        mount_path=client.management_path,
    )


def _to_function_response(response: web.Response) -> func.HttpResponse:
    skipped = ("content-length", "content-type")
    headers = {k: v for k, v in response.headers.items() if k.lower() not in skipped}
    body = response.body
    return func.HttpResponse(
        body=body if isinstance(body, bytes) else b"",
        status_code=response.status,
        headers=headers,
        mimetype=response.content_type if body else None,
        charset=response.charset,
    )
