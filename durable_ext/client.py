"""`DurableOrchestrationClient`: start, query and control orchestration instances, on storage."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from opentelemetry.trace import SpanKind

from .entity_client import EntityClientMixin
from .history_view import history_view
from .orchestration import codec
from .orchestration.history import (
    EventRaised,
    ExecutionResumed,
    ExecutionStarted,
    ExecutionSuspended,
    ExecutionTerminated,
    GenericEvent,
    HistoryEvent,
    OrchestrationInstance,
)
from .orchestration.instance_ids import MAX_INSTANCE_ID_LENGTH, validate_instance_id
from .orchestration.status import OrchestrationRuntimeStatus
from .settings import load_durable_task_settings, read_app_host_json
from .status import DurableOrchestrationStatus, PurgeHistoryResult
from .storage.connection import StorageConnection
from .storage.instance_store import NO_TAGS, InstanceColumns, InstanceQuery, InstanceRow
from .storage.keys import escape_key
from .storage.messages import CLIENT_SENDER, MessageData
from .storage.task_hub import TaskHub
from .tracing import (
    INSTANCE_ID,
    NAME,
    TARGET_INSTANCE_ID,
    TYPE,
    VERSION,
    carrier_of,
    current_context,
)
from .tracking import FunctionType
from .worker.registry import FunctionRegistry

__all__ = [
    "DurableOrchestrationClient",
    "InstanceNotFoundError",
    "InstanceGoneError",
    "InstanceAlreadyExistsError",
    "validate_instance_id",
    "MAX_INSTANCE_ID_LENGTH",
    "WEBHOOK_PATH",
    "MANAGEMENT_ROUTE",
    "management_function_path",
    "public_base_url",
]

WEBHOOK_PATH = "/runtime/webhooks/durabletask"
"""Where Durable Functions' own host serves the management API (`durable-ext start` too)."""
MANAGEMENT_ROUTE = "durabletask"
"""The route root of the app's management functions, under the app's `routePrefix`."""
LOCAL_BASE_URL = "http://localhost:7071"
_CONCURRENT_START_INPUT = 7 * 1024
"""Inputs up to this many characters always fit a queue message (45 KB even if every character
took 6 bytes), so a new id's start message and Pending row are written at once."""
_LOOPBACK = ("localhost", "127.0.0.1", "[::1]", "::1")


def management_function_path(route_prefix: str = "api") -> str:
    """The path of the app's management functions: `/{routePrefix}/durabletask`."""
    return "/" + "/".join(p for p in (route_prefix.strip("/"), MANAGEMENT_ROUTE) if p)


def _is_loopback(netloc: str) -> bool:
    host = netloc.rsplit("@", 1)[-1]
    host = host.split("]")[0] + "]" if host.startswith("[") else host.split(":")[0]
    return host.lower() in _LOOPBACK


def public_base_url(request_url: str | None) -> str:
    """`scheme://host` for generated URLs: the request's, else `https://{WEBSITE_HOSTNAME}` (the
    app's name in Azure), else `http://localhost:7071`. A loopback request URL gives way to a
    WEBSITE_HOSTNAME that is not loopback, so Azure never hands out `localhost` URLs."""
    website = (os.environ.get("WEBSITE_HOSTNAME") or "").strip().rstrip("/")
    from_setting = None
    if website:
        scheme = "http" if _is_loopback(website) else "https"
        from_setting = f"{scheme}://{website}"
    if request_url:
        parts = urlsplit(request_url)
        if parts.scheme and parts.netloc:
            if _is_loopback(parts.netloc) and from_setting and not _is_loopback(website):
                return from_setting
            return f"{parts.scheme}://{parts.netloc}"
    return from_setting or LOCAL_BASE_URL


class InstanceNotFoundError(LookupError):
    """No instance with that id exists."""


class InstanceGoneError(RuntimeError):
    """The instance cannot take this request in its state (`runtime_status`, when known): it
    has finished, or (to be purged) it has not."""

    def __init__(
        self, message: str, runtime_status: OrchestrationRuntimeStatus | None = None
    ) -> None:
        super().__init__(message)
        self.runtime_status = runtime_status


class InstanceAlreadyExistsError(RuntimeError):
    """An active instance already uses that id."""


def management_urls(
    base_url: str,
    instance_id: str,
    task_hub: str,
    connection: str,
    system_key: str | None,
    path: str = WEBHOOK_PATH,
) -> dict[str, str]:
    """The check-status payload: an instance's management URIs under `base_url + path`, in the
    extension's order."""
    root = base_url.rstrip("/") + path.rstrip("/") + "/instances/" + quote(instance_id, safe="")
    query = {"taskHub": task_hub, "connection": connection}
    if system_key:
        query["code"] = system_key
    common = urlencode(query)
    return {
        "id": instance_id,
        "statusQueryGetUri": f"{root}?{common}",
        "sendEventPostUri": f"{root}/raiseEvent/{{eventName}}?{common}",
        "terminatePostUri": f"{root}/terminate?reason={{text}}&{common}",
        "purgeHistoryDeleteUri": f"{root}?{common}",
        "restartPostUri": f"{root}/restart?{common}",
        "suspendPostUri": f"{root}/suspend?reason={{text}}&{common}",
        "resumePostUri": f"{root}/resume?reason={{text}}&{common}",
    }


class DurableOrchestrationClient(EntityClientMixin):
    """Drives orchestration instances of one task hub (the SDK's client, working on storage).

    `context` is the task hub, or as with the SDK a durableClient binding's JSON (`taskHubName`,
    the connection in `requiredQueryStringParameters`; storage from the app settings, then
    `close()` the client). `wake_up`, if given, is awaited with a reason after every message the client sends for an
    instance, so an app scaled to zero can be woken for it (`host.wake_up.WakeUpSender`).
    """

    def __init__(
        self,
        context: TaskHub | str,
        function_invocation_id: str | None = None,
        *,
        registry: FunctionRegistry | None = None,
        connection_name: str = "Storage",
        system_key: str | None = None,
        management_path: str = management_function_path(),
        wake_up: Callable[[str], Awaitable[None]] | None = None,
        default_version: str = "",
        replace_running_instances: bool = False,
    ) -> None:
        self._owns_hub = isinstance(context, str)
        if isinstance(context, str):
            hub, connection_name = _binding_hub(context)
        else:
            hub = context
        self._hub = hub
        self.function_invocation_id = function_invocation_id
        self._default_version = default_version
        self._replace_running = replace_running_instances
        self.other_hubs: Callable[[str | None, str | None], Awaitable[DurableOrchestrationClient]]
        self.other_hubs = self._this_hub_only
        self._wake_up = wake_up
        self._registry = registry
        self._connection_name = connection_name
        self._system_key = system_key
        self._management_path = management_path
        self.task_hub_name = hub.names.hub

    async def close(self) -> None:
        """Close the task hub a client made from binding JSON opened (other clients' hubs belong
        to their owners)."""
        if self._owns_hub:
            await self._hub.close()

    async def _this_hub_only(
        self, task_hub: str | None, connection: str | None
    ) -> DurableOrchestrationClient:
        """`other_hubs` of a client that knows no other hub (`hub_clients.HubClients` sets it)."""
        same_hub = not task_hub or task_hub.lower() == self.task_hub_name.lower()
        if same_hub and not connection:
            return self
        raise ValueError(
            f"this client serves task hub {self.task_hub_name!r}; it cannot reach "
            f"task hub {task_hub!r} on connection {connection!r}"
        )

    async def _target(
        self, task_hub_name: str | None, connection_name: str | None
    ) -> DurableOrchestrationClient:
        if task_hub_name is None and connection_name is None:
            return self
        return await self.other_hubs(task_hub_name, connection_name)

    @property
    def connection_name(self) -> str:
        """The connection name the management URLs carry (`connection=`)."""
        return self._connection_name

    @property
    def task_hub(self) -> TaskHub:
        """The task hub's storage (what the dashboard's task hub view reads)."""
        return self._hub

    @property
    def management_path(self) -> str:
        """The path the management URLs point at (the app's management functions)."""
        return self._management_path

    # -- starting ------------------------------------------------------------------------------
    async def start_new(
        self,
        orchestration_function_name: str,
        instance_id: str | None = None,
        client_input: Any | None = None,
        version: str | None = None,
    ) -> str:
        """Start an orchestration; returns its instance id. An active instance with the id is an
        error. `version` defaults to the app's `defaultVersion`."""
        name = self._orchestrator_name(orchestration_function_name)
        version = version or self._default_version
        input_json = codec.encode(client_input)
        if instance_id is None:
            # A new UUID: no instance can exist, so no read first, and the start message and the
            # Pending row go at once (the worker's first checkpoint merges the row either way).
            instance_id = uuid.uuid4().hex
            small = len(input_json or "") <= _CONCURRENT_START_INPUT
            await self._start_over(instance_id, name, input_json, version, None, at_once=small)
            return instance_id
        instance_id = validate_instance_id(instance_id)
        existing = await self._hub.instances.get(instance_id, fetch_payloads=False)
        if existing is not None and existing.runtime_status.is_active and not self._replace_running:
            raise InstanceAlreadyExistsError(
                f"An instance with ID '{instance_id}' already exists and is "
                f"{existing.runtime_status.value}."
            )
        await self._start_over(instance_id, name, input_json, version, existing)
        return instance_id

    async def _start_over(
        self,
        instance_id: str,
        name: str,
        input_json: str | None,
        version: str | None,
        existing: InstanceRow | None,
        *,
        at_once: bool = False,
    ) -> None:
        """Send the ExecutionStarted, then write the Pending row over `existing`: in that order,
        which restarts rely on (a worker that sees the row also finds the message); `at_once`
        for a new UUID, which no instance can have, when the input stays in the message. When the
        message went to a blob, the row's Input is that blob's URL (as DTFx writes it), not a
        second copy of the input."""
        with self._start_span(name, instance_id, version) as trace_context:
            message, columns = _pending_start(
                instance_id, name, input_json, version, existing, trace_context
            )
            self._hub.tracking.scheduled(
                instance_id, name, FunctionType.Orchestrator, "NewInstance"
            )
            etag = existing.etag if existing is not None else None
            if at_once:
                await asyncio.gather(
                    self._hub.send_to_instance(message),
                    self._hub.instances.create(instance_id, columns, etag),
                )
            else:
                await self._hub.send_to_instance(message)
                if message.compressed_blob_name:
                    url = self._hub.payloads.url_for(message.compressed_blob_name)
                    columns = replace(columns, input=url)
                await self._hub.instances.create(instance_id, columns, etag)
        await self._woken("start")

    @contextlib.contextmanager
    def _start_span(
        self, name: str, instance_id: str, version: str | None
    ) -> Iterator[dict[str, Any] | None]:
        """The `create_orchestration:{name}` PRODUCER span around a start, under the caller's
        span; yields its context for the ExecutionStarted message (None: tracing is off)."""
        attributes = {TYPE: "orchestration", NAME: name, INSTANCE_ID: instance_id}
        with self._hub.tracing.span(
            f"create_orchestration:{name}",
            SpanKind.PRODUCER,
            parent=current_context(),
            attributes={**attributes, VERSION: version or None},
        ) as span:
            yield carrier_of(span) if span is not None else None

    def _orchestrator_name(self, name: Any) -> str:
        if not isinstance(name, str) or not name:
            raise ValueError("orchestration_function_name must be a non-empty string")
        if self._registry is not None:
            if not self._registry.has_orchestrator(name):
                raise ValueError(
                    f"The function '{name}' doesn't exist, is disabled, or is not an orchestrator function."
                )
            return self._registry.orchestrator(name).name
        return name

    # -- reading -------------------------------------------------------------------------------
    async def get_status(
        self,
        instance_id: str,
        show_history: bool = False,
        show_history_output: bool = False,
        show_input: bool = False,
    ) -> DurableOrchestrationStatus:
        """The instance's status (falsy when there is no such instance)."""
        row = await self._hub.instances.get(instance_id, for_status=True)
        if row is None:
            return DurableOrchestrationStatus()
        history = None
        if show_history:
            loaded = await self._hub.history.load(instance_id)
            history = history_view(loaded.events, show_history_output)
        return _status(row, show_input, history)

    async def get_history(self, instance_id: str) -> list[HistoryEvent]:
        """The raw history events of the current execution."""
        return (await self._hub.history.load(instance_id)).events

    async def list_instances(
        self,
        *,
        created_time_from: datetime | None = None,
        created_time_to: datetime | None = None,
        runtime_status: Sequence[OrchestrationRuntimeStatus] | None = None,
        instance_id_prefix: str | None = None,
        page_size: int = 100,
        continuation_token: str | None = None,
        show_input: bool = True,
        name: str | None = None,
    ) -> tuple[list[DurableOrchestrationStatus], str | None]:
        """One page of the instances matching the filters (as `get_status_by`'s, and `name`, the
        orchestrator's) and the token of the next page (None at the end). A token that is not one
        of ours is a ValueError."""
        query = InstanceQuery(
            created_from=created_time_from,
            created_to=created_time_to,
            runtime_status=list(runtime_status) if runtime_status else None,
            instance_id_prefix=instance_id_prefix,
            name=name,
        )
        rows, token = await self._hub.instances.query(
            query, page_size=page_size, continuation=continuation_token
        )
        return [_status(row, show_input, None) for row in rows], token

    async def get_status_by(
        self,
        created_time_from: datetime | None = None,
        created_time_to: datetime | None = None,
        runtime_status: Sequence[OrchestrationRuntimeStatus] | None = None,
        instance_id_prefix: str | None = None,
    ) -> list[DurableOrchestrationStatus]:
        """Every instance matching the filters (all pages, no 100-instance cap)."""
        statuses: list[DurableOrchestrationStatus] = []
        token: str | None = None
        while True:
            page, token = await self.list_instances(
                created_time_from=created_time_from,
                created_time_to=created_time_to,
                runtime_status=runtime_status,
                instance_id_prefix=instance_id_prefix,
                continuation_token=token,
            )
            statuses.extend(page)
            if not token:
                return statuses

    async def get_status_all(self) -> list[DurableOrchestrationStatus]:
        """Every instance of the hub."""
        return await self.get_status_by()

    async def wait_for_completion(
        self, instance_id: str, timeout: float = 60.0, poll_interval: float = 0.1
    ) -> DurableOrchestrationStatus:
        """Poll until the instance is Completed, Failed, Terminated or Canceled (or time out)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            status = await self.get_status(instance_id)
            if status and status.runtime_status and status.runtime_status.is_terminal:
                return status
            if loop.time() >= deadline:
                raise TimeoutError(
                    f"Instance {instance_id} did not finish within {timeout} s "
                    f"(status: {status.runtime_status.value if status.runtime_status else 'not found'})"
                )
            await asyncio.sleep(min(poll_interval, max(deadline - loop.time(), 0)))

    # -- controlling -----------------------------------------------------------------------------
    async def raise_event(
        self,
        instance_id: str,
        event_name: str,
        event_data: Any = None,
        task_hub_name: str | None = None,
        connection_name: str | None = None,
    ) -> None:
        """Send an event to a running instance."""
        _check_event_name(event_name)
        target = await self._target(task_hub_name, connection_name)
        if target is not self:
            return await target.raise_event(instance_id, event_name, event_data)
        payload = codec.encode(event_data)
        row = await self._require_active(instance_id, "either completed or failed")
        await self._raise(row, event_name, payload)

    async def active_instance(self, instance_id: str) -> InstanceRow:
        """The row of a running, pending or suspended instance (without its payloads):
        InstanceNotFoundError when there is none, InstanceGoneError when it has finished. With
        `raise_event_on`, one read per event instead of two for a caller that must answer those
        cases before it reads the event (the management API's raiseEvent)."""
        return await self._require_active(instance_id, "either completed or failed")

    async def raise_event_on(
        self, row: InstanceRow, event_name: str, event_data: Any = None
    ) -> None:
        """`raise_event` to the instance `active_instance` returned, without reading it again."""
        _check_event_name(event_name)
        await self._raise(row, event_name, codec.encode(event_data))

    async def _raise(self, row: InstanceRow, event_name: str, payload: str) -> None:
        instance_id = row.instance_id
        reason = f"RaiseEvent:{event_name}"
        self._hub.tracking.scheduled(instance_id, row.name or "", FunctionType.Orchestrator, reason)
        event = EventRaised(timestamp=datetime.now(UTC), name=event_name, input=payload)
        attributes = {TYPE: "event", NAME: event_name, TARGET_INSTANCE_ID: instance_id}
        with self._hub.tracing.span(
            f"orchestration_event:{event_name}",
            SpanKind.PRODUCER,
            parent=current_context(),
            attributes=attributes,
        ) as span:
            if span is not None:
                event.parent_trace_context = carrier_of(span)
            await self._send(instance_id, event)

    async def terminate(self, instance_id: str, reason: str) -> None:
        """Terminate a running, pending or suspended instance (a finished one is left alone)."""
        row = await self._row(instance_id)
        if row.is_terminal:
            return
        self._hub.tracking.terminated(instance_id, row.name or "", reason)
        await self._send(
            instance_id, ExecutionTerminated(timestamp=datetime.now(UTC), input=reason)
        )

    async def suspend(self, instance_id: str, reason: str) -> None:
        """Suspend a running instance: it keeps its messages but makes no progress until resumed
        (a finished instance is left alone, as with the SDK)."""
        row = await self._row(instance_id)
        if not row.is_terminal:
            self._hub.tracking.suspending(instance_id, row.name or "", reason)
            await self._send(
                instance_id, ExecutionSuspended(timestamp=datetime.now(UTC), reason=reason)
            )

    async def resume(self, instance_id: str, reason: str) -> None:
        """Resume a suspended instance (a finished instance is left alone, as with the SDK)."""
        row = await self._row(instance_id)
        if not row.is_terminal:
            self._hub.tracking.resuming(instance_id, row.name or "", reason)
            await self._send(
                instance_id, ExecutionResumed(timestamp=datetime.now(UTC), reason=reason)
            )

    async def restart(self, instance_id: str, restart_with_new_instance_id: bool = True) -> str:
        """Start the instance's orchestrator again with its original input; returns the id used.

        With `restart_with_new_instance_id=False` the same id is reused, which fails with
        InstanceAlreadyExistsError while that instance is still active.
        """
        row = await self._hub.instances.get(instance_id)
        if row is None:
            raise InstanceNotFoundError(f"No instance with ID '{instance_id}' found.")
        new_id = uuid.uuid4().hex if restart_with_new_instance_id else instance_id
        client_input = json.loads(row.input) if row.input else None
        return await self.start_new(row.name or "", new_id, client_input, row.version or None)

    async def rewind(
        self,
        instance_id: str,
        reason: str,
        task_hub_name: str | None = None,
        connection_name: str | None = None,
    ) -> None:
        """Rerun the failed tasks of a Failed instance (DTFx's legacy table-rewrite rewind).

        Failed activities and sub-orchestrations (recursively) are scheduled again; the instance is
        Pending until it runs. Raises InstanceNotFoundError, InstanceGoneError for a Completed,
        Terminated or Canceled instance, and ValueError for one that has not finished.
        Like Durable Functions' rewind it does not suit orchestrations whose failed path went
        through durable timers (e.g. retry policies), which replay then finds out of order.
        `task_hub_name`/`connection_name` name another task hub.
        """
        target = await self._target(task_hub_name, connection_name)
        if target is not self:
            return await target.rewind(instance_id, reason)
        row = await self._row(instance_id)
        if row.runtime_status is not OrchestrationRuntimeStatus.Failed:
            message = (
                f"Instance '{instance_id}' is {row.runtime_status.value}; only Failed instances can be "
                "rewound."
            )
            raise InstanceGoneError(message) if row.is_terminal else ValueError(message)
        now = datetime.now(UTC)
        for leaf in await self._rewind_tree(instance_id, now):
            await self._send(leaf, GenericEvent(timestamp=now, data=reason))
        self._hub.tracking.rewound(instance_id, row.name or "", reason)

    async def _rewind_tree(self, instance_id: str, now: datetime) -> list[str]:
        """Rewrite the failures of an instance and its failed children; the deepest ones to wake."""
        children = await self._hub.history.rewind_failures(instance_id)
        await self._hub.instances.merge(
            instance_id,
            InstanceColumns(
                runtime_status=OrchestrationRuntimeStatus.Pending, last_updated_time=now
            ),
        )
        leaves: list[str] = []
        for child in children:
            if await self._hub.instances.get(child, fetch_payloads=False) is not None:
                leaves += await self._rewind_tree(child, now)
        return leaves or [instance_id]

    async def _row(self, instance_id: str, for_status: bool = False) -> InstanceRow:
        row = await self._hub.instances.get(
            instance_id, fetch_payloads=False, for_status=for_status
        )
        if row is None:
            raise InstanceNotFoundError(f"No instance with ID '{instance_id}' found.")
        return row

    async def _require_active(self, instance_id: str, gone: str) -> InstanceRow:
        row = await self._row(instance_id, for_status=True)
        if row.is_terminal:
            raise InstanceGoneError(f"Instance with ID '{instance_id}' is gone: {gone}.")
        return row

    async def _send(self, instance_id: str, event: HistoryEvent) -> None:
        await self._hub.send_to_instance(
            MessageData(event, OrchestrationInstance(instance_id), sender=CLIENT_SENDER)
        )
        await self._woken(event.event_type.name)

    async def _woken(self, reason: str) -> None:
        """Ask for an app instance to run the work just sent (see `host.wake_up`)."""
        if self._wake_up is not None:
            await self._wake_up(reason)

    # -- purging -------------------------------------------------------------------------------
    async def purge_instance_history(self, instance_id: str) -> PurgeHistoryResult:
        """Delete a finished instance's history, status row and large-payload blobs."""
        row = await self._hub.instances.get(instance_id, fetch_payloads=False)
        if row is None:
            return PurgeHistoryResult(instancesDeleted=0)
        if not row.is_terminal:
            raise InstanceGoneError(
                f"Instance '{instance_id}' is {row.runtime_status.value}; only Completed, Failed, "
                "Terminated or Canceled instances can be purged.",
                row.runtime_status,
            )
        await self._purge(instance_id)
        return PurgeHistoryResult(instancesDeleted=1)

    async def _purge(self, instance_id: str) -> None:
        await self._hub.history.delete(instance_id)
        await self._hub.payloads.delete_folder(escape_key(instance_id))
        if escape_key(instance_id) != instance_id:
            await self._hub.payloads.delete_folder(instance_id)
        await self._hub.instances.delete(instance_id)

    async def purge_instance_history_by(
        self,
        created_time_from: datetime | None = None,
        created_time_to: datetime | None = None,
        runtime_status: Sequence[OrchestrationRuntimeStatus] | None = None,
    ) -> PurgeHistoryResult:
        """Purge every finished instance created in the range (non-terminal statuses are ignored)."""
        if created_time_from is None:
            raise ValueError("created_time_from is required to purge instances by filter")
        finished = [s for s in OrchestrationRuntimeStatus if s.is_terminal]
        wanted = [s for s in runtime_status if s.is_terminal] if runtime_status else finished
        query = InstanceQuery(
            created_from=created_time_from,
            created_to=created_time_to,
            runtime_status=sorted(set(wanted), key=lambda s: s.value),
            fetch_inputs_and_outputs=False,
        )
        deleted = 0
        token: str | None = None
        while wanted:
            rows, token = await self._hub.instances.query(query, continuation=token)
            for row in rows:
                await self._purge(row.instance_id)
                deleted += 1
            if not token:
                break
        return PurgeHistoryResult(instancesDeleted=deleted)

    # -- HTTP helpers ----------------------------------------------------------------------------
    def create_http_management_payload(
        self, instance_id: str, base_url: str | None = None
    ) -> dict[str, str]:
        """The management URLs of an instance (check-status payload fields), pointing at the
        app's management functions on `base_url` (default: `public_base_url(None)`, i.e.
        `https://{WEBSITE_HOSTNAME}` in Azure, `http://localhost:7071` elsewhere)."""
        return management_urls(
            base_url or public_base_url(None),
            instance_id,
            self.task_hub_name,
            self._connection_name,
            self._system_key,
            self._management_path,
        )

    def get_client_response_links(self, request: Any, instance_id: str) -> dict[str, str]:
        """Management URLs built on the request's scheme and host (see `public_base_url`)."""
        url = None if request is None else str(request.url)
        return self.create_http_management_payload(instance_id, public_base_url(url))

    def create_check_status_response(self, request: Any, instance_id: str) -> Any:
        """202 Accepted with the management URLs, `Location` and `Retry-After: 10`."""
        import azure.functions as func

        links = self.get_client_response_links(request, instance_id)
        return func.HttpResponse(
            body=codec.encode(links),
            status_code=202,
            mimetype="application/json",
            headers={"Location": links["statusQueryGetUri"], "Retry-After": "10"},
        )

    async def wait_for_completion_or_create_check_status_response(
        self,
        request: Any,
        instance_id: str,
        timeout_in_milliseconds: int = 10000,
        retry_interval_in_milliseconds: int = 1000,
    ) -> Any:
        """The output (200) if the instance finishes within the timeout, else a check-status 202."""
        import azure.functions as func

        if retry_interval_in_milliseconds > timeout_in_milliseconds:
            raise ValueError(
                f"Total timeout {timeout_in_milliseconds} (ms) should be bigger than retry timeout "
                f"{retry_interval_in_milliseconds} (ms)"
            )
        try:
            status = await self.wait_for_completion(
                instance_id, timeout_in_milliseconds / 1000, retry_interval_in_milliseconds / 1000
            )
        except TimeoutError:
            return self.create_check_status_response(request, instance_id)
        if status.runtime_status is OrchestrationRuntimeStatus.Completed:
            return func.HttpResponse(
                body=codec.encode(status.output), status_code=200, mimetype="application/json"
            )
        code = 500 if status.runtime_status is OrchestrationRuntimeStatus.Failed else 200
        return func.HttpResponse(
            body=codec.encode(status.to_json()), status_code=code, mimetype="application/json"
        )


def _check_event_name(event_name: Any) -> None:
    if not isinstance(event_name, str) or not event_name:
        raise ValueError("event_name must be a non-empty string.")
    try:
        event_name.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"event_name {event_name!r} is not valid Unicode text") from exc


