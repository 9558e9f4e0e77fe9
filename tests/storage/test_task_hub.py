"""Task hub lifecycle (names, partition count, create, delete) against Azurite, and unit tests of
the key escaping and OData quoting that every table query is built from."""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone

import pytest

from durable_ext import DurableOrchestrationContext, OrchestrationRuntimeStatus
from durable_ext.runtime import Runtime
from durable_ext.storage.connection import StorageConnection
from durable_ext.storage.instance_store import InstanceQuery
from durable_ext.storage.keys import (
    escape_key,
    odata_datetime,
    odata_string,
    prefix_range,
    unescape_key,
)
from durable_ext.storage.names import InvalidTaskHubNameError, TaskHubNames
from durable_ext.storage.task_hub import TaskHub, TaskHubConfigurationError
from durable_ext.worker import FunctionRegistry
from tests.azurite import AzuriteInstance
from tests.storage.raw_state import RawStorage
from tests.worker.conftest import fast_options

RUN_TIMEOUT = 60.0
CONTROL_CHARS = [chr(c) for c in [*range(0x00, 0x20), *range(0x7F, 0xA0)]]
RESERVED = {"^": "^^", "/": "^0", "\\": "^1", "#": "^2", "?": "^3"}


# -- helpers -----------------------------------------------------------------------------------------


@pytest.fixture
async def raw(azurite: AzuriteInstance) -> AsyncIterator[RawStorage]:
    """Plain SDK clients on the session Azurite."""
    async with RawStorage(azurite.connection_string) as storage:
        yield storage


def connection_of(azurite: AzuriteInstance) -> StorageConnection:
    return StorageConnection.from_connection_string(azurite.connection_string)


def expected_resources(hub: str, partitions: int = 4) -> dict[str, set[str]]:
    """Every resource a hub has after running something large: DTFx's with the table partition
    manager and the app lease, plus `{h}-leases` (its `taskhub.json`)."""
    h = hub.lower()
    return {
        "queues": {f"{h}-control-{i:02d}" for i in range(partitions)} | {f"{h}-workitems"},
        "tables": {f"{hub}History", f"{hub}Instances", f"{hub}Partitions"},
        "containers": {f"{h}-leases", f"{h}-largemessages", f"{h}-applease"},
    }


async def resources_of(raw: RawStorage, hub: str) -> dict[str, set[str]]:
    """The hub's resources that exist, matched by exact DTFx names (so a hub whose name starts
    with this one's does not count)."""
    h = hub.lower()
    queue_name = re.compile(re.escape(h) + r"-(control-\d\d|workitems)")
    table_name = re.compile(re.escape(hub) + r"(History|Instances|Partitions)", re.IGNORECASE)
    container_name = re.compile(re.escape(h) + r"-(leases|largemessages|applease)")
    return {
        "queues": {q for q in await raw.queue_names() if queue_name.fullmatch(q)},
        "tables": {t for t in await raw.table_names() if table_name.fullmatch(t)},
        "containers": {c for c in await raw.container_names() if container_name.fullmatch(c)},
    }


def echo(ctx: DurableOrchestrationContext) -> object:
    return (yield ctx.call_activity("echo", ctx.get_input()))


def echo_registry() -> FunctionRegistry:
    registry = FunctionRegistry()
    registry.add_orchestrator("echo", echo)
    registry.add_activity("echo", lambda value: value)
    return registry


async def run_echo(
    azurite: AzuriteInstance, hub: str, value: object, partitions: int = 4
) -> object:
    """Run one orchestration to completion on `hub`; its output."""
    async with Runtime(
        echo_registry(),
        connection=azurite.connection_string,
        hub=hub,
        options=fast_options(partition_count=partitions),
    ) as rt:
        instance_id = await rt.client.start_new("echo", client_input=value)
        status = await rt.client.wait_for_completion(instance_id, timeout=RUN_TIMEOUT)
    assert status.runtime_status is OrchestrationRuntimeStatus.Completed
    return status.output


