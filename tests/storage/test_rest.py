"""The lean REST path (`durable_ext.storage.rest`) against Azurite, cross-checked with the Azure SDK.

Every write made by the lean path is read back with the real SDK clients (and the other way round),
so the two agree on the bytes stored: message text, entity values and their EDM types, keys, ETags.
Errors must be the `azure.core` exception types the SDK raises, with `status_code` and `error_code`.
Transport behaviour (retries, connection failures, the request observer) is checked against a closed
port and a tiny local HTTP server.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Literal

import pytest
from aiohttp import web
from azure.core.credentials import AccessToken, AzureNamedKeyCredential
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.data.tables import AccountSasPermissions as TableSasPermissions
from azure.data.tables import EdmType, EntityProperty, UpdateMode
from azure.data.tables import ResourceTypes as TableResourceTypes
from azure.data.tables import generate_account_sas as generate_table_account_sas
from azure.data.tables.aio import TableClient
from azure.storage.queue import AccountSasPermissions, ResourceTypes, generate_account_sas
from azure.storage.queue.aio import QueueClient

from durable_ext.storage.client_options import StorageClientOptions
from durable_ext.storage.connection import StorageConnection
from durable_ext.storage.rest import transport as transport_module
from durable_ext.storage.rest.auth import (
    Authorizer,
    SasAuthorizer,
    SharedKeyAuthorizer,
    authorizer_for,
)
from durable_ext.storage.rest.edm import Entity
from durable_ext.storage.rest.queue_messages import QUEUE_API_VERSION, QueueMessages
from durable_ext.storage.rest.table_rows import TABLE_API_VERSION, BatchOperation, TableRows
from durable_ext.storage.rest.transport import RestTransport
from tests.azurite import ACCOUNT_KEY, ACCOUNT_NAME, HOST, AzuriteInstance, free_ports

STALE_ETAG = "W/\"datetime'2000-01-01T00%3A00%3A00.0000000Z'\""
WRONG_KEY = "A" + ACCOUNT_KEY[1:]  # valid base64, another signature

# -- helpers -----------------------------------------------------------------------------------------


@dataclass
class Observed:
    """What a request observer saw: one (method, url, status, seconds, body) per HTTP attempt."""

    calls: list[tuple[str, str, int, float, bytes]] = field(default_factory=list)

    def __call__(self, method: str, url: str, status: int, seconds: float, body: bytes) -> None:
        self.calls.append((method, url, status, seconds, body))

    @property
    def statuses(self) -> list[int]:
        return [call[2] for call in self.calls]


class CountingAuthorizer:
    """An account-key authorizer that counts how often it is asked (once per HTTP attempt)."""

    def __init__(self, inner: Authorizer) -> None:
        self.inner = inner
        self.count = 0

    async def authorize(
        self,
        method: str,
        path: str,
        query: MutableMapping[str, str],
        headers: MutableMapping[str, str],
        content_length: int,
    ) -> None:
        self.count += 1
        await self.inner.authorize(method, path, query, headers, content_length)


@dataclass
class QueueUnderTest:
    name: str
    lean: QueueMessages
    sdk: QueueClient

    async def count(self) -> int:
        count = (await self.sdk.get_queue_properties()).approximate_message_count
        assert count is not None
        return count


@dataclass
class TableUnderTest:
    name: str
    lean: TableRows
    sdk: TableClient
    transport: RestTransport

    async def sdk_get(self, partition_key: str, row_key: str) -> dict[str, Any] | None:
        try:
            return dict(await self.sdk.get_entity(partition_key, row_key))
        except ResourceNotFoundError:
            return None


def connection_of(azurite: AzuriteInstance) -> StorageConnection:
    return StorageConnection.from_connection_string(azurite.connection_string)


def assert_error(
    raised: pytest.ExceptionInfo[HttpResponseError],
    kind: type[HttpResponseError],
    status: int,
    code: str,
) -> None:
    """Exactly the SDK's exception type, with the service's status and error code."""
    error = raised.value
    assert type(error) is kind, f"{type(error).__name__}: {error}"
    assert error.status_code == status
    assert error.error_code == code  # type: ignore[attr-defined]
    assert code in str(error)


def same(a: Any, b: Any) -> bool:
    """Equal, with NaN equal to NaN."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


def plain_sdk(entity: dict[str, Any]) -> dict[str, Any]:
    """An SDK entity with the values the lean path gives: Int64 as int, GUIDs as str."""
    plain: dict[str, Any] = {}
    for name, value in entity.items():
        if isinstance(value, EntityProperty):
            value = value.value
        if isinstance(value, uuid.UUID):
            value = str(value)
        plain[name] = value
    return plain


def assert_values(actual: dict[str, Any], expected: dict[str, Any], *, exact_types: bool) -> None:
    assert set(actual) == set(expected)
    for name, value in expected.items():
        assert same(actual[name], value), f"{name}: {actual[name]!r} != {value!r}"
        if exact_types:
            assert type(actual[name]) is type(value), f"{name}: {type(actual[name])}"
        if isinstance(value, datetime):
            assert actual[name].utcoffset() == timedelta(0), name


async def collect(rows: AsyncIterator[Entity]) -> list[Entity]:
    return [row async for row in rows]


async def insert_rows(table: TableUnderTest, entities: list[dict[str, Any]]) -> None:
    """Insert with lean transactions of at most 100 rows (all in one partition)."""
    for start in range(0, len(entities), 100):
        chunk = entities[start : start + 100]
        etags = await table.lean.transact([BatchOperation("insert", e) for e in chunk])
        assert len(etags) == len(chunk)


@pytest.fixture
def no_retry_delays(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transport_module, "DEFAULT_REST_RETRY_DELAYS", (0.0, 0.0, 0.0))


