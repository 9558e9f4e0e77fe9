"""The instance-management commands of `durable-ext` (Core Tools' `func durable ...`).

Each command reads the app root's settings like Core Tools (host.json, local.settings.json
`Values`, environment variables on top), opens the task hub with a client (no worker), does one
thing and prints a readable text form or, with `--json`, a JSON document on stdout. Failures
print one line on stderr and return 1; `UsageError` is left to the caller (exit code 2).
Secrets (account keys, SAS signatures) are redacted from every error message.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any, TextIO

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)

from ..client import DurableOrchestrationClient
from ..orchestration.history import HistoryEvent, format_time
from ..orchestration.status import OrchestrationRuntimeStatus
from ..settings import (
    SettingsError,
    app_settings,
    load_durable_task_settings,
    load_host_json,
    load_local_settings,
)
from ..status import DurableOrchestrationStatus, format_status_time
from ..storage.client_options import FAIL_FAST
from ..storage.connection import StorageConnection
from ..storage.names import validate_hub_name
from ..storage.task_hub import TaskHub
from .wake_up import WakeUpSender

__all__ = [
    "COMMANDS",
    "CommandError",
    "ManagementCommand",
    "UsageError",
    "execute",
    "read_json_argument",
]

PROG = "durable-ext"
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_INTERRUPTED = 130
DETAIL_WIDTH = 70

_SECRET_RE = re.compile(r"(?i)\b(AccountKey|SharedAccessSignature|sig)=([^;&\s'\"]+)")


class CommandError(Exception):
    """A command failed; the message is printed as one line on stderr (exit code 1)."""


class UsageError(Exception):
    """The command line is wrong (exit code 2, with the command's usage)."""


def read_json_argument(text: str | None, option: str) -> Any:
    """JSON text, or `@path` to a file holding JSON; CommandError when it is neither."""
    if text is None:
        return None
    source = option
    if text.startswith("@"):
        path = Path(text[1:])
        source = f"{option} file {path}"
        try:
            text = path.read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise CommandError(f"cannot read {source}: {exc.strerror or exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandError(
            f"{source} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            "quote strings, e.g. '\"text\"', or pass @file.json"
        ) from None


# -- settings and storage ----------------------------------------------------------------------


@dataclass(frozen=True)
class Redactor:
    """Removes account keys and SAS signatures from text meant for the terminal."""

    secrets: frozenset[str] = frozenset()

    @classmethod
    def from_settings(cls, settings: Mapping[str, str]) -> Redactor:
        found = {m.group(2) for value in settings.values() for m in _SECRET_RE.finditer(value)}
        return cls(frozenset(secret for secret in found if len(secret) >= 6))

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return _SECRET_RE.sub(lambda match: f"{match.group(1)}=***", text)


@dataclass(frozen=True)
class HubTarget:
    """Where a command works: the connection, the hub and its configured partition count."""

    connection: StorageConnection
    hub_name: str
    partition_count: int

    @property
    def where(self) -> str:
        return (
            f"storage account '{self.connection.account_name}' (connection {self.connection.name})"
        )


def _load_app_settings(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, str]]:
    root = Path(args.app_root).resolve()
    host_json = load_host_json(root / "host.json")
    return host_json, app_settings(load_local_settings(root / "local.settings.json"))


def _resolve_target(
    args: argparse.Namespace, host_json: Mapping[str, Any], settings: Mapping[str, str]
) -> HubTarget:
    durable = load_durable_task_settings(host_json, settings)
    setting = args.connection_string_setting or durable.connection_name
    connection = StorageConnection.from_app_settings(setting, settings).with_options(FAIL_FAST)
    hub_name = validate_hub_name(args.task_hub_name or durable.hub_name)
    return HubTarget(connection, hub_name, durable.partition_count)


async def _open_hub(target: HubTarget, command: ManagementCommand) -> tuple[TaskHub, bool]:
    """The open hub (with the partition count it was created with) and whether it existed."""
    hub = TaskHub(target.connection, target.hub_name, target.partition_count)
    hub.open()
    try:
        count = await hub.recorded_partition_count()
        if count is not None and count != hub.partition_count:
            # Messages must go to the control queues the hub really has.
            print(
                f"note: task hub '{target.hub_name}' has {count} partitions (partitionCount "
                f"is {hub.partition_count}); using {count}",
                file=sys.stderr,
            )
            await hub.close()
            hub = TaskHub(target.connection, target.hub_name, count)
            hub.open()
        if count is None and command.creates_hub:
            await hub.create_if_not_exists()
            print(
                f"note: task hub '{target.hub_name}' did not exist in {target.where}; created it",
                file=sys.stderr,
            )
        elif count is None and command.needs_hub:
            raise CommandError(
                f"task hub '{target.hub_name}' does not exist in {target.where}; check "
                "--task-hub-name, or hubName in host.json"
            )
    except BaseException:
        await hub.close()
        raise
    return hub, count is not None