# -- hub names ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "ab",  # too short
        "a" * 46,  # too long
        "1hub",  # starts with a digit
        "my-hub",  # hyphen
        "my_hub",  # underscore
        "",
        "hub name",
        "Hüb",
    ],
)
def test_invalid_hub_names_are_rejected_with_the_rules(name: str, azurite: AzuriteInstance) -> None:
    for make in (
        lambda: TaskHubNames(name),
        lambda: TaskHub(connection_of(azurite), name),
        lambda: Runtime(echo_registry(), connection=azurite.connection_string, hub=name),
    ):
        with pytest.raises(InvalidTaskHubNameError) as caught:
            make()
        message = str(caught.value)
        assert repr(name) in message, "the error names the offending hub name"
        assert "3 to 45" in message
        assert "letters and digits" in message
        assert "starting with a letter" in message
    assert issubclass(InvalidTaskHubNameError, ValueError)


@pytest.mark.parametrize("name", ["abc", "A" + "b1" * 22, "Hub2024", "x9Y"])
def test_valid_hub_names_are_accepted(name: str) -> None:
    names = TaskHubNames(name)
    assert len(name) <= 45
    assert names.history_table == f"{name}History"
    assert names.work_item_queue == f"{name.lower()}-workitems"
    assert len(names.large_messages_container) <= 63


@pytest.mark.parametrize("count", [0, 17, -1])
def test_partition_count_must_be_1_to_16(count: int, azurite: AzuriteInstance) -> None:
    with pytest.raises(TaskHubConfigurationError, match="1 to 16"):
        TaskHub(connection_of(azurite), "ValidHub", count)


# -- partition count is fixed at creation ------------------------------------------------------------


@pytest.mark.parametrize("run_worker", [False, True])
async def test_reopening_with_another_partition_count_fails_and_corrupts_nothing(
    run_worker: bool, azurite: AzuriteInstance, raw: RawStorage, hub_name: str
) -> None:
    h = hub_name.lower()
    assert await run_echo(azurite, hub_name, "first") == "first"
    before = await resources_of(raw, hub_name)
    info_before = await raw.download(f"{h}-leases", "taskhub.json")

    with pytest.raises(TaskHubConfigurationError) as caught:
        async with Runtime(
            echo_registry(),
            connection=azurite.connection_string,
            hub=hub_name,
            options=fast_options(partition_count=2),
            run_worker=run_worker,
        ):
            pytest.fail("the hub must not open with 2 partitions")
    message = str(caught.value)
    assert hub_name in message
    assert "4 partitions" in message and "2" in message
    assert "cannot change" in message

    assert await raw.download(f"{h}-leases", "taskhub.json") == info_before
    assert await resources_of(raw, hub_name) == before
    assert json.loads(info_before)["PartitionCount"] == 4
    # The hub still works with its real partition count.
    assert await run_echo(azurite, hub_name, "second") == "second"


# -- creation ----------------------------------------------------------------------------------------


async def test_create_if_not_exists_is_idempotent_and_safe_concurrently(
    azurite: AzuriteInstance, raw: RawStorage, hub_name: str
) -> None:
    h = hub_name.lower()
    connection = connection_of(azurite)
    hubs = [TaskHub(connection, hub_name, 4) for _ in range(3)]
    for hub in hubs:
        hub.open()
    try:
        await asyncio.gather(*(hub.create_if_not_exists() for hub in hubs))
        first_info = await raw.download(f"{h}-leases", "taskhub.json")
        await asyncio.gather(*(hub.create_if_not_exists() for hub in hubs))
        await hubs[0].create_if_not_exists()
        assert await hubs[0].exists()
    finally:
        for hub in hubs:
            await hub.close()

    found = await resources_of(raw, hub_name)
    wanted = expected_resources(hub_name)
    assert found["queues"] == wanted["queues"]
    partitions = {f"{hub_name}Partitions"}
    assert found["tables"] == wanted["tables"] - partitions, "the worker creates its lease store"
    assert found["containers"] == {f"{h}-leases"}, "large-message container is created lazily"
    info = json.loads(first_info)
    assert info["TaskHubName"] == hub_name and info["PartitionCount"] == 4
    assert await raw.download(f"{h}-leases", "taskhub.json") == first_info, "never rewritten"
    assert await run_echo(azurite, hub_name, {"after": "create"}) == {"after": "create"}


