"""Table row operations (get, insert, update, upsert, delete, query, transactions) over REST."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .edm import Entity, from_wire, to_wire
from .transport import RestResponse, RestTransport, error_from_response, quote_path

__all__ = ["TableRows", "BatchOperation", "TABLE_API_VERSION"]

TABLE_API_VERSION = "2019-02-02"
_JSON = "application/json;odata=minimalmetadata"
_READ_HEADERS = {"Accept": _JSON, "DataServiceVersion": "3.0"}
_WRITE_HEADERS = {
    "Accept": _JSON,
    "Content-Type": "application/json",
    "DataServiceVersion": "3.0",
    "Prefer": "return-no-content",
}
_STATUS_LINE = re.compile(rb"HTTP/1\.1 (\d{3})[^\r\n]*\r?\n")
_ETAG_HEADER = re.compile(rb"^etag:\s*(.+?)\r?$", re.IGNORECASE | re.MULTILINE)

Verb = Literal["insert", "upsert", "merge", "delete"]
_HTTP_VERBS: dict[Verb, str] = {
    "insert": "POST",
    "upsert": "PUT",
    "merge": "MERGE",
    "delete": "DELETE",
}


@dataclass(frozen=True, slots=True)
class BatchOperation:
    """One write of a transaction: `insert`, `upsert` (insert or replace), `merge` (with `etag`,
    or "*" for any version) or `delete` (`etag` "*" unless given)."""

    verb: Verb
    entity: dict[str, Any]
    etag: str | None = None


def _key_path(table: str, partition_key: str, row_key: str) -> str:
    pk = quote_path(partition_key.replace("'", "''"))
    rk = quote_path(row_key.replace("'", "''"))
    return f"/{quote_path(table)}(PartitionKey='{pk}',RowKey='{rk}')"


class TableRows:
    """The rows of one table."""

    def __init__(self, transport: RestTransport, table_name: str) -> None:
        self._transport = transport
        self._table = table_name

    async def get(self, partition_key: str, row_key: str) -> Entity:
        """The row; ResourceNotFoundError when there is none."""
        response = await self._transport.request(
            "GET", _key_path(self._table, partition_key, row_key), headers=_READ_HEADERS
        )
        return from_wire(json.loads(response.body), response.headers.get("etag"))

    async def insert(self, entity: dict[str, Any]) -> str:
        """Insert a new row (ResourceExistsError if present); returns its ETag."""
        response = await self._transport.request(
            "POST",
            "/" + quote_path(self._table),
            headers=_WRITE_HEADERS,
            body=json.dumps(to_wire(entity)).encode(),
        )
        return response.headers.get("etag", "")

    async def write(self, verb: Verb, entity: dict[str, Any], etag: str | None = None) -> str:
        """`upsert` (insert or replace) or `merge` a row; with `etag`, only if it still matches
        (ResourceModifiedError otherwise). `delete` ignores the entity's other properties."""
        headers = dict(_WRITE_HEADERS)
        if etag is not None:
            headers["If-Match"] = etag
        elif verb == "delete":
            headers["If-Match"] = "*"
        body = b"" if verb == "delete" else json.dumps(to_wire(entity)).encode()
        response = await self._transport.request(
            _HTTP_VERBS[verb],
            _key_path(self._table, entity["PartitionKey"], entity["RowKey"]),
            headers=headers,
            body=body,
        )
        return response.headers.get("etag", "")

    async def query(
        self, odata_filter: str, select: Sequence[str] | None = None
    ) -> AsyncIterator[Entity]:
        """Every row matching the filter, page after page."""
        query = {"$filter": odata_filter}
        if select:
            query["$select"] = ",".join(select)
        path = f"/{quote_path(self._table)}()"
        while True:
            response = await self._transport.request(
                "GET", path, query=query, headers=_READ_HEADERS
            )
            for item in json.loads(response.body).get("value", []):
                yield from_wire(item)
            next_pk = response.headers.get("x-ms-continuation-nextpartitionkey")
            if not next_pk:
                return
            query["NextPartitionKey"] = next_pk
            next_rk = response.headers.get("x-ms-continuation-nextrowkey")
            if next_rk:
                query["NextRowKey"] = next_rk
            else:
                query.pop("NextRowKey", None)

    async def transact(self, operations: Sequence[BatchOperation]) -> list[str]:
        """Apply the writes atomically (one partition, at most 100); their ETags in order.

        A failing write fails the whole transaction with that write's error (e.g. 412
        ResourceModifiedError for a stale `etag`, 409 ResourceExistsError for an insert).
        """
        batch = f"batch_{uuid.uuid4()}"
        changeset = f"changeset_{uuid.uuid4()}"
        parts = [f"--{batch}\r\nContent-Type: multipart/mixed; boundary={changeset}\r\n\r\n"]
        for operation in operations:
            parts.append(self._batch_part(changeset, operation))
        parts.append(f"--{changeset}--\r\n--{batch}--\r\n")
        response = await self._transport.request(
            "POST",
            "/$batch",
            headers={
                "Content-Type": f"multipart/mixed; boundary={batch}",
                "Accept": _JSON,
                "DataServiceVersion": "3.0",
                "MaxDataServiceVersion": "3.0;NetFx",
            },
            body="".join(parts).encode(),
            expect=(202,),
        )
        return _batch_etags(response, len(operations))

    def _batch_part(self, changeset: str, operation: BatchOperation) -> str:
        entity = operation.entity
        url = self._transport.endpoint
        if operation.verb == "insert":
            url += "/" + quote_path(self._table)
        else:
            url += _key_path(self._table, entity["PartitionKey"], entity["RowKey"])
        lines = [
            f"--{changeset}",
            "Content-Type: application/http",
            "Content-Transfer-Encoding: binary",
            "",
            f"{_HTTP_VERBS[operation.verb]} {url} HTTP/1.1",
            "Accept: application/json;odata=minimalmetadata",
            "DataServiceVersion: 3.0",
        ]
        etag = operation.etag or ("*" if operation.verb == "delete" else None)
        if etag is not None:
            lines.append(f"If-Match: {etag}")
        if operation.verb == "delete":
            return "\r\n".join([*lines, "", ""]) + "\r\n"
        body = json.dumps(to_wire(entity))
        lines += ["Content-Type: application/json", "Prefer: return-no-content"]
        return "\r\n".join([*lines, "", body]) + "\r\n"


def _batch_etags(response: RestResponse, count: int) -> list[str]:
    """The ETag of each write in a transaction's answer, or the failing write's error raised."""
    body = response.body
    statuses = list(_STATUS_LINE.finditer(body))
    etags: list[str] = []
    for number, match in enumerate(statuses):
        status = int(match.group(1))
        end = statuses[number + 1].start() if number + 1 < len(statuses) else len(body)
        segment = body[match.end() : end]
        if status >= 300:
            header_end = segment.find(b"\r\n\r\n")
            payload = segment[header_end + 4 :] if header_end >= 0 else b""
            payload = payload[: payload.rfind(b"}") + 1] if b"}" in payload else b""
            raise error_from_response("POST", RestResponse(status, {}, payload))
        found = _ETAG_HEADER.search(segment)
        etags.append(found.group(1).decode() if found else "")
    if len(etags) != count:
        raise ValueError(f"table transaction answered {len(etags)} results for {count} writes")
    return etags