@pytest.fixture
async def queue(azurite: AzuriteInstance, hub_name: str) -> AsyncIterator[QueueUnderTest]:
    name = hub_name.lower()
    transport = connection_of(azurite).rest_transport("queue")
    async with QueueClient.from_connection_string(azurite.connection_string, name) as sdk:
        await sdk.create_queue()
        try:
            yield QueueUnderTest(name, QueueMessages(transport, name), sdk)
        finally:
            await transport.close()
            await sdk.delete_queue()


@pytest.fixture
async def table(azurite: AzuriteInstance, hub_name: str) -> AsyncIterator[TableUnderTest]:
    transport = connection_of(azurite).rest_transport("table")
    async with TableClient.from_connection_string(azurite.connection_string, hub_name) as sdk:
        await sdk.create_table()
        try:
            yield TableUnderTest(hub_name, TableRows(transport, hub_name), sdk, transport)
        finally:
            await transport.close()
            await sdk.delete_table()


# -- queue messages ----------------------------------------------------------------------------------

TRICKY_TEXTS = {
    "xml-specials": "<QueueMessage>&amp; <![CDATA[x]]> \"double\" 'single' & < > </MessageText>",
    "whitespace": "  leading\ttab\nnewline\r\ncrlf trailing  ",
    "non-ascii": "naïve façade Ærøskøbing Ελληνικά русский 日本語 العربية",
    "emoji": "🎉👍🏽🏳️‍🌈 𝄞 astral",
    "json": '{"input": "<&>\\"\'", "nested": {"list": [1, 2.5, null, true]}}',
    "40kb": '{"chunk": "' + "0123456789abcdef" * 2500 + '", "tail": "<&>\\"\' é🎉"}',
}


@pytest.mark.parametrize("text", TRICKY_TEXTS.values(), ids=TRICKY_TEXTS.keys())
async def test_message_text_round_trips_with_the_sdk(queue: QueueUnderTest, text: str) -> None:
    sent = await queue.lean.put(text, visibility_timeout=None)
    received = await queue.sdk.receive_message()
    assert received is not None
    assert received.id == sent.id
    assert received.content == text
    assert received.inserted_on == sent.inserted_on
    await queue.sdk.delete_message(received)

    await queue.sdk.send_message(text)
    messages = await queue.lean.get(32, 30)
    assert [m.content for m in messages] == [text]
    assert messages[0].dequeue_count == 1
    await queue.lean.delete(messages[0].id, messages[0].pop_receipt)
    assert await queue.count() == 0


async def test_get_returns_several_messages_in_order(queue: QueueUnderTest) -> None:
    for number in range(5):
        await queue.lean.put(f"message {number}", visibility_timeout=None)
    first = await queue.lean.get(3, 30)
    rest = await queue.lean.get(32, 30)
    assert [m.content for m in first + rest] == [f"message {n}" for n in range(5)]
    assert len({m.id for m in first + rest}) == 5
    assert await queue.lean.get(32, 30) == []  # all hidden now
    assert await queue.count() == 5


async def test_put_with_visibility_timeout_hides_it_until_deleted(queue: QueueUnderTest) -> None:
    sent = await queue.lean.put("hidden", visibility_timeout=60)
    assert await queue.sdk.peek_messages(max_messages=32) == []
    assert await queue.lean.get(32, 30) == []
    assert await queue.count() == 1
    await queue.lean.delete(sent.id, sent.pop_receipt)
    assert await queue.count() == 0


async def test_put_time_to_live(queue: QueueUnderTest) -> None:
    await queue.lean.put("forever", visibility_timeout=None)
    await queue.lean.put("two minutes", visibility_timeout=None, ttl=120)
    forever, short = await queue.sdk.peek_messages(max_messages=32)
    assert forever.content == "forever"
    assert forever.expires_on is not None and forever.expires_on.year == 9999
    assert short.content == "two minutes"
    assert short.expires_on is not None and short.inserted_on is not None
    assert short.expires_on - short.inserted_on == timedelta(seconds=120)


async def test_update_visibility_returns_the_receipt_that_deletes(queue: QueueUnderTest) -> None:
    await queue.sdk.send_message("work")
    [message] = await queue.lean.get(1, 30)
    assert await queue.sdk.peek_messages() == []

    receipt = await queue.lean.update_visibility(message.id, message.pop_receipt, 60)
    assert receipt and receipt != message.pop_receipt
    with pytest.raises(HttpResponseError) as stale:
        await queue.lean.delete(message.id, message.pop_receipt)
    assert_error(stale, HttpResponseError, 400, "PopReceiptMismatch")
    assert await queue.sdk.peek_messages() == []  # still hidden for 60 s

    await queue.lean.delete(message.id, receipt)
    assert await queue.count() == 0


async def test_update_visibility_zero_makes_it_visible_again(queue: QueueUnderTest) -> None:
    await queue.lean.put("retry me", visibility_timeout=None)
    [message] = await queue.lean.get(1, 300)
    await queue.lean.update_visibility(message.id, message.pop_receipt, 0)
    again = await queue.sdk.receive_message(visibility_timeout=30)
    assert again is not None and again.pop_receipt is not None
    assert (again.id, again.content, again.dequeue_count) == (message.id, "retry me", 2)
    # The SDK's receipt is the current one: the lean delete takes it.
    await queue.lean.delete(again.id, again.pop_receipt)
    assert await queue.count() == 0