@pytest.mark.parametrize("round_", range(3))
async def test_concurrent_creates_with_different_partition_counts_agree(
    round_: int, azurite: AzuriteInstance, raw: RawStorage, hub_name: str
) -> None:
    """Whichever creator writes `taskhub.json` first fixes the count; the others fail cleanly."""
    h = hub_name.lower()
    connection = connection_of(azurite)
    counts = [4, 2, 4]
    hubs = [TaskHub(connection, hub_name, count) for count in counts]
    for hub in hubs:
        hub.open()
    try:
        results = await asyncio.gather(
            *(hub.create_if_not_exists() for hub in hubs), return_exceptions=True
        )
    finally:
        for hub in hubs:
            await hub.close()
    stored = json.loads(await raw.download(f"{h}-leases", "taskhub.json"))["PartitionCount"]
    assert stored in counts
    for count, result in zip(counts, results, strict=True):
        if count == stored:
            assert result is None, result
        else:
            assert isinstance(result, TaskHubConfigurationError), result
    queues = (await resources_of(raw, hub_name))["queues"]
    assert queues == expected_resources(hub_name, stored)["queues"]


# -- deletion ----------------------------------------------------------------------------------------


async def test_delete_removes_every_resource_and_leaves_other_hubs_alone(
    azurite: AzuriteInstance, raw: RawStorage, hub_name: str
) -> None:
    # `other`'s resource names all start with `doomed`'s, to catch prefix-based deletion.
    doomed = hub_name[:40]
    other = doomed + "X2"
    big = "z" * 100_000  # makes each hub create its large-message container
    for hub in (doomed, other):
        assert await run_echo(azurite, hub, big) == big
        assert await resources_of(raw, hub) == expected_resources(hub)
    other_blobs = await raw.blob_names(f"{other.lower()}-largemessages")
    assert other_blobs

    async with TaskHub(connection_of(azurite), doomed, 4) as task_hub:
        await task_hub.delete()
        assert not await task_hub.exists()
        await task_hub.delete()  # deleting again is harmless

    assert await resources_of(raw, doomed) == {
        "queues": set(),
        "tables": set(),
        "containers": set(),
    }
    assert await resources_of(raw, other) == expected_resources(other)
    assert await raw.blob_names(f"{other.lower()}-largemessages") == other_blobs
    assert await run_echo(azurite, other, "still here") == "still here"
    # The deleted hub can be created again from scratch.
    assert await run_echo(azurite, doomed, "reborn") == "reborn"


# -- key escaping (unit) -----------------------------------------------------------------------------


@pytest.mark.parametrize(("char", "escaped"), sorted(RESERVED.items()))
def test_reserved_characters_are_escaped(char: str, escaped: str) -> None:
    assert escape_key(char) == escaped
    assert escape_key(f"a{char}b") == f"a{escaped}b"
    assert unescape_key(escaped) == char
    assert unescape_key(escape_key(char * 3)) == char * 3


@pytest.mark.parametrize("char", CONTROL_CHARS, ids=lambda c: f"U+{ord(c):04X}")
def test_control_characters_are_escaped_with_the_a_grave_offset(char: str) -> None:
    escaped = escape_key(char)
    assert escaped == "^" + chr(0xC0 + ord(char))
    assert unescape_key(escaped) == char
    assert unescape_key(escape_key(f"x{char}y{char}")) == f"x{char}y{char}"


def test_escaped_keys_hold_no_character_azure_tables_forbids() -> None:
    forbidden = set("/\\#?") | set(CONTROL_CHARS)
    text = "".join(CONTROL_CHARS) + "".join(RESERVED) + "plain À ^À"
    escaped = escape_key(text)
    assert not forbidden & set(escaped)
    assert unescape_key(escaped) == text


