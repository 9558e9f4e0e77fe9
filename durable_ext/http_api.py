"""The Durable Functions HTTP management API: one set of handlers, served two ways.

The handlers take an `ApiRequest` and answer a `web.Response`. `create_management_routes(...)`
serves them as an aiohttp sub-application for `WEBHOOK_PATH` (`/runtime/webhooks/durabletask`, what
`durable-ext start` mounts); `durable_ext.management_functions` serves the same handlers as the
app's HTTP functions (`/{routePrefix}/durabletask/...`, what the Functions host runs in Azure).
Routes, status codes, headers and JSON shapes follow the Durable Functions extension's
`HttpApiHandler`; docs/management-api.md lists them with the deliberate differences, and
durable_ext/openapi.json (package data; docs/openapi.json is a copy) describes them formally.
Every request is validated before anything is written, so a rejected request changes nothing in
storage.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from multidict import CIMultiDict, CIMultiDictProxy

from .client import (
    WEBHOOK_PATH,
    DurableOrchestrationClient,
    InstanceAlreadyExistsError,
    InstanceGoneError,
    InstanceNotFoundError,
    management_urls,
)
from .dashboard.counts import status_counts
from .dashboard.history_events import history_events
from .dashboard.hub_state import task_hub_state
from .orchestration import codec
from .orchestration.entity_id import EntityId
from .orchestration.history import parse_time
from .orchestration.status import OrchestrationRuntimeStatus
from .status import DurableOrchestrationStatus
from .storage.instance_store import (
    InstanceQuery,
    decode_continuation,
)

__all__ = [
    "create_management_routes",
    "INSTANCE_OPERATIONS",
    "ClientFor",
    "ApiRequest",
    "ApiSettings",
    "ApiHandler",
    "respond",
    "api_headers",
    "start",
    "instance",
    "instances",
    "instance_operation",
    "raise_event",
    "entities",
    "orchestrators",
    "history",
    "task_hub",
    "counts",
    "ApiLevers",
    "set_levers",
    "RAISE_READS_ONCE_SETTING",
    "SETTINGS_ONCE_SETTING",
]

log = logging.getLogger("durable_ext.http_api")

ClientFor = Callable[[str | None], DurableOrchestrationClient]
"""The client of a task hub (None: the default hub); raises LookupError for a hub not served."""

INSTANCE_OPERATIONS = ("terminate", "suspend", "resume", "rewind", "restart")
"""The operations of `POST /instances/{instanceId}/{operation}` (matched case-insensitively)."""
RAISE_EVENT = "raiseEvent"
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
"""Azure Tables returns at most 1000 rows a page; a larger `top` still gets pages of 1000."""
MIN_POLLING_INTERVAL = 0.05
_STATUS_NAMES = {s.value.lower(): s for s in OrchestrationRuntimeStatus}
RAISE_READS_ONCE_SETTING = "DURABLE_EXT_HTTP_RAISE_READS_ONCE"
"""The app setting that switches `ApiLevers.raise_reads_once` off (`false`) under `durable-ext
start`."""
SETTINGS_ONCE_SETTING = "DURABLE_EXT_HTTP_SETTINGS_ONCE"
"""The app setting that switches `ApiLevers.settings_once` off (`false`) under `durable-ext
start`."""


@dataclass(frozen=True, slots=True)
class ApiLevers:
    """Performance levers of the API's handlers (all on by default; bench/suite.py LEVERS
    measures each switched off)."""

    raise_reads_once: bool = True
    """raiseEvent reads the instance once (`client.active_instance`, then
    `client.raise_event_on` with that row) instead of twice (the handler's 404/410 check, then
    `raise_event`'s own). Responses are the same: not found 404, finished 410, both before the
    body is looked at. Safety: what is written is unchanged (one message to the instance); the
    event is sent after one read that found the instance active, exactly as `raise_event` does in
    process — the second read only repeated that check a few milliseconds later, and an instance
    that finishes in between drops the event in both cases (DTFx does the same)."""
    settings_once: bool = True
    """Under `durable-ext start`, the management functions take the keys the host read at start
    instead of copying and scanning the environment on every request
    (`management_functions.set_host_keys`, which gives the safety argument)."""


_levers = ApiLevers()


def set_levers(levers: ApiLevers) -> None:
    """Set the levers of this process's API handlers (the local host does, from app settings)."""
    global _levers
    _levers = levers


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """How one mount of the API answers: its clients, keys and where it is mounted."""

    client_for: ClientFor
    system_key: str | None
    master_key: str | None
    default_connection: str
    mount_path: str = WEBHOOK_PATH
    """The path the routes are under; generated URIs point there."""
    key_required: bool = False
    """Refuse every request when no `system_key` is set (in Azure nothing may be open)."""
    orchestrator_names: Callable[[], list[str]] | None = None
    """The app's registered orchestrators (`GET /orchestrators`); None: none known."""


@dataclass(frozen=True, slots=True)
class ApiRequest:
    """One management request, whichever server received it."""

    settings: ApiSettings
    method: str
    path: str
    target: str
    """The path and query string as received (the `Location` of a running instance's status)."""
    base_url: str
    """`scheme://host` the generated URIs start with."""
    query: tuple[tuple[str, str], ...]
    headers: CIMultiDictProxy[str]
    match_info: Mapping[str, str]
    read: Callable[[], Awaitable[bytes]]
    """The body (read only once the request is authorised)."""

    @property
    def content_type(self) -> str:
        """The media type of the body, without parameters (`application/octet-stream` if none)."""
        value = self.headers.get("Content-Type", "")
        return value.split(";")[0].strip().lower() or "application/octet-stream"


ApiHandler = Callable[[ApiRequest], Awaitable[web.Response]]


def api_headers(items: Iterable[tuple[str, str]]) -> CIMultiDictProxy[str]:
    """Case-insensitive request headers."""
    return CIMultiDictProxy(CIMultiDict(items))


def create_management_routes(
    client_for: ClientFor,
    *,
    system_key: str | None = None,
    master_key: str | None = None,
    default_connection: str = "Storage",
    use_forwarded_host: bool = False,
    orchestrator_names: Callable[[], list[str]] | None = None,
) -> web.Application:
    """The management API as a sub-application to mount at `WEBHOOK_PATH`.

    `client_for(taskHub)` gives the client of the hub named by the `taskHub` query value (None when
    absent or blank) and raises LookupError for a hub this host does not serve (→ 404).
    `system_key`, when set, is required on every request as `code=` or `x-functions-key` and is
    put into every generated URI; the `master_key` (admin level) is accepted in its place, as in
    Azure Functions. `default_connection` is the `connection=` value of generated URIs
    when the request names none. `use_forwarded_host` (`httpSettings.useForwardedHost`) builds
    URIs from `X-Forwarded-Host`/`X-Forwarded-Proto` when both are present.
    `orchestrator_names()` lists the app's orchestrators for `GET /orchestrators`.
    """
    app = web.Application(middlewares=[_errors])
    settings = ApiSettings(
        client_for,
        system_key,
        master_key,
        default_connection,
        orchestrator_names=orchestrator_names,
    )

    def add(method: str, path: str, handler: ApiHandler) -> None:
        app.router.add_route(method, path, _served(handler, settings, use_forwarded_host))

    add("GET", "/orchestrators", orchestrators)
    add("GET", "/taskhub", task_hub)
    add("GET", "/taskhub/counts", counts)
    add("GET", "/instances/{instanceId}/history", history)
    add("POST", "/orchestrators/{functionName}", start)
    add("POST", "/orchestrators/{functionName}/{instanceId}", start)
    for path in ("/instances", "/instances/"):
        add("GET", path, instances)
        add("DELETE", path, instances)
    add("GET", "/instances/{instanceId}", instance)
    add("DELETE", "/instances/{instanceId}", instance)
    add("POST", "/instances/{instanceId}/{operation}", instance_operation)
    add("POST", "/instances/{instanceId}/{operation}/{eventName}", raise_event)
    for path in (
        "/entities",
        "/entities/",
        "/entities/{entityName}",
        "/entities/{entityName}/{entityKey}",
    ):
        for method in ("GET", "POST", "DELETE"):
            add(method, path, entities)
    add("*", "/{tail:.*}", _no_route)
    return app


def _served(handler: ApiHandler, settings: ApiSettings, use_forwarded_host: bool) -> Handler:
    """An aiohttp handler for an API handler (the request's URL relative to the mount point)."""

    async def handle(request: web.Request) -> web.StreamResponse:
        scheme, host = request.scheme, request.host
        if use_forwarded_host:
            forwarded_host = request.headers.get("X-Forwarded-Host")
            forwarded_proto = request.headers.get("X-Forwarded-Proto")
            if forwarded_host and forwarded_proto:
                scheme = forwarded_proto.split(",")[0].strip()
                host = forwarded_host.split(",")[0].strip()
        api_request = ApiRequest(
            settings=settings,
            method=request.method,
            path=request.path,
            target=str(request.rel_url),
            base_url=f"{scheme}://{host}",
            query=tuple(request.query.items()),
            headers=request.headers,
            match_info=dict(request.match_info),
            read=request.read,
        )
        return await respond(handler, api_request)

    return handle


# -- errors and authorisation ----------------------------------------------------------------------


class _ApiError(Exception):
    """A request the API refuses: its status code and a message for the JSON error body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=status, headers=headers, dumps=codec.encode)


def _error(status: int, message: str) -> web.Response:
    return _json({"error": message}, status)


async def respond(handler: ApiHandler, request: ApiRequest) -> web.Response:
    """Authorise the request, run the handler, and turn its errors into JSON error responses."""
    try:
        _authorize(request)
        return await handler(request)
    except _ApiError as exc:
        return _error(exc.status, exc.message)
    except InstanceNotFoundError as exc:
        return _error(404, str(exc))
    except InstanceGoneError as exc:
        return _error(410, str(exc))
    except InstanceAlreadyExistsError as exc:
        return _error(409, str(exc))
    except web.HTTPException as exc:  # e.g. 413 from reading a body over the size limit
        return _error(exc.status, exc.reason)
    except Exception:
        log.exception("Management API request %s %s failed", request.method, request.path)
        return _error(500, "Something went wrong while processing your request.")


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status in (404, 405):
            return _error(404, f"No management API route matches {request.method} {request.path}.")
        return _error(exc.status, exc.reason)


def _authorize(request: ApiRequest) -> None:
    """Refuse (401) a request without the system key (or the master key) when one is required."""
    settings = request.settings
    if not settings.system_key and not settings.key_required:
        return
    presented = request.headers.get("x-functions-key") or _Params(request).get("code") or ""
    offered = presented.encode("utf-8", "surrogateescape")
    accepted = [
        hmac.compare_digest(offered, key.encode())
        for key in (settings.system_key, settings.master_key)
        if key
    ]
    if not any(accepted):
        raise _ApiError(401, "A valid system key is required: pass it as code= or x-functions-key.")


# -- request helpers -------------------------------------------------------------------------------


class _Params:
    """Query parameters with case-insensitive names (as the extension reads them), typed."""

    def __init__(self, request: ApiRequest) -> None:
        self._values: dict[str, list[str]] = {}
        for name, value in request.query:
            self._values.setdefault(name.lower(), []).append(value)

    def get(self, name: str) -> str | None:
        values = self._values.get(name.lower())
        return values[0] if values else None

    def flag(self, name: str, default: bool) -> bool:
        value = self.get(name)
        if value is None or value == "":
            return default
        if value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise _ApiError(400, f"Query parameter '{name}' must be true or false, not {value!r}.")

    def time(self, name: str) -> datetime | None:
        value = self.get(name)
        if not value:
            return None
        try:
            return parse_time(value.replace(" ", "+"))
        except ValueError:
            raise _ApiError(
                400, f"Query parameter '{name}' is not an ISO-8601 time: {value!r}."
            ) from None

    def number(self, name: str) -> float | None:
        value = self.get(name)
        if not value:
            return None
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number) or number < 0:
            raise _ApiError(
                400, f"Query parameter '{name}' must be a number of seconds, not {value!r}."
            )
        return number

    def page_size(self) -> int:
        value = self.get("top")
        if not value:
            return DEFAULT_PAGE_SIZE
        if not (value.isascii() and value.isdigit()) or int(value) < 1:
            raise _ApiError(
                400, f"Query parameter 'top' must be a positive integer, not {value!r}."
            )
        return int(value)

    def statuses(self) -> list[OrchestrationRuntimeStatus]:
        """`runtimeStatus` as a CSV, repeated, or both."""
        found: list[OrchestrationRuntimeStatus] = []
        for value in self._values.get("runtimestatus", []):
            for item in filter(None, (part.strip() for part in value.split(","))):
                status = _STATUS_NAMES.get(item.lower())
                if status is None:
                    raise _ApiError(400, f"Unknown runtimeStatus {item!r}.")
                found.append(status)
        return found

    def wait(self) -> tuple[float, float] | None:
        """(timeout, pollingInterval) in seconds when both are given: wait for the instance."""
        timeout, interval = self.number("timeout"), self.number("pollingInterval")
        if timeout is None or interval is None:
            return None
        if interval > timeout:
            raise _ApiError(
                400,
                f"Total timeout {timeout} s should be bigger than pollingInterval {interval} s.",
            )
        return timeout, max(interval, MIN_POLLING_INTERVAL)


@dataclass(frozen=True, slots=True)
class _StatusOptions:
    show_history: bool
    show_history_output: bool
    show_input: bool


class _Call:
    """One request: its parameters, the client of its task hub, and the responses it builds."""

    def __init__(self, request: ApiRequest) -> None:
        self.request = request
        self.params = _Params(request)
        self.settings = request.settings
        hub = (self.params.get("taskHub") or "").strip() or None
        try:
            self.client = self.settings.client_for(hub)
        except LookupError:
            raise _ApiError(404, f"Task hub '{hub}' is not served by this host.") from None

    def status_options(self) -> _StatusOptions:
        return _StatusOptions(
            self.params.flag("showHistory", False),
            self.params.flag("showHistoryOutput", False),
            self.params.flag("showInput", True),
        )

    def links(self, instance_id: str) -> dict[str, str]:
        """The check-status payload: an instance's management URIs, in the extension's order."""
        connection = self.params.get("connection") or self.settings.default_connection
        return management_urls(
            self.request.base_url,
            instance_id,
            self.client.task_hub_name,
            connection,
            self.settings.system_key,
            self.settings.mount_path,
        )

    def check_status(self, instance_id: str) -> web.Response:
        links = self.links(instance_id)
        return _json(links, 202, {"Location": links["statusQueryGetUri"], "Retry-After": "10"})

    async def status(
        self, instance_id: str, options: _StatusOptions, fail_with_500: bool
    ) -> web.Response:
        status = await self.client.get_status(
            instance_id, options.show_history, options.show_history_output, options.show_input
        )
        if not status or status.runtime_status is None:
            raise _ApiError(404, f"No instance with ID '{instance_id}' found.")
        return self.status_response(status, fail_with_500)

    def status_response(
        self, status: DurableOrchestrationStatus, fail_with_500: bool
    ) -> web.Response:
        """202 with a Location while the instance runs, else 200 (500 for a failure, if asked)."""
        assert status.runtime_status is not None
        if status.runtime_status.is_active:
            location = self.request.base_url + self.request.target
            return _json(status.to_status_payload(), 202, {"Location": location, "Retry-After": "5"})
        failed = status.runtime_status is OrchestrationRuntimeStatus.Failed
        return _json(status.to_status_payload(), 500 if failed and fail_with_500 else 200)

    async def when_done(
        self, instance_id: str, wait: tuple[float, float] | None, options: _StatusOptions
    ) -> web.Response:
        """202 + check-status payload, or with `wait` the raw output (200) if it completes in time."""
        if wait is None:
            return self.check_status(instance_id)
        try:
            status = await self.client.wait_for_completion(instance_id, *wait)
        except TimeoutError:
            return self.check_status(instance_id)
        if status.runtime_status is OrchestrationRuntimeStatus.Completed:
            return _json(status.output)
        if options.show_input and not options.show_history:  # what the wait has just read
            return self.status_response(status, fail_with_500=False)
        return await self.status(instance_id, options, fail_with_500=False)

    async def require_instance(self, instance_id: str) -> OrchestrationRuntimeStatus:
        """The instance's runtime status; 404 when there is no such instance."""
        status = await self.client.get_status(instance_id)
        if not status or status.runtime_status is None:
            raise _ApiError(404, f"No instance with ID '{instance_id}' found.")
        return status.runtime_status


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


async def _json_body(request: ApiRequest, *, required: bool) -> Any:
    raw = await request.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _ApiError(400, "Invalid JSON content: the body is not UTF-8 text.") from None
    if not text.strip():
        if required:
            raise _ApiError(400, "Invalid JSON content: the body is empty.")
        return None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise _ApiError(400, f"Invalid JSON content: {exc}") from None


# -- handlers --------------------------------------------------------------------------------------


async def start(request: ApiRequest) -> web.Response:
    """`POST /orchestrators/{functionName}[/{instanceId}]`."""
    call = _Call(request)
    wait, options = call.params.wait(), call.status_options()
    version = call.params.get("version") or None
    client_input = await _json_body(request, required=False)
    try:
        instance_id = await call.client.start_new(
            request.match_info["functionName"],
            request.match_info.get("instanceId"),
            client_input,
            version,
        )
    except ValueError as exc:
        raise _ApiError(400, str(exc)) from None
    return await call.when_done(instance_id, wait, options)


async def instance(request: ApiRequest) -> web.Response:
    """`GET /instances/{instanceId}` (status) and `DELETE` (purge)."""
    if request.method.upper() == "DELETE":
        return await _purge_instance(request)
    return await _get_status(request)


async def instances(request: ApiRequest) -> web.Response:
    """`GET /instances` (list) and `DELETE` (purge by filter)."""
    if request.method.upper() == "DELETE":
        return await _purge_instances(request)
    return await _list_instances(request)


async def _get_status(request: ApiRequest) -> web.Response:
    call = _Call(request)
    options = call.status_options()
    fail_with_500 = call.params.flag("returnInternalServerErrorOnFailure", False)
    return await call.status(request.match_info["instanceId"], options, fail_with_500)


async def _list_instances(request: ApiRequest) -> web.Response:
    call = _Call(request)
    params = call.params
    page_size, show_input = params.page_size(), params.flag("showInput", True)
    continuation = request.headers.get("x-ms-continuation-token") or None
    try:
        decode_continuation(continuation)
    except ValueError:
        raise _ApiError(400, "The x-ms-continuation-token header is not a valid token.") from None
    query = _instance_query(params)
    statuses, token = await call.client.list_instances(
        created_time_from=query.created_from,
        created_time_to=query.created_to,
        runtime_status=query.runtime_status,
        instance_id_prefix=query.instance_id_prefix,
        page_size=min(page_size, MAX_PAGE_SIZE),
        continuation_token=continuation,
        show_input=show_input,
        name=query.name,
    )
    body = [status.to_status_payload() for status in statuses]
    return _json(body, 200, {"x-ms-continuation-token": token or ""})


async def _purge_instance(request: ApiRequest) -> web.Response:
    call = _Call(request)
    instance_id = request.match_info["instanceId"]
    try:
        result = await call.client.purge_instance_history(instance_id)
    except InstanceGoneError as exc:
        status = exc.runtime_status.value if exc.runtime_status is not None else "unknown"
        raise _ApiError(
            412,
            "Only orchestrations in a terminal state can be purged, but the orchestration with "
            f"instance ID {instance_id} has status {status}.",
        ) from None
    if result.instances_deleted == 0:
        raise _ApiError(404, f"No instance with ID '{instance_id}' found.")
    return _json({"instancesDeleted": result.instances_deleted})


async def _purge_instances(request: ApiRequest) -> web.Response:
    call = _Call(request)
    created_from = call.params.time("createdTimeFrom")
    if created_from is None:
        raise _ApiError(400, "Please provide value for 'createdTimeFrom' parameter.")
    created_to = call.params.time("createdTimeTo") or datetime.now(UTC)
    statuses = call.params.statuses()
    result = await call.client.purge_instance_history_by(created_from, created_to, statuses or None)
    if result.instances_deleted == 0:
        raise _ApiError(404, "No instances matched the filter.")
    return _json({"instancesDeleted": result.instances_deleted})


async def raise_event(request: ApiRequest) -> web.Response:
    """`POST /instances/{instanceId}/raiseEvent/{eventName}` (the operation matched in any case)."""
    if request.match_info["operation"].lower() != RAISE_EVENT.lower():
        return await _no_route(request)
    call = _Call(request)
    instance_id = request.match_info["instanceId"]
    row = None
    if _levers.raise_reads_once:
        try:
            row = await call.client.active_instance(instance_id)
            gone = False
        except InstanceGoneError:
            gone = True
    else:
        gone = (await call.require_instance(instance_id)).is_terminal
    if gone:
        raise _ApiError(
            410, f"Instance with ID '{instance_id}' is gone: either completed or failed."
        )
    if request.content_type.lower() != "application/json":
        raise _ApiError(400, "Only application/json request content is supported.")
    data = await _json_body(request, required=True)
    event_name = request.match_info["eventName"]
    try:
        if row is not None:
            await call.client.raise_event_on(row, event_name, data)
        else:
            await call.client.raise_event(instance_id, event_name, data)
    except ValueError as exc:
        raise _ApiError(400, str(exc)) from None
    return web.Response(status=202)


async def instance_operation(request: ApiRequest) -> web.Response:
    """`POST /instances/{instanceId}/{operation}`: terminate, suspend, resume, rewind, restart."""
    operation = request.match_info["operation"].lower()
    if operation not in INSTANCE_OPERATIONS:
        return await _no_route(request)
    call = _Call(request)
    instance_id = request.match_info["instanceId"]
    reason = call.params.get("reason") or ""
    if operation == "restart":
        return await _restart(call, instance_id)
    if operation == "rewind":
        try:
            await call.client.rewind(instance_id, reason)
        except ValueError as exc:
            raise _ApiError(412, str(exc)) from None
        return web.Response(status=202)
    if (await call.require_instance(instance_id)).is_terminal:
        raise _ApiError(410, f"Instance with ID '{instance_id}' has already finished.")
    if operation == "terminate":
        await call.client.terminate(instance_id, reason)
    elif operation == "suspend":
        await call.client.suspend(instance_id, reason)
    else:
        await call.client.resume(instance_id, reason)
    return web.Response(status=202)


async def _restart(call: _Call, instance_id: str) -> web.Response:
    new_id = call.params.flag("restartWithNewInstanceId", True)
    wait, options = call.params.wait(), call.status_options()
    try:
        restarted = await call.client.restart(instance_id, new_id)
    except InstanceNotFoundError:
        raise _ApiError(400, "InstanceId does not match a valid orchestration instance.") from None
    except ValueError as exc:
        raise _ApiError(400, str(exc)) from None
    return await call.when_done(restarted, wait, options)


async def entities(request: ApiRequest) -> web.Response:
    """`/entities[/{entityName}[/{entityKey}]]`: GET reads one entity's state or lists entities,
    POST signals (`op=`), DELETE signals `delete` (docs/management-api.md, "Entities")."""
    call = _Call(request)
    name = request.match_info.get("entityName") or ""
    key = request.match_info.get("entityKey") or None  # an optional route value may come as ""
    method = request.method.upper()
    if method == "GET" and key is None:
        return await _list_entities(call, name or None)
    entity_id = _entity_id(name, key)
    if method == "GET":
        read = await call.client.read_entity_state(entity_id)
        if not read.entity_exists:
            raise _ApiError(404, f"No entity with ID '{entity_id}' found.")
        return _json(read.entity_state)
    if method == "DELETE":
        operation, value = "delete", None
    else:
        operation = call.params.get("op") or ""
        value = await _entity_input(request)
    try:
        await call.client.signal_entity(entity_id, operation, value)
    except ValueError as exc:
        raise _ApiError(400, str(exc)) from None
    return web.Response(status=202)


def _entity_id(name: str, key: str | None) -> EntityId:
    if not name:
        raise _ApiError(400, "The entity name must not be empty.")
    if not key:
        raise _ApiError(400, "The entity key must not be empty.")
    if any(c in key for c in "/\\#?") or any(ord(c) < 32 or 127 <= ord(c) < 160 for c in key):
        raise _ApiError(400, "Entity keys must not contain /, \\, #, ?, or control characters.")
    return EntityId(name, key)


async def _entity_input(request: ApiRequest) -> Any:
    """The operation input: JSON for `application/json`, else the body as text; None if empty."""
    if request.content_type == "application/json":
        return await _json_body(request, required=False)
    raw = await request.read()
    if not raw:
        return None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _ApiError(400, "The operation input is not UTF-8 text.") from None


async def _list_entities(call: _Call, name: str | None) -> web.Response:
    params = call.params
    continuation = call.request.headers.get("x-ms-continuation-token") or None
    try:
        decode_continuation(continuation)
    except ValueError:
        raise _ApiError(400, "The x-ms-continuation-token header is not a valid token.") from None
    result = await call.client.list_entities(
        name,
        fetch_state=params.flag("fetchState", False),
        last_operation_time_from=params.time("lastOperationTimeFrom"),
        last_operation_time_to=params.time("lastOperationTimeTo"),
        page_size=min(params.page_size(), MAX_PAGE_SIZE),
        continuation_token=continuation,
    )
    body = [entity.to_json() for entity in result.entities]
    return _json(body, 200, {"x-ms-continuation-token": result.continuation_token or ""})


async def _no_route(request: ApiRequest) -> web.Response:
    return _error(404, f"No management API route matches {request.method} {request.path}.")


# -- the dashboard's read endpoints ----------------------------------------------------------------


def _instance_query(params: _Params) -> InstanceQuery:
    """The instance filters of a list or count request."""
    return InstanceQuery(
        created_from=params.time("createdTimeFrom"),
        created_to=params.time("createdTimeTo"),
        runtime_status=params.statuses() or None,
        instance_id_prefix=params.get("instanceIdPrefix") or None,
        name=params.get("name") or None,
    )


async def orchestrators(request: ApiRequest) -> web.Response:
    """`GET /orchestrators`: the names of the app's registered orchestrators."""
    _Call(request)  # the task hub must be one this host serves
    names = request.settings.orchestrator_names
    return _json({"orchestrators": sorted(names() if names else [], key=str.lower)})


async def history(request: ApiRequest) -> web.Response:
    """`GET /instances/{instanceId}/history`: every history event, with exact times."""
    call = _Call(request)
    instance_id = request.match_info["instanceId"]
    await call.require_instance(instance_id)
    events = await call.client.get_history(instance_id)
    return _json({"instanceId": instance_id, "events": history_events(events)})


async def task_hub(request: ApiRequest) -> web.Response:
    """`GET /taskhub`: partitions and their owners, queue depths, workers seen."""
    call = _Call(request)
    return _json(await task_hub_state(call.client.task_hub, datetime.now(UTC)))


async def counts(request: ApiRequest) -> web.Response:
    """`GET /taskhub/counts`: instances per runtime status (capped) matching the filters."""
    call = _Call(request)
    query = _instance_query(call.params)
    return _json({"counts": await status_counts(call.client.task_hub, query)})
