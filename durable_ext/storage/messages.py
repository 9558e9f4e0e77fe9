"""The queue message envelope (DTFx `MessageData` around a `TaskMessage`), in DTFx's JSON shape.

Every object carries its .NET `$type` tag, enums are numbers and times have 7 fractional digits, so
a .NET DTFx worker reading our queues sees what it would have written. Bodies are UTF-8 JSON;
Base64 bodies are accepted on read.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..orchestration.history import (
    EventType,
    HistoryEvent,
    OrchestrationInstance,
    event_from_fields,
    format_time,
)

__all__ = [
    "CLIENT_SENDER",
    "MessageData",
    "MessageFormatError",
    "serialize_message",
    "parse_message",
    "wrapper_for_blob",
]

_CORE = "DurableTask.Core"
_TAGS_TYPE = (
    "System.Collections.Generic.Dictionary`2[[System.String, System.Private.CoreLib],"
    "[System.String, System.Private.CoreLib]]"
)
"""A `Dictionary<string, string>` by its full name only, as DTFx's binder writes every type
(`Type.FullName`, no assembly part)."""
_NESTED_TYPES = {
    "OrchestrationInstance": f"{_CORE}.OrchestrationInstance",
    "ParentInstance": f"{_CORE}.ParentInstance",
    "FailureDetails": f"{_CORE}.FailureDetails",
    "InnerFailure": f"{_CORE}.FailureDetails",
    "ParentTraceContext": f"{_CORE}.Tracing.DistributedTraceContext",
}
_sequence = itertools.count(1)

CLIENT_SENDER = OrchestrationInstance("", "")
"""The `Sender` of every message a client sends (DTFx `EmptySourceInstance`): empty strings, which
a .NET reader's out-of-order check dereferences on every EventRaised."""


class MessageFormatError(ValueError):
    """A queue message that is not a DTFx envelope (a poison message)."""


def _event_type_name(event_type: EventType) -> str:
    name = event_type.name
    return f"{_CORE}.History.{name if name == 'GenericEvent' else name + 'Event'}"


@dataclass(slots=True)
class MessageData:
    """One queue message: a history event addressed to an orchestration instance."""

    event: HistoryEvent
    instance: OrchestrationInstance
    """The target; an empty ExecutionId means the current execution."""
    episode: int | None = None
    sender: OrchestrationInstance | None = None
    activity_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    sequence_number: int = field(default_factory=lambda: next(_sequence))
    compressed_blob_name: str | None = None


def _wire_value(key: str, value: Any) -> Any:
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        type_tag = _NESTED_TYPES.get(key, _TAGS_TYPE if key == "Tags" else None)
        if type_tag:
            out["$type"] = type_tag
        for inner_key, inner in value.items():
            out[inner_key] = _wire_value(inner_key, inner)
        return out
    return value


def _event_json(event: HistoryEvent) -> dict[str, Any]:
    out: dict[str, Any] = {"$type": _event_type_name(event.event_type)}
    for key, value in event.to_fields().items():
        if key in ("OrchestrationStatus",) and value is not None:
            value = int(value)
        out[key] = _wire_value(key, value)
    return out


def _instance_json(instance: OrchestrationInstance | None, tagged: bool) -> dict[str, Any] | None:
    if instance is None:
        return None
    body = {"InstanceId": instance.instance_id, "ExecutionId": instance.execution_id}
    return {"$type": f"{_CORE}.OrchestrationInstance", **body} if tagged else body


def serialize_message(message: MessageData) -> str:
    """The message as DTFx JSON text."""
    body: dict[str, Any] = {
        "$type": "DurableTask.AzureStorage.MessageData",
        "ActivityId": message.activity_id,
        "TaskMessage": {
            "$type": f"{_CORE}.TaskMessage",
            "Event": _event_json(message.event),
            "SequenceNumber": 0,
            "OrchestrationInstance": _instance_json(message.instance, tagged=True),
        },
        "CompressedBlobName": message.compressed_blob_name,
        "SequenceNumber": message.sequence_number,
    }
    if message.episode is not None:
        body["Episode"] = message.episode
    if message.sender is not None:
        body["Sender"] = _instance_json(message.sender, tagged=False)
    body["SerializableTraceContext"] = None
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def wrapper_for_blob(blob_name: str) -> str:
    """The small envelope that points at a large message stored as a blob: a `MessageData`
    with only `CompressedBlobName` set, every other member at its default, as DTFx writes it."""
    return json.dumps(
        {
            "$type": "DurableTask.AzureStorage.MessageData",
            "ActivityId": "00000000-0000-0000-0000-000000000000",
            "TaskMessage": None,
            "CompressedBlobName": blob_name,
            "SequenceNumber": 0,
            "SerializableTraceContext": None,
        },
        separators=(",", ":"),
    )


def _load_body(text: str) -> dict[str, Any]:
    stripped = text.lstrip()
    if not stripped.startswith("{"):
        try:
            stripped = base64.b64decode(stripped, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise MessageFormatError("message body is neither JSON nor Base64 JSON") from exc
    try:
        body = json.loads(stripped)
    except json.JSONDecodeError as exc:
        raise MessageFormatError(f"message body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise MessageFormatError("message body is not a JSON object")
    return body


def parse_message(text: str) -> MessageData:
    """Parse a queue message; a large-message wrapper comes back with `compressed_blob_name` set
    and a placeholder event (fetch the blob and parse its content instead)."""
    body = _load_body(text)
    blob_name = body.get("CompressedBlobName")
    task = body.get("TaskMessage")
    if blob_name and not task:
        placeholder = event_from_fields({"EventType": int(EventType.GenericEvent)})
        return MessageData(
            placeholder,
            OrchestrationInstance(""),
            compressed_blob_name=blob_name,
            sequence_number=int(body.get("SequenceNumber") or 0),
        )
    if not isinstance(task, dict):
        raise MessageFormatError("message has no TaskMessage")
    try:
        event = event_from_fields(task["Event"])
        target = OrchestrationInstance.from_fields(task.get("OrchestrationInstance"))
    except (KeyError, TypeError, ValueError) as exc:
        raise MessageFormatError(f"message is not a DTFx task message: {exc!r}") from exc
    if target is None or not target.instance_id:
        raise MessageFormatError("message has no target OrchestrationInstance")
    return MessageData(
        event=event,
        instance=target,
        episode=body.get("Episode"),
        sender=OrchestrationInstance.from_fields(body.get("Sender")),
        activity_id=str(body.get("ActivityId") or uuid.uuid4()),
        sequence_number=int(body.get("SequenceNumber") or 0),
    )