def test_plain_text_is_unchanged() -> None:
    for text in ("", "abc", "a b", "ünï€😀", "@entity", "À", "x'y", "ÿ" + "\u0100"):
        assert escape_key(text) == text
        assert unescape_key(text) == text


def test_escape_round_trips_random_strings() -> None:
    alphabet = [*CONTROL_CHARS, *RESERVED, "a", "Z", "0", " ", "'", "À", "Á", "ÿ", "ş", "😀", "€"]
    rng = random.Random(20240611)
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 24)))
        escaped = escape_key(text)
        assert unescape_key(escaped) == text, repr(text)
        assert "^" not in text or "^^" in escaped


def test_escaping_is_injective_on_tricky_pairs() -> None:
    """Distinct ids never share a PartitionKey (e.g. `^0` typed by a user vs an escaped `/`)."""
    pairs = [("^0", "/"), ("^^", "^"), ("^À", "\x00"), ("À", "\x00"), ("^1", "\\")]
    for left, right in pairs:
        assert escape_key(left) != escape_key(right), (left, right)


# -- OData quoting (unit) ----------------------------------------------------------------------------


def test_odata_string_doubles_single_quotes() -> None:
    assert odata_string("plain") == "'plain'"
    assert odata_string("O'Brien") == "'O''Brien'"
    assert odata_string("'") == "''''"
    assert odata_string("''") == "''''''"
    assert odata_string("") == "''"


_TOKEN = re.compile(
    r"\s*(?:(?P<dt>datetime'[^']*')|(?P<str>'(?:[^']|'')*')|(?P<word>[A-Za-z_]\w*)|(?P<paren>[()]))"
)
_ALLOWED_WORDS = {
    "RowKey",
    "PartitionKey",
    "TaskHubName",
    "CreatedTime",
    "RuntimeStatus",
    "eq",
    "ge",
    "le",
    "lt",
    "and",
    "or",
}


def tokenize(odata: str) -> list[tuple[str, str]]:
    """Split an OData filter into (kind, text) tokens; fails on anything unexpected."""
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(odata):
        match = _TOKEN.match(odata, position)
        assert match and match.end() > position, f"unexpected text at {odata[position:]!r}"
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


def literals(odata: str) -> list[str]:
    """The decoded string literals of a filter, after checking its structure."""
    values = []
    for kind, text in tokenize(odata):
        if kind == "word":
            assert text in _ALLOWED_WORDS, f"{text!r} leaked into the filter as an identifier"
        elif kind == "str":
            values.append(text[1:-1].replace("''", "'"))
    return values


INJECTIONS = [
    "x' or '1' eq '1",
    "x') or (PartitionKey ne '",
    "'",
    "''",
    "a' and RuntimeStatus eq 'Completed",
]


@pytest.mark.parametrize("prefix", INJECTIONS)
def test_instance_query_quotes_an_injected_prefix(prefix: str) -> None:
    odata = InstanceQuery(instance_id_prefix=prefix).odata_filter("MyHub")
    values = literals(odata)
    key = escape_key(prefix)
    assert values == ["", "MyHub", key, key[:-1] + chr(ord(key[-1]) + 1)]
    assert [w for k, w in tokenize(odata) if k == "word"].count("or") == 0


@pytest.mark.parametrize("status", INJECTIONS)
def test_instance_query_refuses_statuses_that_are_not_status_names(status: str) -> None:
    with pytest.raises(ValueError):
        InstanceQuery(runtime_status=["Running", status])


def test_instance_query_quotes_statuses_and_times() -> None:
    created = datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    query = InstanceQuery(
        created_from=created, created_to=created, runtime_status=["Running", "Failed"]
    )
    odata = query.odata_filter("MyHub")
    assert literals(odata) == ["", "MyHub", "Running", "Failed"]
    assert "datetime'2024-01-02T03:04:05.678901Z'" in odata
    assert [w for k, w in tokenize(odata) if k == "word"].count("or") == 1