# -- output ------------------------------------------------------------------------------------


@dataclass
class Session:
    """What a command works with: the open hub, a client, and the output form."""

    hub: TaskHub
    client: DurableOrchestrationClient
    target: HubTarget
    hub_existed: bool
    as_json: bool
    out: TextIO = field(default_factory=lambda: sys.stdout)

    def emit(self, text: str, data: Any) -> None:
        """Print `text`, or `data` as JSON with --json."""
        if self.as_json:
            print(
                json.dumps(data, indent=2, ensure_ascii=False, default=_json_default), file=self.out
            )
        elif text:
            print(text, file=self.out)

    def not_found(self, instance_id: str) -> CommandError:
        return CommandError(
            f"no instance with ID '{instance_id}' found in task hub '{self.target.hub_name}'"
        )


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_time(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _plain(value: Any) -> Any:
    """Enums (EventType, OrchestrationStatus) by name, as Core Tools prints them."""
    return value.name if isinstance(value, Enum) else value


def _show(value: Any) -> str:
    """A value for a text table: strings as they are, everything else as compact JSON."""
    if value is None:
        return ""
    if isinstance(value, Enum):
        return value.name
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return format_status_time(value) or ""
    return json.dumps(value, ensure_ascii=False, default=_json_default, separators=(",", ":"))


def _clip(text: str, width: int = DETAIL_WIDTH) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [
        max([len(header), *(len(row[i]) for row in rows)]) for i, header in enumerate(headers)
    ]
    lines = [headers, ["-" * width for width in widths], *rows]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def _fields(pairs: Sequence[tuple[str, Any]]) -> str:
    width = max(len(name) for name, _ in pairs)
    return "\n".join(f"{name.ljust(width)}  {_show(value)}".rstrip() for name, value in pairs)


def _status_json(
    status: DurableOrchestrationStatus, show_input: bool, show_output: bool
) -> dict[str, Any]:
    data = status.to_status_payload()
    if not show_input:
        data.pop("input", None)
    if not show_output:
        data.pop("output", None)
    return data


def _event_json(event: HistoryEvent) -> dict[str, Any]:
    """A history event in DTFx's field names, EventType by name (as Core Tools prints it)."""
    data = {key: _plain(value) for key, value in event.to_fields().items() if value is not None}
    data["EventType"] = event.event_type.name
    return data


_DETAIL_KEYS = (
    "TaskScheduledId",
    "TimerId",
    "FireAt",
    "OrchestrationStatus",
    "Reason",
    "Input",
    "Result",
    "Details",
    "FailureDetails",
)


def _event_row(event: HistoryEvent) -> list[str]:
    data = event.to_fields()
    details = []
    for key in _DETAIL_KEYS:
        value = data.get(key)
        if value is not None and value != "":
            details.append(f"{key}={_show(value)}")
    return [
        str(event.event_id),
        format_status_time(event.timestamp) or "",
        event.event_type.name,
        _show(data.get("Name")),
        _clip(" ".join(details)),
    ]


# -- the commands ------------------------------------------------------------------------------


def _prepare_start_new(args: argparse.Namespace) -> None:
    args.input_value = read_json_argument(args.input, "--input")


async def _start_new(session: Session, args: argparse.Namespace) -> None:
    instance_id = await session.client.start_new(args.function_name, args.id, args.input_value)
    hub = session.target.hub_name
    session.emit(
        f"Started '{args.function_name}' with instance ID '{instance_id}' in task hub '{hub}'.",
        {"instanceId": instance_id, "name": args.function_name, "taskHub": hub},
    )


async def _get_runtime_status(session: Session, args: argparse.Namespace) -> None:
    status = await session.client.get_status(args.id, show_input=args.show_input)
    if not status:
        raise session.not_found(args.id)
    data = _status_json(status, args.show_input, args.show_output)
    pairs: list[tuple[str, Any]] = [
        ("Instance ID", status.instance_id),
        ("Name", status.name),
        ("Runtime status", data["runtimeStatus"]),
        ("Created", data["createdTime"]),
        ("Last updated", data["lastUpdatedTime"]),
        ("Custom status", status.custom_status),
    ]
    if args.show_input:
        pairs.append(("Input", status.input_))
    if args.show_output:
        pairs.append(("Output", status.output))
    session.emit(_fields(pairs), data)


async def _get_history(session: Session, args: argparse.Namespace) -> None:
    if not await session.client.get_status(args.id):
        raise session.not_found(args.id)
    events = await session.client.get_history(args.id)
    headers = ("EventId", "Timestamp", "EventType", "Name", "Details")
    session.emit(
        _table(headers, [_event_row(event) for event in events]),
        [_event_json(event) for event in events],
    )


async def _get_instances(session: Session, args: argparse.Namespace) -> None:
    try:
        statuses, token = await session.client.list_instances(
            created_time_from=args.created_after,
            created_time_to=args.created_before,
            runtime_status=args.runtime_status,
            instance_id_prefix=args.instance_id_prefix,
            page_size=args.top,
            continuation_token=args.continuation_token,
            show_input=args.show_input,
        )
    except ValueError as exc:  # a token that is not ours
        raise CommandError(f"--continuation-token is not valid: {exc}") from None
    rows = [
        [
            status.instance_id or "",
            status.name or "",
            status.runtime_status.value if status.runtime_status else "",
            format_status_time(status.created_time) or "",
            format_status_time(status.last_updated_time) or "",
        ]
        for status in statuses
    ]
    headers = ("Instance ID", "Name", "Runtime status", "Created", "Last updated")
    text = _table(headers, rows) if rows else "No instances found."
    text += (
        f"\nContinuation token for next set of results: '{token}'"
        if token
        else "\nNo more results."
    )
    session.emit(
        text,
        {
            "instances": [_status_json(s, args.show_input, True) for s in statuses],
            "continuationToken": token,
        },
    )


def _prepare_raise_event(args: argparse.Namespace) -> None:
    args.event_value = read_json_argument(args.event_data, "--event-data")


async def _raise_event(session: Session, args: argparse.Namespace) -> None:
    await session.client.raise_event(args.id, args.event_name, args.event_value)
    session.emit(
        f"Raised event '{args.event_name}' to instance '{args.id}'.",
        {"instanceId": args.id, "eventName": args.event_name},
    )


async def _terminate(session: Session, args: argparse.Namespace) -> None:
    status = await session.client.get_status(args.id)
    if not status:
        raise session.not_found(args.id)
    if status.runtime_status is not None and status.runtime_status.is_terminal:
        raise CommandError(
            f"instance '{args.id}' is {status.runtime_status.value} and cannot be terminated"
        )
    await session.client.terminate(args.id, args.reason)
    session.emit(
        f"Sent a termination request to instance '{args.id}'.",
        {"instanceId": args.id, "reason": args.reason},
    )


async def _suspend(session: Session, args: argparse.Namespace) -> None:
    await session.client.suspend(args.id, args.reason)
    session.emit(
        f"Sent a suspend request to instance '{args.id}'.",
        {"instanceId": args.id, "reason": args.reason},
    )


async def _resume(session: Session, args: argparse.Namespace) -> None:
    await session.client.resume(args.id, args.reason)
    session.emit(
        f"Sent a resume request to instance '{args.id}'.",
        {"instanceId": args.id, "reason": args.reason},
    )


def _prepare_purge_history(args: argparse.Namespace) -> None:
    filters = [args.created_after, args.created_before, args.runtime_status]
    if args.id is not None and any(value is not None for value in filters):
        raise UsageError("give either --id, or filters (--created-after ...), not both")
    if args.id is None and args.created_after is None:
        raise UsageError("give --id, or --created-after to purge by filter")
    active = [s.value for s in args.runtime_status or () if s.is_active]
    if active:
        finished = sorted(s.value for s in OrchestrationRuntimeStatus if s.is_terminal)
        raise UsageError(
            f"only finished instances can be purged; --runtime-status {', '.join(active)} "
            f"is not one of {', '.join(finished)}"
        )


async def _purge_history(session: Session, args: argparse.Namespace) -> None:
    if args.id is not None:
        result = await session.client.purge_instance_history(args.id)
        if result.instances_deleted == 0:
            raise session.not_found(args.id)
        text = f"Purged the history of instance '{args.id}'."
    else:
        result = await session.client.purge_instance_history_by(
            args.created_after, args.created_before, args.runtime_status
        )
        since = format_status_time(args.created_after)
        until = format_status_time(args.created_before) if args.created_before else "now"
        text = f"Purged finished instances created from {since} to {until}"
        if args.runtime_status:
            text += f" with runtime status {', '.join(s.value for s in args.runtime_status)}"
        text += "."
    session.emit(
        f"{text}\nInstances deleted: {result.instances_deleted}",
        {"instancesDeleted": result.instances_deleted},
    )


def _prepare_delete_task_hub(args: argparse.Namespace) -> None:
    if not args.yes and (sys.stdin is None or not sys.stdin.isatty()):
        raise UsageError(
            "refusing to delete the task hub without confirmation: stdin is not a terminal; "
            "pass --yes"
        )


def _confirm(question: str) -> bool:
    print(f"{question} [y/N] ", end="", file=sys.stderr, flush=True)
    return sys.stdin.readline().strip().lower() in ("y", "yes")


async def _delete_task_hub(session: Session, args: argparse.Namespace) -> None:
    name = session.target.hub_name
    if session.hub_existed and not args.yes:
        question = (
            f"Delete task hub '{name}' (its queues, tables and blobs, with every instance) "
            f"in {session.target.where}?"
        )
        if not _confirm(question):
            raise CommandError(f"aborted; task hub '{name}' was not deleted")
    # Also when the info blob is missing: removes what a half-created hub left behind.
    await session.hub.delete()
    text = (
        f"Task hub '{name}' deleted."
        if session.hub_existed
        else f"Task hub '{name}' does not exist in {session.target.where}; nothing to delete."
    )
    session.emit(text, {"taskHub": name, "deleted": session.hub_existed})


def _no_preparation(args: argparse.Namespace) -> None:
    return None


@dataclass(frozen=True)
class ManagementCommand:
    """What a management command does (its options live in `cli`)."""

    name: str
    run: Callable[[Session, argparse.Namespace], Awaitable[None]]
    # Checks and reads arguments before any I/O; raises UsageError or CommandError.
    prepare: Callable[[argparse.Namespace], None] = _no_preparation
    creates_hub: bool = False  # start-new creates a missing hub, as DTFx's client does
    needs_hub: bool = True


COMMANDS: dict[str, ManagementCommand] = {
    command.name: command
    for command in (
        ManagementCommand("start-new", _start_new, _prepare_start_new, creates_hub=True),
        ManagementCommand("get-runtime-status", _get_runtime_status),
        ManagementCommand("get-history", _get_history),
        ManagementCommand("get-instances", _get_instances),
        ManagementCommand("raise-event", _raise_event, _prepare_raise_event),
        ManagementCommand("terminate", _terminate),
        ManagementCommand("suspend", _suspend),
        ManagementCommand("resume", _resume),
        ManagementCommand("purge-history", _purge_history, _prepare_purge_history),
        ManagementCommand(
            "delete-task-hub", _delete_task_hub, _prepare_delete_task_hub, needs_hub=False
        ),
    )
}


# -- running -----------------------------------------------------------------------------------


async def _run(command: ManagementCommand, target: HubTarget, args: argparse.Namespace) -> None:
    try:
        hub, existed = await _open_hub(target, command)
        try:
            # An app scaled to zero is woken for what the command sends (docs/azure.md).
            client = DurableOrchestrationClient(
                hub, wake_up=WakeUpSender(hub.wake_queue).after_send
            )
            session = Session(hub, client, target, existed, args.json)
            await command.run(session, args)
        finally:
            await hub.close()
    finally:
        await target.connection.close()


def _describe_error(exc: BaseException, target: HubTarget | None) -> str:
    where = target.where if target is not None else "storage"
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        hint = (
            "; is Azurite running? (`durable-ext start` starts it for UseDevelopmentStorage=true)"
            if target is not None and target.connection.is_development_storage
            else "; check the endpoint and the network"
        )
        reason = str(getattr(exc, "message", "") or exc).splitlines()[0]
        return f"cannot reach {where}: {reason}{hint}"
    if isinstance(exc, HttpResponseError):
        error_code = getattr(exc, "error_code", None)
        code = f"HTTP {exc.status_code} {getattr(error_code, 'value', error_code) or exc.reason}"
        if isinstance(exc, ClientAuthenticationError) or exc.status_code in (401, 403):
            return f"{where} refused the request: {code}; check the account key or credentials"
        return f"storage request failed: {code}"
    if isinstance(exc, CommandError | SettingsError | LookupError | ValueError | RuntimeError):
        return str(exc)
    return f"unexpected {type(exc).__name__}: {exc}"


def execute(command: ManagementCommand, args: argparse.Namespace) -> int:
    """Run a management command; returns the exit code. UsageError propagates (exit code 2)."""
    redact = Redactor()
    target: HubTarget | None = None
    try:
        command.prepare(args)
        host_json, settings = _load_app_settings(args)
        redact = Redactor.from_settings(settings)
        target = _resolve_target(args, host_json, settings)
        asyncio.run(_run(command, target, args))
    except UsageError:
        raise
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - any failure is one line on stderr, exit 1
        message = " ".join(_describe_error(exc, target).split())
        print(f"{PROG}: error: {redact(message)}", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK
