"""The `{Hub}History` table: one partition per instance, hex RowKeys, and the `sentinel` row whose
ETag fences every checkpoint (DTFx `AzureTableTrackingStore`)."""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from .. import clock
from ..fault_points import stall_point
from ..orchestration.history import HistoryEvent, OrchestrationStatus, event_from_fields
from .keys import escape_key, odata_string
from .large_payloads import BlobSuspects, LargePayloadStore, exceeds_property_limit
from .rest.table_rows import BatchOperation, Entity, TableRows

__all__ = [
    "HistoryStore",
    "LoadedHistory",
    "CheckpointConflictError",
    "SENTINEL",
    "row_key",
    "event_to_row",
    "REWOUND_PREFIX",
]

SENTINEL = "sentinel"
MAX_ROWS_PER_BATCH = 99
MAX_BATCH_BYTES = 3 * 1024 * 1024
LARGE_COLUMNS = (
    "Name",
    "Input",
    "Result",
    "Output",
    "Reason",
    "Details",
    "Correlation",
    "FailureDetails",
    "Tags",
)
BLOB_NAME_COLUMNS = tuple(f"{column}BlobName" for column in LARGE_COLUMNS)
_SYSTEM = {"PartitionKey", "RowKey", "Timestamp", "_Timestamp", "ExecutionId", "etag"}
REWOUND_PREFIX = "Rewound: "

log = logging.getLogger("durable_ext.history")


class CheckpointConflictError(Exception):
    """Another writer checkpointed this instance first (409/412 on the sentinel)."""


def row_key(index: int) -> str:
    return f"{index:016X}"


@dataclass(slots=True)
class LoadedHistory:
    """The current execution's events and the sentinel ETag to checkpoint against."""

    events: list[HistoryEvent] = field(default_factory=list)
    etag: str | None = None
    execution_id: str | None = None
    blob_urls: dict[tuple[int, str], str] = field(default_factory=dict)
    """URLs of the payload blobs of offloaded columns, by (event index, column): what an
    Instances row points at instead of writing another copy (DTFx does the same)."""


_COMPLEX_CODECS = frozenset({"instance", "parent", "failure", "json", "tags"})


def event_to_row(event: HistoryEvent) -> dict[str, Any]:
    """Table columns for an event: enums by name, complex members as JSON strings (a null one
    as the text `null`, as DTFx's `TableEntityConverter` writes it); other null members are
    left out."""
    complex_members = {wire for _, wire, codec in type(event)._wire() if codec in _COMPLEX_CODECS}
    row: dict[str, Any] = {}
    for key, value in event.to_fields().items():
        if value is None:
            if key in complex_members:
                row[key] = "null"
            continue
        if key == "EventType":
            row[key] = event.event_type.name
        elif key == "Timestamp":
            row["_Timestamp"] = value
        elif isinstance(value, OrchestrationStatus):
            row[key] = value.name
        elif isinstance(value, dict):
            row[key] = json.dumps(value, separators=(",", ":"))
        else:
            row[key] = value
    return row


