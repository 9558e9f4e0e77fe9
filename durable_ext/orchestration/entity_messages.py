"""Entity messages and scheduler state in the JSON shapes Durable Functions stores them in.

`RequestMessage` (event `op`, `op@{due}` when scheduled), `ResponseMessage` (event named by the
request id), `ReleaseMessage` (event `release`) and the `SchedulerState` an entity instance keeps as
the input of its current execution (reference: durable-entities.md §3.2, §3.4). Field names and
omitted defaults follow the extension's Newtonsoft output, so a DF app reading the hub sees its own
layout.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .entity_id import EntityId

__all__ = [
    "LOCK_GRANTED",
    "RELEASE_EVENT",
    "REQUEST_EVENT",
    "RecentRequests",
    "ReleaseMessage",
    "RequestMessage",
    "ResponseMessage",
    "SchedulerState",
    "format_time",
    "parse_time",
    "scheduled_event_name",
]

REQUEST_EVENT = "op"
RELEASE_EVENT = "release"
LOCK_GRANTED = "Lock Acquisition Completed"
_NO_TIME = "0001-01-01T00:00:00"


def format_time(moment: datetime) -> str:
    """.NET round-trip UTC text with 7 fractional digits (what Newtonsoft writes)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def parse_time(text: str | None) -> datetime | None:
    """A .NET or ISO time (up to 7 fractional digits) as aware UTC; None for empty/min."""
    if not text or text.startswith(_NO_TIME):
        return None
    value = text.rstrip("Z")
    if "." in value:
        whole, fraction = value.split(".", 1)
        offset = ""
        for sign in ("+", "-"):
            if sign in fraction:
                fraction, offset = fraction.split(sign, 1)
                offset = sign + offset
        value = f"{whole}.{fraction[:6].ljust(6, '0')}{offset}"
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def scheduled_event_name(due: datetime) -> str:
    return f"{REQUEST_EVENT}@{format_time(due)}"


@dataclass(slots=True)
class RequestMessage:
    """An operation, signal or lock request sent to an entity."""

    id: str
    operation: str | None = None
    signal: bool = False
    input: str | None = None
    """The operation input as JSON text."""
    parent: str | None = None
    """The sender's instance id; None when a client sent it."""
    parent_execution: str | None = None
    due: datetime | None = None
    timestamp: datetime | None = None
    predecessor: datetime | None = None
    lockset: list[EntityId] | None = None
    position: int = 0

    @property
    def is_lock_request(self) -> bool:
        return self.lockset is not None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.operation is not None:
            out["op"] = self.operation
        if self.signal:
            out["signal"] = True
        if self.input is not None:
            out["input"] = self.input
        out["id"] = self.id
        if self.parent is not None:
            out["parent"] = self.parent
        if self.parent_execution is not None:
            out["parentExecution"] = self.parent_execution
        if self.due is not None:
            out["due"] = format_time(self.due)
        out["Timestamp"] = format_time(self.timestamp) if self.timestamp else f"{_NO_TIME}"
        out["Predecessor"] = format_time(self.predecessor) if self.predecessor else f"{_NO_TIME}"
        if self.lockset is not None:
            out["lockset"] = [{"name": e.name, "key": e.key} for e in self.lockset]
        if self.position:
            out["pos"] = self.position
        return out

    def to_text(self) -> str:
        return json.dumps(self.to_json(), separators=(",", ":"))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RequestMessage:
        raw_input = data.get("input")
        lockset = data.get("lockset")
        return cls(
            id=str(data.get("id") or ""),
            operation=data.get("op"),
            signal=bool(data.get("signal")),
            input=raw_input
            if raw_input is None or isinstance(raw_input, str)
            else json.dumps(raw_input),
            parent=data.get("parent"),
            parent_execution=data.get("parentExecution"),
            due=parse_time(data.get("due")),
            timestamp=parse_time(data.get("Timestamp")),
            predecessor=parse_time(data.get("Predecessor")),
            lockset=(
                [EntityId(str(e["name"]), str(e["key"])) for e in lockset]
                if lockset is not None
                else None
            ),
            position=int(data.get("pos") or 0),
        )

    @classmethod
    def from_text(cls, text: str | None) -> RequestMessage:
        data = json.loads(text or "{}")
        if not isinstance(data, dict):
            raise ValueError("an entity request message must be a JSON object")
        return cls.from_json(data)


@dataclass(slots=True)
class ResponseMessage:
    """The answer to a call or a lock request: `result` is JSON text (or the lock grant text)."""

    result: str | None
    exception_type: str | None = None

    @property
    def is_error(self) -> bool:
        return self.exception_type is not None

    def to_text(self) -> str:
        out: dict[str, Any] = {"result": self.result}
        if self.exception_type is not None:
            out["exceptionType"] = self.exception_type
        return json.dumps(out, separators=(",", ":"))

    @classmethod
    def from_text(cls, text: str | None) -> ResponseMessage:
        data = json.loads(text or "{}")
        if isinstance(data, str):  # a response whose payload was encoded twice
            data = json.loads(data)
        return cls(data.get("result"), data.get("exceptionType"))