async def test_delete_with_stale_receipt_or_of_a_gone_message(queue: QueueUnderTest) -> None:
    await queue.sdk.send_message("once")
    [first] = await queue.lean.get(1, 30)
    await queue.lean.update_visibility(first.id, first.pop_receipt, 0)
    [second] = await queue.lean.get(1, 30)
    assert second.id == first.id and second.dequeue_count == 2

    with pytest.raises(HttpResponseError) as stale:
        await queue.lean.delete(first.id, first.pop_receipt)
    assert_error(stale, HttpResponseError, 400, "PopReceiptMismatch")
    with pytest.raises(HttpResponseError) as stale_update:
        await queue.lean.update_visibility(first.id, first.pop_receipt, 10)
    assert_error(stale_update, HttpResponseError, 400, "PopReceiptMismatch")
    assert await queue.count() == 1

    await queue.lean.delete(second.id, second.pop_receipt)
    with pytest.raises(ResourceNotFoundError) as gone:
        await queue.lean.delete(second.id, second.pop_receipt)
    assert_error(gone, ResourceNotFoundError, 404, "MessageNotFound")
    with pytest.raises(ResourceNotFoundError) as gone_update:
        await queue.lean.update_visibility(second.id, second.pop_receipt, 10)
    assert_error(gone_update, ResourceNotFoundError, 404, "MessageNotFound")


async def test_missing_queue_raises_not_found(azurite: AzuriteInstance) -> None:
    transport = connection_of(azurite).rest_transport("queue")
    try:
        with pytest.raises(ResourceNotFoundError) as missing:
            await QueueMessages(transport, "no-such-queue").put("x", visibility_timeout=None)
        assert_error(missing, ResourceNotFoundError, 404, "QueueNotFound")
    finally:
        await transport.close()


# -- table rows: values ------------------------------------------------------------------------------

GUID = uuid.UUID("6f9619ff-8b86-d011-b42d-00c04fc964ff")


def every_type(partition_key: str, row_key: str) -> dict[str, Any]:
    """One property of each supported Python type, with edge values."""
    return {
        "PartitionKey": partition_key,
        "RowKey": row_key,
        "text": "<&>\"' naïve 日本語 🎉",
        "empty_text": "",
        "yes": True,
        "no": False,
        "zero": 0,
        "int32_max": 2**31 - 1,
        "int32_min": -(2**31),
        "int64_small": 2**31,
        "int64_negative": -(2**31) - 1,
        "int64_big": 2**62 + 7,  # not exactly representable as a double
        "int64_max": 2**63 - 1,
        "int64_min": -(2**63),
        "double": 3.25,
        "double_whole": 2.0,
        "double_tiny": 5e-324,
        "nan": math.nan,
        "inf": math.inf,
        "minus_inf": -math.inf,
        "when": datetime(2024, 2, 29, 23, 59, 59, 999_999, tzinfo=UTC),
        "when_offset": datetime(2024, 1, 1, 1, 30, tzinfo=timezone(timedelta(hours=2))),
        "binary": bytes(range(256)),
        "empty_binary": b"",
        "guid": GUID,
        "absent": None,  # left out
    }


INT64_PROPERTIES = ("int64_small", "int64_negative", "int64_big", "int64_max", "int64_min")


def as_read(entity: dict[str, Any]) -> dict[str, Any]:
    """What reading `every_type` back gives on the lean path: plain values, UTC datetimes."""
    read = {name: value for name, value in entity.items() if value is not None}
    read["when_offset"] = read["when_offset"].astimezone(UTC)
    read["guid"] = str(read["guid"])
    return read


async def test_every_type_reads_back_with_lean_and_sdk(table: TableUnderTest) -> None:
    entity = every_type("types", "lean-written")
    etag = await table.lean.insert(entity)
    expected = as_read(entity)

    lean = await table.lean.get("types", "lean-written")
    assert_values(lean, expected, exact_types=True)
    [queried] = await collect(
        table.lean.query("PartitionKey eq 'types' and RowKey eq 'lean-written'")
    )
    assert_values(queried, expected, exact_types=True)

    sdk = await table.sdk.get_entity("types", "lean-written")
    assert_values(plain_sdk(sdk), expected, exact_types=False)
    # The EDM types stored are the SDK's: Int32 within 32 bits, Int64 beyond, Guid, Double.
    for name in ("zero", "int32_max", "int32_min"):
        assert type(sdk[name]) is int, name
    for name in INT64_PROPERTIES:
        assert isinstance(sdk[name], EntityProperty), name
        assert sdk[name].edm_type == EdmType.INT64
    assert sdk["guid"] == GUID
    assert type(sdk["double_whole"]) is float

    assert etag == lean.metadata["etag"] == queried.metadata["etag"] == sdk.metadata["etag"]
    assert lean.metadata["timestamp"] == sdk.metadata["timestamp"]
    assert lean.metadata["timestamp"].utcoffset() == timedelta(0)


async def test_sdk_written_entity_reads_identically(table: TableUnderTest) -> None:
    entity = every_type("types", "sdk-written")
    written = dict(entity)
    for name in INT64_PROPERTIES:
        written[name] = EntityProperty(entity[name], EdmType.INT64)  # the SDK needs telling
    written["int64_text"] = EntityProperty("-1234567890123", EdmType.INT64)
    metadata = await table.sdk.create_entity(written)

    expected = as_read(entity) | {"int64_text": -1234567890123}
    lean = await table.lean.get("types", "sdk-written")
    assert_values(lean, expected, exact_types=True)
    [queried] = await collect(table.lean.query("RowKey eq 'sdk-written'"))
    assert_values(queried, expected, exact_types=True)
    assert lean.metadata["etag"] == metadata["etag"]


async def test_merge_and_upsert_write_what_the_sdk_reads(table: TableUnderTest) -> None:
    keys = {"PartitionKey": "p", "RowKey": "r"}
    first = await table.lean.write("upsert", keys | {"a": 1, "b": "two"})
    assert await table.sdk_get("p", "r") == keys | {"a": 1, "b": "two"}
    merged = await table.lean.write("merge", keys | {"b": "zwei", "c": 3.5}, first)
    assert merged != first
    assert await table.sdk_get("p", "r") == keys | {"a": 1, "b": "zwei", "c": 3.5}
    replaced = await table.lean.write("upsert", keys | {"d": True}, merged)
    assert await table.sdk_get("p", "r") == keys | {"d": True}
    assert (await table.sdk.get_entity("p", "r")).metadata["etag"] == replaced
    await table.lean.write("delete", keys, replaced)
    assert await table.sdk_get("p", "r") is None


KEYS = {
    "quotes": ("it's 'quoted'", "say \"hi\" ''"),
    "spaces": ("  spaced  out ", "a b  c"),
    "percent": ("100% sure", "%20 %2F %25 %"),
    "non-ascii": ("naïve façade", "日本語 🎉 Ærø"),
    "punctuation": ("a+b=c&d;e:f@g", "(x),y=$z!*~[]{}<>"),
}


@pytest.mark.parametrize(("pk", "rk"), KEYS.values(), ids=KEYS.keys())
async def test_keys_with_special_characters(table: TableUnderTest, pk: str, rk: str) -> None:
    keys = {"PartitionKey": pk, "RowKey": rk}
    etag = await table.lean.insert(keys | {"v": 1})
    assert await table.lean.get(pk, rk) == keys | {"v": 1}
    assert await table.sdk_get(pk, rk) == keys | {"v": 1}

    etag = await table.lean.write("merge", keys | {"w": 2}, etag)
    assert await table.sdk_get(pk, rk) == keys | {"v": 1, "w": 2}
    etag = await table.lean.write("upsert", keys | {"v": 3}, etag)
    assert await table.sdk_get(pk, rk) == keys | {"v": 3}

    literal = "PartitionKey eq '{}' and RowKey eq '{}'".format(
        pk.replace("'", "''"), rk.replace("'", "''")
    )
    assert await collect(table.lean.query(literal)) == [keys | {"v": 3}]

    await table.lean.write("delete", keys, etag)
    assert await table.sdk_get(pk, rk) is None
    with pytest.raises(ResourceNotFoundError):
        await table.lean.get(pk, rk)

    other = {"PartitionKey": pk, "RowKey": rk + " 2"}
    await table.lean.transact(
        [BatchOperation("insert", keys | {"t": 1}), BatchOperation("upsert", other | {"t": 2})]
    )
    assert await table.sdk_get(pk, rk) == keys | {"t": 1}
    assert await table.sdk_get(pk, rk + " 2") == other | {"t": 2}
    etag = (await table.lean.get(pk, rk)).metadata["etag"]
    await table.lean.transact(
        [BatchOperation("merge", keys | {"u": 3}, etag), BatchOperation("delete", other)]
    )
    assert await table.sdk_get(pk, rk) == keys | {"t": 1, "u": 3}
    assert await table.sdk_get(pk, rk + " 2") is None


UNSUPPORTED = {
    "list": ([1, 2], "list"),
    "dict": ({"a": 1}, "dict"),
    "set": ({1}, "set"),
    "tuple": ((1,), "tuple"),
    "decimal": (Decimal("1.5"), "Decimal"),
    "date": (date(2024, 1, 1), "date"),
    "complex": (1 + 2j, "complex"),
    "bytearray": (bytearray(b"x"), "bytearray"),
    "beyond-int64": (2**63, "9223372036854775808"),
    "below-int64": (-(2**63) - 1, "-9223372036854775809"),
}


@pytest.mark.parametrize(("value", "named"), UNSUPPORTED.values(), ids=UNSUPPORTED.keys())
async def test_unsupported_value_raises_type_error(
    table: TableUnderTest, value: Any, named: str
) -> None:
    entity = {"PartitionKey": "p", "RowKey": "r", "fine": 1, "Bad_Property": value}
    pattern = f"'Bad_Property'.*{named}"
    with pytest.raises(TypeError, match=pattern):
        await table.lean.insert(entity)
    with pytest.raises(TypeError, match=pattern):
        await table.lean.write("upsert", entity)
    with pytest.raises(TypeError, match=pattern):
        await table.lean.transact(
            [
                BatchOperation("upsert", {"PartitionKey": "p", "RowKey": "ok"}),
                BatchOperation("insert", entity),
            ]
        )
    assert [e async for e in table.sdk.list_entities()] == []


# -- table rows: errors ------------------------------------------------------------------------------


async def test_insert_twice_raises_exists(table: TableUnderTest) -> None:
    keys = {"PartitionKey": "p", "RowKey": "r"}
    await table.lean.insert(keys | {"v": 1})
    with pytest.raises(ResourceExistsError) as exists:
        await table.lean.insert(keys | {"v": 2})
    assert_error(exists, ResourceExistsError, 409, "EntityAlreadyExists")
    assert await table.sdk_get("p", "r") == keys | {"v": 1}


@pytest.mark.parametrize("verb", ["merge", "upsert", "delete"])
async def test_write_with_stale_etag_raises_modified(
    table: TableUnderTest, verb: Literal["merge", "upsert", "delete"]
) -> None:
    keys = {"PartitionKey": "p", "RowKey": "r"}
    stale = await table.lean.insert(keys | {"v": 1})
    current = await table.sdk.update_entity(keys | {"v": 2}, mode=UpdateMode.REPLACE)
    with pytest.raises(ResourceModifiedError) as modified:
        await table.lean.write(verb, keys | {"v": 3}, stale)
    assert_error(modified, ResourceModifiedError, 412, "UpdateConditionNotSatisfied")
    assert await table.sdk_get("p", "r") == keys | {"v": 2}
    # The SDK's ETag is the current one for the lean path too.
    await table.lean.write(verb, keys | {"v": 4}, current["etag"])
    assert await table.sdk_get("p", "r") == (None if verb == "delete" else keys | {"v": 4})


async def test_get_of_missing_row_or_table_raises_not_found(table: TableUnderTest) -> None:
    with pytest.raises(ResourceNotFoundError) as missing_row:
        await table.lean.get("p", "nothing here")
    assert_error(missing_row, ResourceNotFoundError, 404, "ResourceNotFound")
    with pytest.raises(ResourceNotFoundError) as missing_delete:
        await table.lean.write("delete", {"PartitionKey": "p", "RowKey": "nothing here"})
    assert_error(missing_delete, ResourceNotFoundError, 404, "ResourceNotFound")
    with pytest.raises(ResourceNotFoundError) as missing_table:
        await TableRows(table.transport, "Nosuchtable").get("p", "r")
    assert_error(missing_table, ResourceNotFoundError, 404, "TableNotFound")


async def test_transaction_with_stale_etag_applies_nothing(table: TableUnderTest) -> None:
    def row(key: str, **values: Any) -> dict[str, Any]:
        return {"PartitionKey": "batch", "RowKey": key, **values}

    stale = await table.lean.insert(row("b", v=1))
    await table.lean.insert(row("d", v=1))
    await table.sdk.update_entity(row("b", v=2), mode=UpdateMode.REPLACE)

    with pytest.raises(ResourceModifiedError) as modified:
        await table.lean.transact(
            [
                BatchOperation("insert", row("a", v=1)),
                BatchOperation("merge", row("b", v=99), stale),
                BatchOperation("upsert", row("c", v=1)),
                BatchOperation("delete", row("d")),
            ]
        )
    assert_error(modified, ResourceModifiedError, 412, "UpdateConditionNotSatisfied")
    rows = {e["RowKey"]: e["v"] async for e in table.sdk.query_entities("PartitionKey eq 'batch'")}
    assert rows == {"b": 2, "d": 1}


async def test_transaction_inserting_an_existing_row_applies_nothing(table: TableUnderTest) -> None:
    await table.lean.insert({"PartitionKey": "batch", "RowKey": "b", "v": 1})
    with pytest.raises(ResourceExistsError) as exists:
        await table.lean.transact(
            [
                BatchOperation("upsert", {"PartitionKey": "batch", "RowKey": "a", "v": 1}),
                BatchOperation("insert", {"PartitionKey": "batch", "RowKey": "b", "v": 2}),
            ]
        )
    assert_error(exists, ResourceExistsError, 409, "EntityAlreadyExists")
    rows = {e["RowKey"]: e["v"] async for e in table.sdk.list_entities()}
    assert rows == {"b": 1}


# -- table rows: queries and transactions ------------------------------------------------------------


async def test_query_follows_continuations(azurite: AzuriteInstance, table: TableUnderTest) -> None:
    count = 1234
    await insert_rows(
        table,
        [
            {"PartitionKey": "page", "RowKey": f"{n:05d}", "n": n, "pad": "x" * 10}
            for n in range(count)
        ],
    )
    await insert_rows(
        table, [{"PartitionKey": "other", "RowKey": f"{n}", "n": n} for n in range(3)]
    )

    observed = Observed()
    transport = RestTransport(
        azurite.table_endpoint,
        SharedKeyAuthorizer(ACCOUNT_NAME, ACCOUNT_KEY, "table"),
        TABLE_API_VERSION,
        observer=observed,
    )
    try:
        rows = TableRows(transport, table.name)
        everything = await collect(rows.query("PartitionKey eq 'page'"))
        assert [e["n"] for e in everything] == list(range(count))
        assert [e["RowKey"] for e in everything] == [f"{n:05d}" for n in range(count)]
        assert len(observed.calls) >= 2  # the server did page: the continuation was followed

        selected = await collect(rows.query("PartitionKey eq 'page'", select=["RowKey", "n"]))
        assert [set(e) for e in selected] == [{"RowKey", "n"}] * count
        assert [e["n"] for e in selected] == list(range(count))

        across = await collect(rows.query("n ge 1"))
        assert len(across) == count - 1 + 2
        assert {e["PartitionKey"] for e in across} == {"page", "other"}

        assert await collect(rows.query("n lt 0")) == []
    finally:
        await transport.close()


async def test_transaction_returns_each_writes_etag(table: TableUnderTest) -> None:
    def row(key: str, **values: Any) -> dict[str, Any]:
        return {"PartitionKey": "etags", "RowKey": key, **values}

    merge_etag = await table.lean.insert(row("m", v=1))
    await table.lean.insert(row("d", v=1))
    etags = await table.lean.transact(
        [
            BatchOperation("insert", row("a", v=1)),
            BatchOperation("upsert", row("b", v=1)),
            BatchOperation("merge", row("m", w=2), merge_etag),
            BatchOperation("delete", row("d")),
            BatchOperation("upsert", row("z", v=1)),
        ]
    )
    assert len(etags) == 5
    assert etags[3] == ""  # a delete answers without an ETag
    for key, etag in zip("abmz", etags[:3] + etags[4:], strict=True):
        assert etag.startswith('W/"datetime'), etag
        sdk = await table.sdk.get_entity("etags", key)
        assert sdk.metadata["etag"] == etag, key
    assert await table.sdk_get("etags", "m") == row("m", v=1, w=2)
    assert await table.sdk_get("etags", "d") is None
    # The returned ETag is usable for the next conditional write.
    await table.lean.write("merge", row("z", v=2), etags[-1])
    assert await table.sdk_get("etags", "z") == row("z", v=2)


# -- authorisation -----------------------------------------------------------------------------------