class HistoryStore:
    """Reads and writes instance histories."""

    def __init__(self, rows: TableRows, payloads: LargePayloadStore) -> None:
        self._rows = rows
        self._payloads = payloads
        self._suspects = BlobSuspects()

    async def load(self, instance_id: str) -> LoadedHistory:
        """The current execution's history (empty when the instance has none)."""
        sentinel, execution_id, rows = await self._current_rows(escape_key(instance_id))
        loaded = LoadedHistory(execution_id=execution_id)
        if sentinel is not None:
            loaded.etag = sentinel.metadata["etag"]
        for index, row in enumerate(rows):
            for column in LARGE_COLUMNS:
                if name := row.get(f"{column}BlobName"):
                    loaded.blob_urls[(index, column)] = self._payloads.url_for(name)
            loaded.events.append(await self._row_to_event(row))
        return loaded

    async def _current_rows(self, key: str) -> tuple[Entity | None, str | None, list[Entity]]:
        """The sentinel, the current ExecutionId and that execution's rows in RowKey order.

        Only the newest execution is kept, from RowKey 0: rows past its end may belong to an older,
        longer one (never deleted, DTFx's layout), so the walk stops at the first row of another
        ExecutionId. The ExecutionId is the sentinel's (the first row's when there is none).
        """
        rows = [row async for row in self._rows.query(f"PartitionKey eq {odata_string(key)}")]
        sentinel = next((r for r in rows if r["RowKey"] == SENTINEL), None)
        rows = sorted((r for r in rows if r["RowKey"] != SENTINEL), key=lambda r: r["RowKey"])
        execution_id = sentinel.get("ExecutionId") if sentinel is not None else None
        if execution_id is None and rows:
            execution_id = rows[0].get("ExecutionId")
        current = list(itertools.takewhile(lambda r: r.get("ExecutionId") == execution_id, rows))
        return sentinel, execution_id, current

    async def _row_to_event(self, row: dict[str, Any]) -> HistoryEvent:
        data = dict(row)
        for column in LARGE_COLUMNS:
            blob_name = data.pop(f"{column}BlobName", None)
            if blob_name:
                data[column] = await self._payloads.download(blob_name)
        return event_from_fields(data)

    async def append(
        self,
        instance_id: str,
        execution_id: str,
        events: list[HistoryEvent],
        first_index: int,
        etag: str | None,
        offloaded: dict[tuple[int, str], str] | None = None,
    ) -> str:
        """Write `events` at RowKeys from `first_index` under the sentinel ETag; the new ETag.

        `offloaded`, if given, receives the URL of every payload blob written, by (event index,
        column), so the Instances row can point at it instead of writing another copy.

        `etag` None means no sentinel exists yet (first checkpoint: insert it). A new execution
        is written from RowKey 0 over the old one; the old one's rows past its end stay (readers
        stop at the first row of another ExecutionId), since deleting them outside the fenced
        transaction could erase rows a newer owner wrote meanwhile. Raises CheckpointConflictError on
        409/412.

        Blob bookkeeping (see docs/payload-blobs.md): the property blobs of a write that fails
        become suspects, so do those of the rows a new execution replaces; once this write
        commits, `delete_unreferenced_blobs` deletes the suspects no committed row references.
        """
        key = escape_key(instance_id)
        if first_index == 0 and etag is not None:
            self._suspects.add(instance_id, await self._replaced_blobs(key))
        uploaded: list[tuple[int, str, str]] = []
        try:
            etag = await self._write(key, execution_id, events, first_index, etag, uploaded)
        except BaseException:
            self._suspects.add(instance_id, [name for _, _, name in uploaded])
            raise
        if offloaded is not None:
            for index, column, name in uploaded:
                offloaded[(index, column)] = self._payloads.url_for(name)
        self._suspects.committed(instance_id, execution_id)
        await stall_point("after-sentinel-write")
        return etag

    async def _write(
        self,
        key: str,
        execution_id: str,
        events: list[HistoryEvent],
        first_index: int,
        etag: str | None,
        uploaded: list[tuple[int, str, str]],
    ) -> str:
        rows = []
        for offset, event in enumerate(events):
            index = first_index + offset
            row = event_to_row(event)
            row.update(PartitionKey=key, RowKey=row_key(index), ExecutionId=execution_id)
            await self._offload_large_columns(row, index, uploaded)
            rows.append(row)
        batches: list[list[dict[str, Any]]] = [[]]
        size = 0
        for row in rows:
            row_size = 1024 + sum(len(v) * 2 for v in row.values() if isinstance(v, str))
            if len(batches[-1]) >= MAX_ROWS_PER_BATCH or (
                batches[-1] and size + row_size > MAX_BATCH_BYTES
            ):
                batches.append([])
                size = 0
            batches[-1].append(row)
            size += row_size
        for number, batch in enumerate(batches):
            final = number == len(batches) - 1
            etag = await self._submit(key, execution_id, batch, etag, final)
        assert etag is not None
        return etag

    async def _offload_large_columns(
        self, row: dict[str, Any], index: int, uploaded: list[tuple[int, str, str]]
    ) -> None:
        for column in LARGE_COLUMNS:
            value = row.get(column)
            if isinstance(value, str) and exceeds_property_limit(value):
                name = await self._payloads.put_property(
                    row["PartitionKey"], row["RowKey"], row.get("EventType", ""), column, value
                )
                uploaded.append((index, column, name))
                row[column] = ""
                row[f"{column}BlobName"] = name

    async def _replaced_blobs(self, key: str) -> set[str]:
        """The property blobs of every row a new execution is about to replace (or leave stale);
        none when they cannot be read (a leak, never a failed checkpoint)."""
        try:
            return await self._blob_names(f"PartitionKey eq {odata_string(key)}")
        except Exception as exc:  # noqa: BLE001 - cleanup must not fail the checkpoint
            log.warning("Could not list the history blobs of %s: %s", key, exc)
            return set()

    async def _blob_names(self, odata_filter: str) -> set[str]:
        names: set[str] = set()
        async for row in self._rows.query(odata_filter, select=["RowKey", *BLOB_NAME_COLUMNS]):
            names.update(row[c] for c in BLOB_NAME_COLUMNS if row.get(c))
        return names

    def retire_blobs(self, instance_id: str, execution_id: str, names: Iterable[str]) -> None:
        """Blobs that rows outside this table no longer reference (an Instances row's replaced
        Input/Output): deleted by the next `delete_unreferenced_blobs` unless a row of committed
        `execution_id` references them."""
        self._suspects.add(instance_id, names)
        self._suspects.committed(instance_id, execution_id)

    def spare_blobs(self, instance_id: str, names: Iterable[str]) -> None:
        """Blobs the Instances row still points at (a replaced execution's history blob whose
        column the row kept): never deleted by `delete_unreferenced_blobs`; purge deletes them."""
        self._suspects.discard(instance_id, names)

    async def delete_unreferenced_blobs(self, instance_id: str) -> None:
        """After a committed checkpoint, delete the instance's suspect blobs that no row of the
        committed execution references. Never raises: a blob that could not be deleted stays a
        suspect, tried again after the next checkpoint."""
        due = self._suspects.take_due(instance_id)
        if due is None:
            return
        execution_id, suspects = due
        key = escape_key(instance_id)
        try:
            in_use = await self._blob_names(
                f"PartitionKey eq {odata_string(key)} and ExecutionId eq {odata_string(execution_id)}"
            )
            failed = await self._payloads.delete_blobs(suspects - in_use)
        except Exception as exc:  # noqa: BLE001 - cleanup must not fail the checkpoint
            log.warning("Could not delete the unused history blobs of %s: %s", instance_id, exc)
            failed = suspects
        self._suspects.add(instance_id, failed)

    async def _submit(
        self, key: str, execution_id: str, rows: list[dict[str, Any]], etag: str | None, final: bool
    ) -> str:
        sentinel: dict[str, Any] = {
            "PartitionKey": key,
            "RowKey": SENTINEL,
            "ExecutionId": execution_id,
            "IsCheckpointComplete": final,
        }
        if final:
            sentinel["CheckpointCompletedTimestamp"] = clock.utc_now()
        operations = [BatchOperation("upsert", row) for row in rows]
        if etag is None:
            operations.append(BatchOperation("insert", sentinel))
        else:
            operations.append(BatchOperation("merge", sentinel, etag))
        try:
            etags = await self._rows.transact(operations)
        except HttpResponseError as exc:
            if exc.status_code in (409, 412):
                landed = await self._landed(key, execution_id, rows)
                if landed is not None:
                    return landed
                raise CheckpointConflictError(
                    f"history of {key!r} was changed by another writer"
                ) from exc
            raise
        if not etags[-1]:
            raise RuntimeError("table transaction returned no ETag for the sentinel")
        return etags[-1]

    async def _landed(self, key: str, execution_id: str, rows: list[dict[str, Any]]) -> str | None:
        """After a 409/412: the sentinel's ETag if this very transaction is what storage holds
        (its answer was lost and the transport's retry hit our own write), else None.

        Every row we wrote must be stored with exactly our values under our execution: a rival
        checkpoint differs at least in its OrchestratorStarted timestamp.
        """
        if not rows:
            return None
        first, last = rows[0]["RowKey"], rows[-1]["RowKey"]
        query = (
            f"PartitionKey eq {odata_string(key)} and (RowKey eq '{SENTINEL}' or "
            f"(RowKey ge {odata_string(first)} and RowKey le {odata_string(last)}))"
        )
        stored = {row["RowKey"]: row async for row in self._rows.query(query)}
        sentinel = stored.get(SENTINEL)
        if sentinel is None or sentinel.get("ExecutionId") != execution_id:
            return None
        for row in rows:
            found = stored.get(row["RowKey"])
            if found is None or any(
                not _same_value(value, found.get(column)) for column, value in row.items()
            ):
                return None
        return str(sentinel.metadata["etag"])

    async def _delete_rows(self, key: str, row_keys: list[str]) -> None:
        for start in range(0, len(row_keys), 100):
            chunk = row_keys[start : start + 100]
            try:
                await self._rows.transact(
                    [BatchOperation("delete", {"PartitionKey": key, "RowKey": rk}) for rk in chunk]
                )
            except HttpResponseError:
                for rk in chunk:
                    with contextlib.suppress(ResourceNotFoundError):
                        await self._rows.write("delete", {"PartitionKey": key, "RowKey": rk})

    async def delete(self, instance_id: str) -> int:
        """Delete the instance's whole partition; returns the number of rows deleted."""
        key = escape_key(instance_id)
        rows = [
            row["RowKey"]
            async for row in self._rows.query(
                f"PartitionKey eq {odata_string(key)}", select=["PartitionKey", "RowKey"]
            )
        ]
        await self._delete_rows(key, rows)
        return len(rows)

    async def rewind_failures(self, instance_id: str) -> list[str]:
        """DTFx's legacy rewind (`RewindHistoryAsync`) of the current execution's failure rows.

        Every TaskFailed, SubOrchestrationInstanceFailed and Failed ExecutionCompleted row, and the
        TaskScheduled row of each TaskFailed, becomes a `GenericEvent` tombstone with Reason
        `Rewound: <old type>` (RowKeys and other columns kept); the SubOrchestrationInstanceCreated
        row of a failed child only gets that Reason. Replay ignores GenericEvents, so the orchestrator
        issues the failed tasks again. The rows are rewritten under the sentinel ETag (a concurrent
        checkpoint raises CheckpointConflictError). Returns the instance ids of the failed children.
        """
        key = escape_key(instance_id)
        sentinel, execution_id, current = await self._current_rows(key)
        if sentinel is None:
            return []
        origins = {
            (r.get("EventType"), r.get("EventId")): r
            for r in current
            if r.get("EventType") in ("TaskScheduled", "SubOrchestrationInstanceCreated")
        }
        changed: dict[str, dict[str, Any]] = {}
        children: list[str] = []

        def tombstone(row: dict[str, Any]) -> None:
            row["Reason"] = REWOUND_PREFIX + str(row.get("EventType"))
            row["EventType"] = "GenericEvent"
            changed[row["RowKey"]] = row

        for row in current:
            event_type = row.get("EventType")
            if event_type == "TaskFailed":
                origin = origins.get(("TaskScheduled", row.get("TaskScheduledId")))
                if origin is not None:
                    tombstone(origin)
            elif event_type == "SubOrchestrationInstanceFailed":
                origin = origins.get(
                    ("SubOrchestrationInstanceCreated", row.get("TaskScheduledId"))
                )
                if origin is not None:
                    origin["Reason"] = REWOUND_PREFIX + "SubOrchestrationInstanceCreated"
                    changed[origin["RowKey"]] = origin
                    children.append(str(origin.get("InstanceId")))
            elif row.get("OrchestrationStatus") != OrchestrationStatus.Failed.name:
                continue
            tombstone(row)
        etag = sentinel.metadata["etag"]
        batch = sorted(changed.values(), key=lambda r: r["RowKey"])
        for start in range(0, len(batch), MAX_ROWS_PER_BATCH):
            chunk = batch[start : start + MAX_ROWS_PER_BATCH]
            final = start + MAX_ROWS_PER_BATCH >= len(batch)
            etag = await self._submit(key, str(execution_id), chunk, etag, final)
        return children


def _same_value(written: Any, stored: Any) -> bool:
    """A column as written and as read back (datetimes come back aware, in UTC)."""
    if isinstance(written, datetime) and written.tzinfo is None:
        written = written.replace(tzinfo=UTC)
    return bool(written == stored)