def test_prefix_range_is_a_quoted_key_range() -> None:
    assert prefix_range("PartitionKey", "") == ""
    assert prefix_range("PartitionKey", "ab") == "PartitionKey ge 'ab' and PartitionKey lt 'ac'"
    assert prefix_range("PartitionKey", "a'") == "PartitionKey ge 'a''' and PartitionKey lt 'a('"


async def test_prefix_queries_on_storage_cannot_be_injected(
    azurite: AzuriteInstance, hub_name: str
) -> None:
    """Against Azurite: a quote in the prefix is data, not syntax."""
    async with Runtime(
        echo_registry(), connection=azurite.connection_string, hub=hub_name, run_worker=False
    ) as rt:
        for instance_id in ("x'1", "x'2", "x1", "y^1", "z"):
            await rt.client.start_new("echo", instance_id, instance_id)
        client = rt.client

        async def ids(prefix: str) -> list[str]:
            statuses = await client.get_status_by(instance_id_prefix=prefix)
            return sorted(s.instance_id or "" for s in statuses)

        assert await ids("x'") == ["x'1", "x'2"]
        assert await ids("y^") == ["y^1"]
        for injection in INJECTIONS:
            assert await ids(injection) == [], injection
        assert len(await client.get_status_all()) == 5


# -- time filters --------------------------------------------------------------------------------------

PLUS_FIVE = timezone(timedelta(hours=5))
MINUS_EIGHT = timezone(timedelta(hours=-8))


def test_odata_datetime_is_written_in_utc() -> None:
    """Table DateTime literals are UTC (`Z`): an aware time in another zone must be converted,
    not have its wall-clock time relabelled as UTC."""
    instant = datetime(2024, 1, 1, 7, 0, 0, 123456, tzinfo=UTC)
    expected = "datetime'2024-01-01T07:00:00.123456Z'"
    assert odata_datetime(instant) == expected
    assert odata_datetime(instant.astimezone(PLUS_FIVE)) == expected
    assert odata_datetime(instant.astimezone(MINUS_EIGHT)) == expected
    query = InstanceQuery(created_from=instant.astimezone(PLUS_FIVE))
    assert expected in query.odata_filter("MyHub")


def echo_runtime(azurite: AzuriteInstance, hub: str) -> Runtime:
    return Runtime(
        echo_registry(), connection=azurite.connection_string, hub=hub, options=fast_options()
    )


async def complete_one(rt: Runtime) -> tuple[str, datetime]:
    """Run one instance to completion; its id and CreatedTime."""
    instance_id = await rt.client.start_new("echo", "timed", "t")
    status = await rt.client.wait_for_completion(instance_id, timeout=RUN_TIMEOUT)
    assert status.runtime_status is OrchestrationRuntimeStatus.Completed
    assert status.created_time is not None
    return instance_id, status.created_time


async def test_created_time_filter_accepts_aware_times_in_any_zone(
    azurite: AzuriteInstance, hub_name: str
) -> None:
    async with echo_runtime(azurite, hub_name) as rt:
        instance_id, created = await complete_one(rt)
        since = (created - timedelta(minutes=1)).astimezone(PLUS_FIVE)
        found = await rt.client.get_status_by(created_time_from=since)
        assert [s.instance_id for s in found] == [instance_id]
        until = (created + timedelta(minutes=1)).astimezone(MINUS_EIGHT)
        found = await rt.client.get_status_by(created_time_to=until)
        assert [s.instance_id for s in found] == [instance_id]


async def test_purge_by_time_range_never_purges_outside_the_range(
    azurite: AzuriteInstance, hub_name: str
) -> None:
    """Purging "created before (creation - 1 min)", the bound given in UTC+5, must delete
    nothing: the instance was created after the range ends."""
    async with echo_runtime(azurite, hub_name) as rt:
        instance_id, created = await complete_one(rt)
        result = await rt.client.purge_instance_history_by(
            created_time_from=(created - timedelta(days=1)).astimezone(PLUS_FIVE),
            created_time_to=(created - timedelta(minutes=1)).astimezone(PLUS_FIVE),
        )
        assert result.instances_deleted == 0
        assert await rt.client.get_status(instance_id)