def account_sas(permission: str, services: str = "bqt") -> str:
    return generate_account_sas(
        ACCOUNT_NAME,
        ACCOUNT_KEY,
        ResourceTypes(service=True, container=True, object=True),
        AccountSasPermissions.from_string(permission),
        datetime.now(UTC) + timedelta(hours=1),
        services=services,
    )


def sas_connection(azurite: AzuriteInstance, sas: str) -> StorageConnection:
    return StorageConnection.from_connection_string(
        f"SharedAccessSignature={sas};BlobEndpoint={azurite.blob_endpoint};"
        f"QueueEndpoint={azurite.queue_endpoint};TableEndpoint={azurite.table_endpoint}"
    )


async def test_account_sas_from_a_connection_string(
    azurite: AzuriteInstance, queue: QueueUnderTest, table: TableUnderTest
) -> None:
    connection = sas_connection(azurite, account_sas("rwdlacup"))
    assert connection.credential_kind == "shared access signature"
    queues = connection.rest_transport("queue")
    tables = connection.rest_transport("table")
    try:
        messages = QueueMessages(queues, queue.name)
        sent = await messages.put("by SAS <&>", visibility_timeout=None)
        peeked = await queue.sdk.peek_messages()
        assert [(m.id, m.content) for m in peeked] == [(sent.id, "by SAS <&>")]
        [got] = await messages.get(1, 30)
        receipt = await messages.update_visibility(got.id, got.pop_receipt, 30)
        await messages.delete(got.id, receipt)
        assert await queue.count() == 0

        rows = TableRows(tables, table.name)
        keys = {"PartitionKey": "sas", "RowKey": "it's 1"}
        etag = await rows.insert(keys | {"v": 1})
        assert await rows.get("sas", "it's 1") == keys | {"v": 1}
        await rows.transact([BatchOperation("merge", keys | {"w": 2}, etag)])
        assert await table.sdk_get("sas", "it's 1") == keys | {"v": 1, "w": 2}
        assert await collect(rows.query("PartitionKey eq 'sas'")) == [keys | {"v": 1, "w": 2}]
    finally:
        await queues.close()
        await tables.close()


async def test_table_account_sas_with_sas_authorizer(
    azurite: AzuriteInstance, table: TableUnderTest
) -> None:
    sas = generate_table_account_sas(
        AzureNamedKeyCredential(ACCOUNT_NAME, ACCOUNT_KEY),
        TableResourceTypes(service=True, container=True, object=True),
        TableSasPermissions(read=True, write=True, delete=True, list=True, add=True, update=True),
        datetime.now(UTC) + timedelta(hours=1),
    )
    transport = RestTransport(azurite.table_endpoint, SasAuthorizer(sas), TABLE_API_VERSION)
    try:
        rows = TableRows(transport, table.name)
        await rows.insert({"PartitionKey": "sas", "RowKey": "r", "v": 2**40})
        assert await rows.get("sas", "r") == {"PartitionKey": "sas", "RowKey": "r", "v": 2**40}
        assert plain_sdk(await table.sdk.get_entity("sas", "r"))["v"] == 2**40
    finally:
        await transport.close()


async def test_sas_is_checked(azurite: AzuriteInstance, queue: QueueUnderTest) -> None:
    read_only = sas_connection(azurite, account_sas("r")).rest_transport("queue")
    tampered_sas = account_sas("rwdlacup").replace("sig=", "sig=AAAA")
    tampered = sas_connection(azurite, tampered_sas).rest_transport("queue")
    try:
        with pytest.raises(HttpResponseError) as denied:
            await QueueMessages(read_only, queue.name).put("x", visibility_timeout=None)
        assert_error(denied, HttpResponseError, 403, "AuthorizationPermissionMismatch")
        with pytest.raises(ClientAuthenticationError) as forged:
            await QueueMessages(tampered, queue.name).put("x", visibility_timeout=None)
        assert_error(forged, ClientAuthenticationError, 403, "AuthenticationFailed")
        assert await queue.count() == 0
    finally:
        await read_only.close()
        await tampered.close()


async def test_wrong_account_key_fails_as_with_the_sdk(
    azurite: AzuriteInstance, queue: QueueUnderTest, table: TableUnderTest
) -> None:
    """Azurite checks signatures. The queue service answers 403 AuthenticationFailed (the SDK's
    ClientAuthenticationError); Azurite's table service answers 403 AuthorizationFailure (where
    Azure says AuthenticationFailed), which the SDK raises as a plain HttpResponseError."""
    wrong_connection_string = azurite.connection_string.replace(ACCOUNT_KEY, WRONG_KEY)
    wrong = StorageConnection.from_connection_string(wrong_connection_string)
    queues = wrong.rest_transport("queue")
    tables = wrong.rest_transport("table")
    try:
        with pytest.raises(HttpResponseError) as queue_denied:
            await QueueMessages(queues, queue.name).put("x", visibility_timeout=None)
        with pytest.raises(HttpResponseError) as table_denied:
            await TableRows(tables, table.name).insert({"PartitionKey": "p", "RowKey": "r"})
    finally:
        await queues.close()
        await tables.close()
    async with (
        QueueClient.from_connection_string(wrong_connection_string, queue.name) as sdk_queue,
        TableClient.from_connection_string(wrong_connection_string, table.name) as sdk_table,
    ):
        with pytest.raises(HttpResponseError) as sdk_queue_denied:
            await sdk_queue.send_message("x")
        with pytest.raises(HttpResponseError) as sdk_table_denied:
            await sdk_table.create_entity({"PartitionKey": "p", "RowKey": "r"})

    assert_error(queue_denied, ClientAuthenticationError, 403, "AuthenticationFailed")
    assert type(sdk_queue_denied.value) is ClientAuthenticationError
    assert_error(table_denied, HttpResponseError, 403, "AuthorizationFailure")
    assert type(sdk_table_denied.value) is HttpResponseError
    sdk_headers = getattr(sdk_table_denied.value.response, "headers", {})
    assert sdk_headers["x-ms-error-code"] == "AuthorizationFailure"
    assert await queue.count() == 0
    assert await table.sdk_get("p", "r") is None