def _binding_hub(binding: str) -> tuple[TaskHub, str]:
    """The task hub a durableClient binding's JSON names (`taskHubName`, and the connection in
    `requiredQueryStringParameters`), opened with the app's host.json partition count; and the
    connection's name. Settings come from the environment (the app settings)."""
    try:
        data = json.loads(binding)
    except ValueError as exc:
        raise ValueError(f"not a durableClient binding's JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError("a durableClient binding's JSON is an object with taskHubName")
    query = dict(parse_qsl(str(data.get("requiredQueryStringParameters") or "")))
    connection_name = query.get("connection") or "Storage"
    environ = dict(os.environ)
    root = Path(environ.get("AzureWebJobsScriptRoot") or os.getcwd())
    settings = load_durable_task_settings(read_app_host_json(root / "host.json", environ), environ)
    connection = StorageConnection.from_app_settings(connection_name, environ)
    hub = TaskHub(
        connection, data.get("taskHubName") or settings.hub_name, settings.partition_count
    )
    hub.open()
    return hub, connection_name


def _decoded(text: str | None) -> Any:
    """The value of stored JSON; the raw text if it is not JSON or names a class not imported here."""
    try:
        return codec.decode(text)
    except (ValueError, TypeError):
        return text


def _pending_start(
    instance_id: str,
    name: str,
    input_json: str | None,
    version: str | None,
    existing: InstanceRow | None,
    trace_context: dict[str, Any] | None = None,
) -> tuple[MessageData, InstanceColumns]:
    """The ExecutionStarted message of a new execution and its Pending Instances row."""
    now = datetime.now(UTC)
    execution_id = uuid.uuid4().hex
    generation = existing.generation + 1 if existing is not None else 0
    instance = OrchestrationInstance(instance_id, execution_id)
    started = ExecutionStarted(
        timestamp=now,
        orchestration_instance=instance,
        name=name,
        version=version or "",
        input=input_json,
        generation=generation,
        parent_trace_context=trace_context,
    )
    columns = InstanceColumns(
        name=name,
        version=version or "",
        input=input_json,
        runtime_status=OrchestrationRuntimeStatus.Pending,
        created_time=now,
        last_updated_time=now,
        execution_id=execution_id,
        generation=generation,
        tags=NO_TAGS,
    )
    return MessageData(started, instance, sender=CLIENT_SENDER), columns


_FAILURE_TYPE_PREFIX = re.compile(r"[A-Za-z_][\w.`+]*: ")


def _output(row: InstanceRow) -> Any:
    """The status `output`. A Failed row's Output is `{ErrorType}: {ErrorMessage}` (DTFx's
    FailureDetails text); the status shows the message, as Durable Functions does."""
    if (
        row.runtime_status is OrchestrationRuntimeStatus.Failed
        and row.output
        and (prefix := _FAILURE_TYPE_PREFIX.match(row.output))
    ):
        return row.output[prefix.end() :]
    return _decoded(row.output)


def _status(
    row: InstanceRow, show_input: bool, history: list[dict[str, Any]] | None
) -> DurableOrchestrationStatus:
    return DurableOrchestrationStatus(
        name=row.name,
        instanceId=row.instance_id,
        createdTime=row.created_time,
        lastUpdatedTime=row.last_updated_time,
        input=_decoded(row.input) if show_input else None,
        output=_output(row),
        runtimeStatus=row.runtime_status,
        customStatus=_decoded(row.custom_status),
        history=history,
    )