@dataclass(slots=True)
class ReleaseMessage:
    """Unlock: `parent` is the lock owner, `id` the lock request id."""

    parent: str
    id: str

    def to_text(self) -> str:
        return json.dumps({"parent": self.parent, "id": self.id}, separators=(",", ":"))

    @classmethod
    def from_text(cls, text: str | None) -> ReleaseMessage:
        data = json.loads(text or "{}")
        return cls(str(data.get("parent") or ""), str(data.get("id") or ""))


@dataclass(slots=True)
class ReceivedFrom:
    """The sorter's record of one sender (DF `MessageSorter.ReceiveBuffer`)."""

    last: datetime | None = None
    execution_id: str | None = None
    buffered: dict[str, RequestMessage] = field(default_factory=dict)


@dataclass(slots=True)
class RecentRequests:
    """Ids of requests applied lately that carry no sorter label (clients' signals): a copy of
    one (a queue redelivery) is recognised for `window` after it was applied. Stored compactly as
    12-hex-digit prefixes per minute (our addition to DF's state: field `received`)."""

    by_minute: dict[str, list[str]] = field(default_factory=dict)

    @staticmethod
    def _short(request_id: str) -> str:
        return request_id.replace("-", "")[:12]

    def seen(self, request_id: str) -> bool:
        short = self._short(request_id)
        return any(short in ids for ids in self.by_minute.values())

    def add(self, request_id: str, now: datetime) -> None:
        minute = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")
        self.by_minute.setdefault(minute, []).append(self._short(request_id))

    def prune(self, horizon: datetime) -> None:
        """Forget the minutes before `horizon`."""
        oldest = horizon.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")
        for minute in [m for m in self.by_minute if m < oldest]:
            del self.by_minute[minute]

    def to_json(self) -> dict[str, str]:
        return {minute: " ".join(ids) for minute, ids in self.by_minute.items()}

    @classmethod
    def from_json(cls, data: dict[str, str] | None) -> RecentRequests:
        return cls({m: text.split() for m, text in (data or {}).items()})


@dataclass(slots=True)
class SchedulerState:
    """What an entity instance persists between batches (DF `SchedulerState`)."""

    exists: bool = False
    state: str | None = None
    """The entity's state as JSON text."""
    queue: list[RequestMessage] = field(default_factory=list)
    locked_by: str | None = None
    received_from: dict[str, ReceivedFrom] = field(default_factory=dict)
    last_sent_to: dict[str, datetime] = field(default_factory=dict)
    recent: RecentRequests = field(default_factory=RecentRequests)

    def to_text(self) -> str:
        out: dict[str, Any] = {}
        if self.exists:
            out["exists"] = True
        if self.state is not None:
            out["state"] = self.state
        if self.queue:
            out["queue"] = [m.to_json() for m in self.queue]
        if self.locked_by is not None:
            out["lockedBy"] = self.locked_by
        sorter: dict[str, Any] = {}
        if self.last_sent_to:
            sorter["LastSentToInstance"] = {k: format_time(v) for k, v in self.last_sent_to.items()}
        if self.received_from:
            sorter["ReceivedFromInstance"] = {
                source: {
                    "Last": format_time(r.last) if r.last else _NO_TIME,
                    "ExecutionId": r.execution_id,
                    **(
                        {"Buffered": {k: m.to_json() for k, m in r.buffered.items()}}
                        if r.buffered
                        else {}
                    ),
                }
                for source, r in self.received_from.items()
            }
        if sorter:
            out["sorter"] = sorter
        if self.recent.by_minute:
            out["received"] = self.recent.to_json()
        return json.dumps(out, separators=(",", ":"))

    @classmethod
    def from_text(cls, text: str | None) -> SchedulerState:
        if not text:
            return cls()
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(
                "Failed to deserialize entity scheduler state - may be corrupted or wrong version."
            ) from exc
        if not isinstance(data, dict):
            return cls()
        sorter = data.get("sorter") or {}
        received = {
            source: ReceivedFrom(
                parse_time(r.get("Last")),
                r.get("ExecutionId"),
                {k: RequestMessage.from_json(m) for k, m in (r.get("Buffered") or {}).items()},
            )
            for source, r in (sorter.get("ReceivedFromInstance") or {}).items()
        }
        sent = {
            k: t
            for k, v in (sorter.get("LastSentToInstance") or {}).items()
            if (t := parse_time(v)) is not None
        }
        return cls(
            exists=bool(data.get("exists", data.get("state") is not None)),
            state=data.get("state"),
            queue=[RequestMessage.from_json(m) for m in data.get("queue") or []],
            locked_by=data.get("lockedBy"),
            received_from=received,
            last_sent_to=sent,
            recent=RecentRequests.from_json(data.get("received")),
        )

    def status_text(self) -> str:
        """The Instances row's custom status (DF `EntityStatus`, defaults omitted)."""
        out: dict[str, Any] = {}
        if self.exists:
            out["entityExists"] = True
        if self.queue:
            out["queueSize"] = len(self.queue)
        if self.locked_by is not None:
            out["lockedBy"] = self.locked_by
        return json.dumps(out, separators=(",", ":"))