# -- transport ---------------------------------------------------------------------------------------


def counting_transport(
    endpoint: str, observer: Observed | None = None
) -> tuple[RestTransport, CountingAuthorizer]:
    authorizer = CountingAuthorizer(SharedKeyAuthorizer(ACCOUNT_NAME, ACCOUNT_KEY, "queue"))
    return RestTransport(endpoint, authorizer, QUEUE_API_VERSION, observer), authorizer


@pytest.mark.usefixtures("no_retry_delays")
async def test_closed_port_raises_service_request_error_after_retries() -> None:
    [port] = free_ports(1)
    observed = Observed()
    transport, authorizer = counting_transport(f"http://{HOST}:{port}/{ACCOUNT_NAME}", observed)
    try:
        with pytest.raises(ServiceRequestError) as failed:
            await QueueMessages(transport, "q").put("x", visibility_timeout=None)
        assert type(failed.value) is ServiceRequestError
        assert str(port) in str(failed.value)
        assert authorizer.count == len(transport_module.DEFAULT_REST_RETRY_DELAYS) + 1 == 4
        assert observed.calls == []
    finally:
        await transport.close()


async def test_retry_delays_are_slept_between_attempts(monkeypatch: pytest.MonkeyPatch) -> None:
    delays: list[float] = []
    real_sleep = asyncio.sleep

    async def recording_sleep(seconds: float) -> None:
        delays.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr(transport_module.asyncio, "sleep", recording_sleep)
    [port] = free_ports(1)
    transport, _ = counting_transport(f"http://{HOST}:{port}/{ACCOUNT_NAME}")
    try:
        with pytest.raises(ServiceRequestError):
            await transport.request("GET", "/q/messages")
    finally:
        await transport.close()
    assert delays == [0.1, 0.5, 2.0]


