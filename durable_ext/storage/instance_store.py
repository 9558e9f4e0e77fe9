"""The `{Hub}Instances` table: one row per instance (RowKey ""), the DTFx status columns."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Final, Literal

from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables.aio import TableClient

from ..orchestration.history import ExecutionStarted
from ..orchestration.status import OrchestrationRuntimeStatus
from .keys import escape_key, odata_datetime, odata_string, prefix_range, unescape_key
from .large_payloads import LargePayloadStore, exceeds_property_limit
from .messages import parse_message
from .rest.table_rows import TableRows
from .status_read_cache import StatusReadCache

__all__ = ["NO_TAGS", "InstanceColumns", "InstanceRow", "InstanceStore", "InstanceQuery"]

_BLOB_COLUMNS = ("Input", "Output")
START_MESSAGE_BLOB_SUFFIX = "ExecutionStarted.json.gz"
NO_TAGS: Final = "null"


@dataclass(slots=True)
class InstanceRow:
    """An Instances row, decoded."""

    instance_id: str
    execution_id: str | None
    name: str | None
    version: str | None
    input: str | None
    output: str | None
    custom_status: str | None
    runtime_status: OrchestrationRuntimeStatus
    created_time: datetime | None
    last_updated_time: datetime | None
    completed_time: datetime | None
    scheduled_start_time: datetime | None
    generation: int
    tags: dict[str, str] | None
    etag: str | None = None

    @property
    def is_terminal(self) -> bool:
        return self.runtime_status.is_terminal


@dataclass(frozen=True, slots=True)
class InstanceColumns:
    """Columns of one Instances row write. None means "not written": an insert leaves the
    column out, a merge leaves the stored value as it is."""

    execution_id: str | None = None
    name: str | None = None
    version: str | None = None
    input: str | None = None
    output: str | None = None
    custom_status: str | None = None
    runtime_status: OrchestrationRuntimeStatus | None = None
    created_time: datetime | None = None
    last_updated_time: datetime | None = None
    completed_time: datetime | None = None
    scheduled_start_time: datetime | None = None
    generation: int | None = None
    tags: dict[str, str] | Literal["null"] | None = None
    """`NO_TAGS` writes the text `null`, as DTFx does for an execution without tags."""

    def table_columns(self) -> dict[str, Any]:
        """The written columns by their table names (`RuntimeStatus` as its name, `Tags` as
        JSON text)."""
        written: dict[str, Any] = {}
        for column in fields(self):
            value = getattr(self, column.name)
            if value is None:
                continue
            if isinstance(value, OrchestrationRuntimeStatus):
                value = value.value
            elif column.name == "tags" and value != NO_TAGS:
                value = json.dumps(value)
            written[_COLUMN_NAMES[column.name]] = value
        return written


_COLUMN_NAMES = {
    "execution_id": "ExecutionId",
    "name": "Name",
    "version": "Version",
    "input": "Input",
    "output": "Output",
    "custom_status": "CustomStatus",
    "runtime_status": "RuntimeStatus",
    "created_time": "CreatedTime",
    "last_updated_time": "LastUpdatedTime",
    "completed_time": "CompletedTime",
    "scheduled_start_time": "ScheduledStartTime",
    "generation": "Generation",
    "tags": "Tags",
}


@dataclass(slots=True)
class InstanceQuery:
    """Filters for listing instances; every value is escaped, never spliced raw."""

    created_from: datetime | None = None
    created_to: datetime | None = None
    runtime_status: Sequence[OrchestrationRuntimeStatus] | None = None
    instance_id_prefix: str | None = None
    fetch_inputs_and_outputs: bool = True
    name: str | None = None
    """Only instances of this orchestrator (exact name, as stored)."""

    def __post_init__(self) -> None:
        """Statuses may be given by name ("Running"); anything else is a ValueError, so no
        text but a status name reaches the filter."""
        if self.runtime_status is not None:
            self.runtime_status = [OrchestrationRuntimeStatus(s) for s in self.runtime_status]

    def odata_filter(self, hub_name: str) -> str:
        clauses = ["RowKey eq ''", f"TaskHubName eq {odata_string(hub_name)}"]
        if self.created_from is not None:
            clauses.append(f"CreatedTime ge {odata_datetime(self.created_from)}")
        if self.created_to is not None:
            clauses.append(f"CreatedTime le {odata_datetime(self.created_to)}")
        if self.runtime_status:
            clauses.append(
                "("
                + " or ".join(
                    f"RuntimeStatus eq {odata_string(s.value)}" for s in self.runtime_status
                )
                + ")"
            )
        if self.name:
            clauses.append(f"Name eq {odata_string(self.name)}")
        if self.instance_id_prefix:
            clauses.append(prefix_range("PartitionKey", escape_key(self.instance_id_prefix)))
        return " and ".join(c for c in clauses if c)


def _row(entity: dict[str, Any]) -> InstanceRow:
    tags = entity.get("Tags")
    return InstanceRow(
        instance_id=unescape_key(entity["PartitionKey"]),
        execution_id=entity.get("ExecutionId"),
        name=entity.get("Name"),
        version=entity.get("Version"),
        input=entity.get("Input"),
        output=entity.get("Output"),
        custom_status=entity.get("CustomStatus"),
        runtime_status=OrchestrationRuntimeStatus(entity.get("RuntimeStatus") or "Pending"),
        created_time=entity.get("CreatedTime"),
        last_updated_time=entity.get("LastUpdatedTime"),
        completed_time=entity.get("CompletedTime"),
        scheduled_start_time=entity.get("ScheduledStartTime"),
        generation=int(entity.get("Generation") or 0),
        tags=json.loads(tags) if tags else None,
        etag=entity.metadata.get("etag") if hasattr(entity, "metadata") else None,
    )


def encode_continuation(token: dict[str, str] | None) -> str | None:
    if not token:
        return None
    return base64.urlsafe_b64encode(json.dumps(token).encode()).decode()


def decode_continuation(token: str | None) -> dict[str, str] | None:
    if not token:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(token.encode()))
    except ValueError as exc:
        raise ValueError("invalid continuation token") from exc
    if not isinstance(value, dict):
        raise ValueError("invalid continuation token")
    return value


class InstanceStore:
    """Reads, writes and queries instance status rows."""

    def __init__(
        self, table: TableClient, rows: TableRows, hub_name: str, payloads: LargePayloadStore
    ) -> None:
        self._table = table
        """The SDK client, for paged listing queries; `_rows` (the lean path) does the rest."""
        self._rows = rows
        self._hub = hub_name
        self._payloads = payloads
        self.status_reads = StatusReadCache()
        """Status reads of the instances this process's worker owns (off until it enables it)."""

    async def get(
        self, instance_id: str, *, fetch_payloads: bool = True, for_status: bool = False
    ) -> InstanceRow | None:
        """The instance's row (None if there is none). `for_status`: a client's status read,
        which `status_reads` may answer from memory (never the worker's own reads)."""
        began = self.status_reads.begin_read()
        if for_status:
            known, cached = self.status_reads.lookup(instance_id, fetch_payloads)
            if known:
                return cached
        try:
            entity = await self._rows.get(escape_key(instance_id), "")
        except ResourceNotFoundError:
            row = None
        else:
            row = _row(entity)
            if fetch_payloads:
                await self._fetch_blobs(row)
        if for_status:
            self.status_reads.store(instance_id, began, row, fetch_payloads)
        return row

    async def _fetch_blobs(self, row: InstanceRow) -> None:
        if row.input and self._payloads.is_blob_url(row.input):
            row.input = await self._fetch(row.input)
        if row.output and self._payloads.is_blob_url(row.output):
            row.output = await self._fetch(row.output)

    async def _fetch(self, url: str) -> str | None:
        """A column's payload blob. The blob of a start message (a Pending row's Input, as the
        DTFx client writes it when the message went to a blob) holds the whole message: its
        ExecutionStarted's input is the value."""
        text = await self._payloads.download(url)
        if self._payloads.name_from_url(url).endswith(START_MESSAGE_BLOB_SUFFIX):
            event = parse_message(text).event
            return event.input if isinstance(event, ExecutionStarted) else None
        return text

    async def _prepare(self, instance_id: str, columns: InstanceColumns) -> dict[str, Any]:
        entity: dict[str, Any] = {"PartitionKey": escape_key(instance_id), "RowKey": ""}
        for key, value in columns.table_columns().items():
            if key in _BLOB_COLUMNS and isinstance(value, str) and exceeds_property_limit(value):
                name = await self._payloads.put_row_property(
                    entity["PartitionKey"], key, value, columns.execution_id
                )
                value = self._payloads.url_for(name)
            entity[key] = value
        entity["TaskHubName"] = self._hub
        return entity

    async def create(self, instance_id: str, columns: InstanceColumns, etag: str | None) -> bool:
        """Write a new instance row: insert, or replace the row read with `etag`. False on a race."""
        entity = await self._prepare(instance_id, columns)
        try:
            if etag is None:
                await self._rows.insert(entity)
            else:
                await self._rows.write("upsert", entity, etag)
        except (ResourceExistsError, ResourceModifiedError):
            return False
        finally:
            self.status_reads.written(instance_id)
        return True

    async def merge(self, instance_id: str, columns: InstanceColumns) -> None:
        """Insert-or-merge columns into the instance row (None values clear nothing)."""
        try:
            await self._rows.write("merge", await self._prepare(instance_id, columns))
        finally:
            self.status_reads.written(instance_id)

    async def delete(self, instance_id: str) -> bool:
        try:
            await self._rows.write(
                "delete", {"PartitionKey": escape_key(instance_id), "RowKey": ""}
            )
        except ResourceNotFoundError:
            return False
        finally:
            self.status_reads.written(instance_id)
        return True

    async def query(
        self, query: InstanceQuery, *, page_size: int = 100, continuation: str | None = None
    ) -> tuple[list[InstanceRow], str | None]:
        """One page of instances and the continuation token of the next (None at the end)."""
        select = None
        if not query.fetch_inputs_and_outputs:
            select = [
                "PartitionKey",
                "RowKey",
                "ExecutionId",
                "Name",
                "Version",
                "CustomStatus",
                "RuntimeStatus",
                "CreatedTime",
                "LastUpdatedTime",
                "CompletedTime",
                "ScheduledStartTime",
                "Generation",
                "Tags",
                "TaskHubName",
            ]
        pages = self._table.query_entities(
            query.odata_filter(self._hub), results_per_page=page_size, select=select
        ).by_page(continuation_token=decode_continuation(continuation))  # type: ignore[arg-type]
        rows: list[InstanceRow] = []
        async for page in pages:
            async for entity in page:
                rows.append(_row(entity))
            break
        if query.fetch_inputs_and_outputs:
            for row in rows:
                await self._fetch_blobs(row)
        return rows, encode_continuation(pages.continuation_token)  # type: ignore[attr-defined]