@pytest.mark.usefixtures("no_retry_delays")
async def test_hang_up_raises_service_response_error_after_retries() -> None:
    connections = 0

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(hang_up, HOST, 0)
    port = server.sockets[0].getsockname()[1]
    transport, authorizer = counting_transport(f"http://{HOST}:{port}/{ACCOUNT_NAME}")
    try:
        # POST: aiohttp itself resends an idempotent request once on a dropped connection.
        with pytest.raises(ServiceResponseError) as failed:
            await transport.request("POST", "/q/messages", body=b"x")
        assert type(failed.value) is ServiceResponseError
        assert authorizer.count == 4
        assert connections == 4
    finally:
        await transport.close()
        server.close()
        await server.wait_closed()


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def serve(handler: Handler) -> tuple[web.AppRunner, str]:
    """A local HTTP server answering every request with `handler`; returns it and its endpoint."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, HOST, 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://{HOST}:{port}/{ACCOUNT_NAME}"


@pytest.mark.usefixtures("no_retry_delays")
async def test_retried_statuses_and_observer_sees_each_attempt() -> None:
    answers = [503, 500, 429, 201]
    seen: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.path_qs)
        return web.Response(status=answers.pop(0), body=b"<ok/>")

    runner, endpoint = await serve(handler)
    observed = Observed()
    transport, authorizer = counting_transport(endpoint, observed)
    try:
        response = await transport.request("POST", "/q/messages", query={"a": "b c"}, body=b"x")
        assert (response.status, response.body) == (201, b"<ok/>")
        assert observed.statuses == [503, 500, 429, 201]
        assert authorizer.count == 4
        assert seen == [f"/{ACCOUNT_NAME}/q/messages?a=b%20c"] * 4
        for method, url, _, seconds, body in observed.calls:
            assert (method, url, body) == ("POST", f"{endpoint}/q/messages?a=b%20c", b"<ok/>")
            assert 0 <= seconds < 10
    finally:
        await transport.close()
        await runner.cleanup()


@pytest.mark.usefixtures("no_retry_delays")
async def test_errors_from_answers() -> None:
    answers: list[web.Response] = []

    async def handler(request: web.Request) -> web.Response:
        return answers.pop(0)

    runner, endpoint = await serve(handler)
    observed = Observed()
    transport, _ = counting_transport(endpoint, observed)
    try:
        # Not retried: a 4xx is final. The XML body gives code and message.
        answers.append(
            web.Response(
                status=404,
                body=b"<?xml version='1.0'?><Error><Code>QueueNotFound</Code>"
                b"<Message>The specified queue does not exist.\nRequestId:1</Message></Error>",
            )
        )
        with pytest.raises(ResourceNotFoundError) as missing:
            await transport.request("GET", "/q/messages")
        assert_error(missing, ResourceNotFoundError, 404, "QueueNotFound")
        assert "RequestId" not in str(missing.value)
        assert observed.statuses == [404]

        # Retried, then the last answer is raised; the header's code wins over the body's.
        answers.extend(
            web.Response(status=503, headers={"x-ms-error-code": "ServerBusy"}, body=b"<x/>")
            for _ in range(4)
        )
        with pytest.raises(HttpResponseError) as busy:
            await transport.request("GET", "/q/messages")
        assert_error(busy, HttpResponseError, 503, "ServerBusy")
        assert observed.statuses == [404, 503, 503, 503, 503]

        # A JSON (table) error body.
        answers.append(
            web.json_response(
                {"odata.error": {"code": "EntityAlreadyExists", "message": {"value": "exists"}}},
                status=409,
            )
        )
        with pytest.raises(ResourceExistsError) as exists:
            await transport.request("POST", "/t", body=b"{}")
        assert_error(exists, ResourceExistsError, 409, "EntityAlreadyExists")
        # A rejected token or signature is a ClientAuthenticationError, as with the SDKs.
        answers.append(
            web.Response(status=401, headers={"x-ms-error-code": "InvalidAuthenticationInfo"})
        )
        with pytest.raises(ClientAuthenticationError) as unauthenticated:
            await transport.request("GET", "/q/messages")
        assert_error(unauthenticated, ClientAuthenticationError, 401, "InvalidAuthenticationInfo")
        # An answer outside `expect` is an error even when it is a success.
        answers.append(web.Response(status=200))
        with pytest.raises(HttpResponseError) as unexpected:
            await transport.request("GET", "/q/messages", expect=(204,))
        assert unexpected.value.status_code == 200
    finally:
        await transport.close()
        await runner.cleanup()


async def test_observer_is_called_once_per_request(
    azurite: AzuriteInstance, queue: QueueUnderTest, table: TableUnderTest
) -> None:
    observed = Observed()

    class Watcher:
        def sdk_hooks(self, service: str) -> dict[str, Any]:
            return {}

        def rest_observer(self, service: str) -> Observed:
            return observed

    connection = StorageConnection.from_connection_string(azurite.connection_string)
    connection = connection.with_options(StorageClientOptions(watcher=Watcher()))
    queues = connection.rest_transport("queue")
    tables = connection.rest_transport("table")
    try:
        messages = QueueMessages(queues, queue.name)
        sent = await messages.put("observed", visibility_timeout=None)
        [(method, url, status, seconds, body)] = observed.calls
        assert (method, status) == ("POST", 201)
        assert url.startswith(f"{azurite.queue_endpoint}/{queue.name}/messages?")
        assert 0 < seconds < 10
        assert sent.id.encode() in body and b"<PopReceipt>" in body

        [got] = await messages.get(1, 30)
        await messages.delete(got.id, got.pop_receipt)
        with pytest.raises(ResourceNotFoundError):
            await messages.delete(got.id, got.pop_receipt)
        assert [(c[0], c[2]) for c in observed.calls[1:]] == [
            ("GET", 200),
            ("DELETE", 204),
            ("DELETE", 404),
        ]
        assert b"observed" in observed.calls[1][4]
        assert b"MessageNotFound" in observed.calls[3][4]

        observed.calls.clear()
        rows = TableRows(tables, table.name)
        await rows.transact([BatchOperation("insert", {"PartitionKey": "p", "RowKey": "r"})])
        await rows.get("p", "r")
        assert [(c[0], c[1].rsplit("/", 1)[1], c[2]) for c in observed.calls] == [
            ("POST", "$batch", 202),
            ("GET", f"{table.name}(PartitionKey='p',RowKey='r')", 200),
        ]
    finally:
        await queues.close()
        await tables.close()


class _CountingTokenCredential:
    """A token credential (no Microsoft Entra here) whose tokens expire when the test says."""

    def __init__(self, lifetime_s: float) -> None:
        self.lifetime_s = lifetime_s
        self.scopes: list[tuple[str, ...]] = []

    async def get_token(self, *scopes: str, **_: object) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(f"token-{len(self.scopes)}", int(time.time() + self.lifetime_s))

    async def close(self) -> None:
        return None


async def test_bearer_tokens_are_reused_until_five_minutes_before_expiry() -> None:
    long_lived = _CountingTokenCredential(lifetime_s=3600)
    authorizer = authorizer_for(long_lived, "queue")  # type: ignore[arg-type]
    seen = []
    for _ in range(3):
        headers: dict[str, str] = {"x-ms-date": "d"}
        await authorizer.authorize("GET", "/q/messages", {}, headers, 0)
        seen.append(headers["Authorization"])
    assert seen == ["Bearer token-1"] * 3
    assert long_lived.scopes == [("https://storage.azure.com/.default",)]

    short_lived = _CountingTokenCredential(lifetime_s=200)  # inside the 5-minute margin
    authorizer = authorizer_for(short_lived, "table")  # type: ignore[arg-type]
    for _ in range(2):
        await authorizer.authorize("GET", "/t()", {}, {"x-ms-date": "d"}, 0)
    assert len(short_lived.scopes) == 2


@pytest.mark.usefixtures("no_retry_delays")
async def test_requests_go_through_the_proxy_the_environment_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """HTTP_PROXY is honoured (a proxy gets the absolute URL); NO_PROXY hosts are reached directly."""
    seen: list[str] = []

    async def proxy(request: web.Request) -> web.Response:
        seen.append(str(request.url))
        return web.Response(status=201, body=b"<ok/>")

    runner, proxy_endpoint = await serve(proxy)
    proxy_origin = proxy_endpoint.rsplit("/", 1)[0]
    monkeypatch.setenv("HTTP_PROXY", proxy_origin)
    monkeypatch.setenv("NO_PROXY", "direct.invalid")
    proxied = RestTransport("http://storage.invalid:10001/acct", SasAuthorizer("sv=x"), "v")
    direct = RestTransport("http://direct.invalid:10001/acct", SasAuthorizer("sv=x"), "v")
    try:
        response = await proxied.request("POST", "/q/messages", body=b"x")
        assert response.status == 201
        assert seen == ["http://storage.invalid:10001/acct/q/messages?sv=x"]
        with pytest.raises(ServiceRequestError):
            await direct.request("POST", "/q/messages", body=b"x")
        assert len(seen) == 1
    finally:
        await proxied.close()
        await direct.close()
        await runner.cleanup()
