"""The task hub's storage layout, read RAW from Azurite after real runs, against the DTFx Azure
Storage provider (spec: /work/shared/reference/dtfx-azure-storage.md §1–3).

Every layout check reads tables, queues and blobs with the plain Azure SDK clients (never through
durable_ext.storage), so these tests pin what a .NET DTFx worker (or the Durable Functions
tooling) would see in the account.
"""

from __future__ import annotations

import itertools
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

import pytest

from durable_ext import DurableOrchestrationContext, OrchestrationRuntimeStatus
from durable_ext.orchestration.history import (
    EventType,
    ExecutionStarted,
    OrchestrationInstance,
    OrchestratorStarted,
    TaskCompleted,
)
from durable_ext.storage.app_lease import app_lease_id
from durable_ext.storage.connection import StorageConnection
from durable_ext.storage.instance_store import InstanceColumns
from durable_ext.storage.messages import MessageData
from durable_ext.storage.names import fnv1a32
from durable_ext.storage.task_hub import TaskHub
from durable_ext.worker import FunctionRegistry
from tests.azurite import AzuriteInstance
from tests.storage.raw_state import RawStorage, fnv1a32_reference, make_runtime, wait_until

PARTITIONS = 4
HEX_ROW_KEY = re.compile(r"^[0-9A-F]{16}$")
DOTNET_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$")
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
HEX32 = re.compile(r"^[0-9a-f]{32}$")
# `^` (escaped as `^^`), spaces, non-ASCII (incl. a non-BMP character) and `@` not in first place.
ODD_ID = "lay^out id@ünï€😀 ^end"
ODD_ID_KEY = "lay^^out id@ünï€😀 ^^end"
BIG = 100_000  # characters: over the 45 KB queue limit and the 60 KiB (UTF-16) property limit
RUN_TIMEOUT = 60.0


# -- fixtures and helpers --------------------------------------------------------------------------


def history_table(hub: str) -> str:
    return f"{hub}History"


def instances_table(hub: str) -> str:
    return f"{hub}Instances"


def event_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of a History partition without the sentinel, in RowKey order."""
    return [r for r in rows if r["RowKey"] != "sentinel"]


def sentinel_of(rows: list[dict[str, Any]]) -> dict[str, Any]:
    found = [r for r in rows if r["RowKey"] == "sentinel"]
    assert len(found) == 1, f"expected exactly one sentinel row, got {len(found)}"
    return found[0]


def current_execution(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows a reader uses: the sentinel's execution from RowKey 0 up to the first row of
    another execution (an older, longer one's surplus), and the sentinel."""
    execution_id = sentinel_of(rows)["ExecutionId"]
    events = list(itertools.takewhile(lambda r: r["ExecutionId"] == execution_id, event_rows(rows)))
    return [*events, sentinel_of(rows)]


def assert_history_partition_shape(rows: list[dict[str, Any]], partition_key: str) -> str:
    """The DTFx invariants of one History partition; returns the sentinel's ExecutionId.

    RowKeys are 16-digit uppercase hex, contiguous from 0, plus one `sentinel` row that sorts
    last; every event row carries the sentinel's ExecutionId, its EventType by *name*, an EventId
    and the event time in `_Timestamp`.
    """
    assert rows, f"no History rows for {partition_key!r}"
    assert all(r["PartitionKey"] == partition_key for r in rows)
    assert rows[-1]["RowKey"] == "sentinel", "the sentinel must sort after every hex RowKey"
    sentinel = sentinel_of(rows)
    execution_id = sentinel["ExecutionId"]
    assert isinstance(execution_id, str) and HEX32.match(execution_id), execution_id
    assert sentinel["IsCheckpointComplete"] is True
    assert isinstance(sentinel["CheckpointCompletedTimestamp"], datetime)
    events = event_rows(rows)
    keys = [r["RowKey"] for r in events]
    assert all(HEX_ROW_KEY.match(k) for k in keys), keys
    assert keys == [f"{i:016X}" for i in range(len(events))], "RowKeys must be 0..n-1, no gaps"
    for row in events:
        assert row["ExecutionId"] == execution_id, (row["RowKey"], row["ExecutionId"])
        assert isinstance(row["EventType"], str) and row["EventType"] in EventType.__members__
        assert type(row["EventId"]) is int
        assert isinstance(row["_Timestamp"], datetime)
        assert row["_Timestamp"].tzinfo is not None
    return str(execution_id)


# -- orchestrations ----------------------------------------------------------------------------------


def layout_orchestrator(ctx: DurableOrchestrationContext) -> Any:
    """An activity that succeeds, one that fails (caught), custom status, then complete."""
    ctx.set_custom_status({"stage": "greeting"})
    greeting = yield ctx.call_activity("hello", ctx.get_input())
    try:
        yield ctx.call_activity("boom", 1)
        failure = "none"
    except Exception as error:  # noqa: BLE001 - the failure is part of the scenario
        failure = str(error).split("\n")[0]
    ctx.set_custom_status({"stage": "done"})
    return {"greeting": greeting, "failure": failure}


def failing_orchestrator(ctx: DurableOrchestrationContext) -> Any:
    """Fails the instance with an uncaught activity failure."""
    yield ctx.call_activity("boom", 2)


def boom(value: Any) -> None:
    raise ValueError(f"boom {value}")


def layout_registry() -> FunctionRegistry:
    registry = FunctionRegistry()
    registry.add_orchestrator("layout", layout_orchestrator)
    registry.add_orchestrator("failing", failing_orchestrator)
    registry.add_activity("hello", lambda name: f"hello {name}")
    registry.add_activity("boom", boom)
    return registry


# -- hashing -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("", 0x811C9DC5), ("a", 0xE40C292C), ("abc", 0x1A47E90B), ("myinstance", 0xC06A6290)],
)
def test_fnv1a32_matches_the_spec_vectors(text: str, expected: int) -> None:
    assert fnv1a32_reference(text.encode("utf-8")) == expected
    assert fnv1a32(text.encode("utf-8")) == expected


def test_fnv1a32_agrees_with_the_reference_on_many_ids() -> None:
    ids = [uuid.uuid4().hex for _ in range(200)] + [ODD_ID, "ü", "😀", "a b", "x" * 300]
    for instance_id in ids:
        data = instance_id.encode("utf-8")
        assert fnv1a32(data) == fnv1a32_reference(data), instance_id


# -- resource names ----------------------------------------------------------------------------------


async def test_resources_of_a_hub_after_a_run(
    azurite: AzuriteInstance, raw: RawStorage, hub_name: str
) -> None:
    """Queues `{h}-control-00..03` + `{h}-workitems`, tables `{H}History`/`{H}Instances`/
    `{H}Partitions` (one row per control queue, owned by the worker), container `{h}-applease`
    (leased by the app, its info blob naming the app's lease id), and `{h}-leases` holding only
    `taskhub.json` (the table manager writes no lease blobs)."""
    h = hub_name.lower()
    before = datetime.now(UTC)
    async with make_runtime(layout_registry(), azurite, hub_name) as rt:
        instance_id = await rt.client.start_new("layout", client_input="names")
        status = await rt.client.wait_for_completion(instance_id, timeout=RUN_TIMEOUT)
        assert status.runtime_status is OrchestrationRuntimeStatus.Completed
        worker_id = rt.worker.options.worker_id if rt.worker is not None else None
        rows = await raw.all_rows(f"{hub_name}Partitions")
        applease = await raw.blobs.get_container_client(f"{h}-applease").get_container_properties()

    queues = {q for q in await raw.queue_names() if q.startswith(f"{h}-")}
    assert queues == {f"{h}-control-{i:02d}" for i in range(PARTITIONS)} | {f"{h}-workitems"}
    tables = {t for t in await raw.table_names() if t.lower().startswith(h)}
    assert tables == {f"{hub_name}History", f"{hub_name}Instances", f"{hub_name}Partitions"}, (
        "tables keep the hub's case"
    )
    containers = {c for c in await raw.container_names() if c.startswith(f"{h}-")}
    # Large-message container is created lazily: nothing large in this run.
    assert containers == {f"{h}-leases", f"{h}-applease"}

    assert sorted(row["RowKey"] for row in rows) == [
        f"{h}-control-{i:02d}" for i in range(PARTITIONS)
    ]
    for row in rows:
        assert row["PartitionKey"] == ""
        assert row["CurrentOwner"] == worker_id, row
        assert "NextOwner" not in row, row
        assert row["IsDraining"] is False, row
        assert row["OwnedSince"] <= row["LastRenewal"] < row["ExpiresAt"], row
        assert before - timedelta(seconds=5) <= row["OwnedSince"], row
    assert applease.lease.state == "leased"
    info = json.loads(await raw.download(f"{h}-applease", f"{h}-appleaseinfo"))
    assert info["OwnerId"] == app_lease_id(""), info

    blobs = await raw.blob_names(f"{h}-leases")
    assert blobs == {"taskhub.json"}
    info = json.loads(await raw.download(f"{h}-leases", "taskhub.json"))
    assert set(info) == {"TaskHubName", "CreatedAt", "PartitionCount"}
    assert info["TaskHubName"] == hub_name
    assert info["PartitionCount"] == PARTITIONS
    assert DOTNET_TIME.match(info["CreatedAt"]), info["CreatedAt"]
    created = datetime.fromisoformat(info["CreatedAt"][:26] + "+00:00")
    assert before - timedelta(seconds=5) <= created <= datetime.now(UTC) + timedelta(seconds=5)


# -- history and instances rows ----------------------------------------------------------------------


async def test_history_and_instances_rows(
    azurite: AzuriteInstance, raw: RawStorage, hub_name: str
) -> None:
    async with make_runtime(layout_registry(), azurite, hub_name) as rt:
        await rt.client.start_new("layout", ODD_ID, "Ada")
        status = await rt.client.wait_for_completion(ODD_ID, timeout=RUN_TIMEOUT)
    assert status.runtime_status is OrchestrationRuntimeStatus.Completed
    assert status.output == {"greeting": "hello Ada", "failure": status.output["failure"]}
    assert "boom 1" in status.output["failure"]

    rows = await raw.partition(history_table(hub_name), ODD_ID_KEY)
    execution_id = assert_history_partition_shape(rows, ODD_ID_KEY)
    events = event_rows(rows)
    # One message per episode, so the event sequence is deterministic.
    assert [r["EventType"] for r in events] == [
        "OrchestratorStarted",
        "ExecutionStarted",
        "TaskScheduled",
        "OrchestratorCompleted",
        "OrchestratorStarted",
        "TaskCompleted",
        "TaskScheduled",
        "OrchestratorCompleted",
        "OrchestratorStarted",
        "TaskFailed",
        "ExecutionCompleted",
        "OrchestratorCompleted",
    ]
    by_type: dict[str, list[dict[str, Any]]] = {}
    for row in events:
        by_type.setdefault(row["EventType"], []).append(row)

    started = by_type["ExecutionStarted"][0]
    assert started["EventId"] == -1
    assert started["Name"] == "layout"
    assert started["Input"] == '"Ada"'
    assert started["Generation"] == 0
    assert isinstance(started["OrchestrationInstance"], str), "complex members are JSON strings"
    instance = json.loads(started["OrchestrationInstance"])
    assert instance == {"InstanceId": ODD_ID, "ExecutionId": execution_id}, "id is not escaped"

    first, second = by_type["TaskScheduled"]
    assert (first["EventId"], first["Name"], first["Input"]) == (0, "hello", '"Ada"')
    assert (second["EventId"], second["Name"], second["Input"]) == (1, "boom", "1")

    completed = by_type["TaskCompleted"][0]
    assert (completed["EventId"], completed["TaskScheduledId"]) == (-1, 0)
    assert completed["Result"] == '"hello Ada"'

    failed = by_type["TaskFailed"][0]
    assert (failed["EventId"], failed["TaskScheduledId"]) == (-1, 1)
    assert "boom 1" in failed["Reason"]
    assert isinstance(failed["FailureDetails"], str), "FailureDetails is a JSON string column"
    details = json.loads(failed["FailureDetails"])
    assert "$type" not in details, "table JSON is plain Newtonsoft, no $type"
    assert details["ErrorType"] == "ValueError"
    assert details["ErrorMessage"] == "boom 1"

    done = by_type["ExecutionCompleted"][0]
    assert done["EventId"] == 2, "the final action takes the next action id"
    assert done["OrchestrationStatus"] == "Completed", "enums are stored by name in tables"
    assert json.loads(done["Result"]) == status.output
    for row in by_type["OrchestratorStarted"] + by_type["OrchestratorCompleted"]:
        assert row["EventId"] == -1

    instance_rows = await raw.partition(instances_table(hub_name), ODD_ID_KEY)
    assert len(instance_rows) == 1
    row = instance_rows[0]
    assert row["RowKey"] == ""
    assert row["RuntimeStatus"] == "Completed"
    assert row["ExecutionId"] == execution_id
    assert (row["Name"], row["Version"], row["Input"]) == ("layout", "", '"Ada"')
    assert json.loads(row["Output"]) == status.output
    assert json.loads(row["CustomStatus"]) == {"stage": "done"}
    assert row["Generation"] == 0
    assert row["TaskHubName"] == hub_name
    for column in ("CreatedTime", "LastUpdatedTime", "CompletedTime"):
        assert isinstance(row[column], datetime), column
    assert row["CreatedTime"] == started["_Timestamp"], "CreatedTime = ExecutionStarted time"
    assert (
        row["CreatedTime"] <= row["LastUpdatedTime"] <= row["CompletedTime"] + timedelta(seconds=1)
    )
    assert row["Tags"] == "null", "no tags: the JSON of a null dictionary, as DTFx writes it"
    assert "ScheduledStartTime" not in row, "only written when set"

    # IsPlayed as DTFx's executor leaves it at checkpoint time: true on every processed inbound
    # event but OrchestratorStarted, false on the episode's own decisions.
    played = {"ExecutionStarted", "TaskCompleted", "TaskFailed"}
    for event_row in events:
        assert event_row["IsPlayed"] is (event_row["EventType"] in played), event_row["EventType"]
    # A null complex member is the text "null" (TableEntityConverter: SerializeToJson(null)).
    assert started["ParentInstance"] == "null" and started["Tags"] == "null"
    assert done["FailureDetails"] == "null"


async def test_failed_instance_stores_failure_details_as_json(
    azurite: AzuriteInstance, raw: RawStorage, hub_name: str
) -> None:
    async with make_runtime(layout_registry(), azurite, hub_name) as rt:
        instance_id = await rt.client.start_new("failing", "fails")
        status = await rt.client.wait_for_completion(instance_id, timeout=RUN_TIMEOUT)
    assert status.runtime_status is OrchestrationRuntimeStatus.Failed

    rows = await raw.partition(history_table(hub_name), "fails")
    execution_id = assert_history_partition_shape(rows, "fails")
    done = [r for r in event_rows(rows) if r["EventType"] == "ExecutionCompleted"]
    assert len(done) == 1
    assert done[0]["OrchestrationStatus"] == "Failed"
    details = json.loads(done[0]["FailureDetails"])
    assert details["ErrorType"] and details["ErrorMessage"]
    assert details["InnerFailure"]["ErrorType"] == "ValueError"

    (row,) = await raw.partition(instances_table(hub_name), "fails")
    assert row["RuntimeStatus"] == "Failed"
    assert row["ExecutionId"] == execution_id
    assert isinstance(row["CompletedTime"], datetime)
    failure = details["ErrorType"] + ": " + details["ErrorMessage"]
    assert row["Output"] == failure, "FailureDetails.ToString(), as DTFx writes it (not JSON)"
    assert status.output == details["ErrorMessage"], "the status shows the message, as DF does"


async def test_tags_and_scheduled_start_time_columns(
    azurite: AzuriteInstance, raw: RawStorage, hub_name: str
) -> None:
    """A start message carrying Tags and ScheduledStartTime (as a .NET client or a parent would
    send it) puts both on the ExecutionStarted row and on the Instances row."""
    registry = FunctionRegistry()
    registry.add_orchestrator("tagged", lambda ctx: "ok")
    scheduled = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    execution_id = uuid.uuid4().hex
    async with make_runtime(registry, azurite, hub_name) as rt:
        start = ExecutionStarted(
            orchestration_instance=OrchestrationInstance("tagged-1", execution_id),
            name="tagged",
            version="",
            input="null",
            tags={"team": "storage", "run": "1"},
            scheduled_start_time=scheduled,
            generation=0,
        )
        await rt.hub.send_to_instance(
            MessageData(start, OrchestrationInstance("tagged-1", execution_id))
        )
        status = await rt.client.wait_for_completion("tagged-1", timeout=RUN_TIMEOUT)
    assert status.output == "ok"

    rows = await raw.partition(history_table(hub_name), "tagged-1")
    assert assert_history_partition_shape(rows, "tagged-1") == execution_id
    (started,) = [r for r in event_rows(rows) if r["EventType"] == "ExecutionStarted"]
    assert json.loads(started["Tags"]) == {"team": "storage", "run": "1"}
    assert started["ScheduledStartTime"] == scheduled

    (row,) = await raw.partition(instances_table(hub_name), "tagged-1")
    assert json.loads(row["Tags"]) == {"team": "storage", "run": "1"}
    assert row["ScheduledStartTime"] == scheduled
    assert row["RuntimeStatus"] == "Completed"
    assert row["TaskHubName"] == hub_name


async def test_history_store_escapes_reserved_characters_in_partition_keys(
    azurite: AzuriteInstance, raw: RawStorage, hub_name: str
) -> None:
    """The client refuses `/ \\ # ?` and control characters in ids, but the storage layer must
    still store any id (e.g. written by a .NET app) under the DTFx-escaped PartitionKey."""
    instance_id = "a/b\\c#d?e^f\x01g\x7fh\x9fi"
    expected_key = "a^0b^1c^2d^3e^^f^\u00c1g^\u013fh^\u015fi"
    execution_id = uuid.uuid4().hex
    connection = StorageConnection.from_connection_string(azurite.connection_string)
    async with TaskHub(connection, hub_name, PARTITIONS) as hub:
        await hub.create_if_not_exists()
        events = [
            OrchestratorStarted(),
            ExecutionStarted(
                orchestration_instance=OrchestrationInstance(instance_id, execution_id),
                name="x",
                input="null",
            ),
        ]
        await hub.history.append(instance_id, execution_id, events, 0, None)
        running = InstanceColumns(runtime_status=OrchestrationRuntimeStatus.Running, name="x")
        await hub.instances.merge(instance_id, running)
        loaded = await hub.history.load(instance_id)
        row = await hub.instances.get(instance_id)

    rows = await raw.partition(history_table(hub_name), expected_key)
    assert assert_history_partition_shape(rows, expected_key) == execution_id
    assert [r["EventType"] for r in event_rows(rows)] == ["OrchestratorStarted", "ExecutionStarted"]
    assert [r["PartitionKey"] for r in await raw.all_rows(instances_table(hub_name))] == [
        expected_key
    ]
    assert [type(e) for e in loaded.events] == [OrchestratorStarted, ExecutionStarted]
    assert row is not None and row.instance_id == instance_id


# -- queue messages ----------------------------------------------------------------------------------


async def test_start_message_envelope_and_routing(
    azurite: AzuriteInstance, raw: RawStorage, hub_name: str
) -> None:
    """With no worker running, each start message sits in control queue FNV1a32(id) % 4, as
    DTFx's `MessageData` JSON: `$type` tags everywhere, enums as numbers, 7-digit times."""
    h = hub_name.lower()
    ids = ["abc", "myinstance", "a", ODD_ID] + [f"route-{i}" for i in range(12)]
    expected_queue = {i: fnv1a32_reference(i.encode("utf-8")) % PARTITIONS for i in ids}
    assert expected_queue["abc"] == 3
    assert len(set(expected_queue.values())) == PARTITIONS, "the ids must cover every partition"
    execution_ids: dict[str, str] = {}
    async with make_runtime(layout_registry(), azurite, hub_name, run_worker=False) as rt:
        for instance_id in ids:
            await rt.client.start_new("layout", instance_id, {"n": instance_id})
            pending = await rt.hub.instances.get(instance_id)
            assert pending is not None and pending.execution_id
            execution_ids[instance_id] = pending.execution_id
            assert rt.hub.partition_of(instance_id) == expected_queue[instance_id]

    assert await raw.message_count(f"{h}-workitems") == 0
    seen: dict[str, int] = {}
    for index in range(PARTITIONS):
        for raw_message in await raw.peek(f"{h}-control-{index:02d}"):
            assert raw_message.expires_on is not None
            assert raw_message.expires_on.year >= 9999, "messages never expire (TTL -1)"
            text = str(raw_message.content)
            assert text.startswith("{"), "bodies are raw UTF-8 JSON"
            body = json.loads(text)
            instance_id = body["TaskMessage"]["OrchestrationInstance"]["InstanceId"]
            assert instance_id not in seen
            seen[instance_id] = index
            assert_start_envelope(body, instance_id, execution_ids[instance_id])
    assert seen == expected_queue

    # The client writes the Pending row (after sending the message).
    rows = {r["PartitionKey"]: r for r in await raw.all_rows(instances_table(hub_name))}
    assert set(rows) == {i.replace("^", "^^") for i in ids}
    for instance_id in ids:
        row = rows[instance_id.replace("^", "^^")]
        assert row["RowKey"] == ""
        assert row["RuntimeStatus"] == "Pending"
        assert row["ExecutionId"] == execution_ids[instance_id]
        assert (row["Name"], row["Version"]) == ("layout", "")
        assert json.loads(row["Input"]) == {"n": instance_id}
        assert isinstance(row["CreatedTime"], datetime)
        assert isinstance(row["LastUpdatedTime"], datetime)
        assert row["Generation"] == 0
        assert row["TaskHubName"] == hub_name
        assert row["Tags"] == "null"
        assert "CompletedTime" not in row and "Output" not in row


def assert_start_envelope(body: dict[str, Any], instance_id: str, execution_id: str) -> None:
    """The DTFx JSON of a client's ExecutionStarted message."""
    assert body["$type"] == "DurableTask.AzureStorage.MessageData"
    assert GUID.match(body["ActivityId"]), body["ActivityId"]
    assert type(body["SequenceNumber"]) is int
    assert body.get("CompressedBlobName") is None
    assert "Episode" not in body, "omitted for client messages"
    assert body["Sender"] == {"InstanceId": "", "ExecutionId": ""}, "DTFx EmptySourceInstance"
    task = body["TaskMessage"]
    assert task["$type"] == "DurableTask.Core.TaskMessage"
    assert task["SequenceNumber"] == 0
    assert task["OrchestrationInstance"] == {
        "$type": "DurableTask.Core.OrchestrationInstance",
        "InstanceId": instance_id,
        "ExecutionId": execution_id,
    }
    event = task["Event"]
    assert event["$type"] == "DurableTask.Core.History.ExecutionStartedEvent"
    assert type(event["EventType"]) is int and event["EventType"] == 0, "enums are numbers"
    assert event["EventId"] == -1
    assert DOTNET_TIME.match(event["Timestamp"]), event["Timestamp"]
    assert event["OrchestrationInstance"] == {
        "$type": "DurableTask.Core.OrchestrationInstance",
        "InstanceId": instance_id,
        "ExecutionId": execution_id,
    }
    assert event["Name"] == "layout"
    assert json.loads(event["Input"]) == {"n": instance_id}


async def test_large_start_message_goes_to_a_blob(
    azurite: AzuriteInstance, raw: RawStorage, hub_name: str
) -> None:
    """A ~100 KB input: the queue holds a wrapper (TaskMessage null, CompressedBlobName
    `{instanceId}/message-{32 hex}-ExecutionStarted.json.gz`), the blob is the gzipped envelope;
    a worker started afterwards runs it with the full input."""
    h = hub_name.lower()
    instance_id = "big^start"  # the message blob path uses the id as is (not escaped)
    payload = "é" + "x" * BIG
    registry = FunctionRegistry()
    registry.add_orchestrator("echo", lambda ctx: len(ctx.get_input()))
    async with make_runtime(registry, azurite, hub_name, run_worker=False) as rt:
        await rt.client.start_new("echo", instance_id, payload)
        pending = await rt.client.get_status(instance_id, show_input=True)
    assert pending.runtime_status is OrchestrationRuntimeStatus.Pending
    assert pending.input_ == payload
    (pending_row,) = await raw.partition(instances_table(hub_name), "big^^start")
    assert pending_row["Input"].startswith(("http://", "https://"))
    assert f"/{h}-largemessages/" in pending_row["Input"], "large Input: the blob's URL"
    assert pending_row["Input"].endswith("-ExecutionStarted.json.gz"), "the message's own blob"

    queue = f"{h}-control-{fnv1a32_reference(instance_id.encode()) % PARTITIONS:02d}"
    (wrapper,) = await raw.peek_json(queue)
    assert wrapper["$type"] == "DurableTask.AzureStorage.MessageData"
    assert wrapper["TaskMessage"] is None
    assert wrapper["ActivityId"] == "00000000-0000-0000-0000-000000000000"
    # `new MessageData { CompressedBlobName = name }` (MessageManager.cs): the rest at defaults.
    assert wrapper["SequenceNumber"] == 0 and wrapper["SerializableTraceContext"] is None
    assert "Sender" not in wrapper and "Episode" not in wrapper
    blob_name = wrapper["CompressedBlobName"]
    match = re.fullmatch(
        re.escape(instance_id) + r"/message-([0-9a-f]{32})-ExecutionStarted\.json\.gz", blob_name
    )
    assert match, blob_name
    assert blob_name in await raw.blob_names(f"{h}-largemessages")
    envelope = json.loads(await raw.download_gzip_text(f"{h}-largemessages", blob_name))
    assert envelope["ActivityId"].replace("-", "") == match.group(1)
    assert envelope.get("CompressedBlobName") is None, "the blob holds the envelope as it was"
    assert envelope["TaskMessage"]["$type"] == "DurableTask.Core.TaskMessage"
    event = envelope["TaskMessage"]["Event"]
    assert event["EventType"] == 0
    assert json.loads(event["Input"]) == payload

    async with make_runtime(registry, azurite, hub_name) as rt:
        status = await rt.client.wait_for_completion(instance_id, timeout=RUN_TIMEOUT)
        done = await rt.client.get_status(instance_id, show_input=True)
    assert status.output == len(payload)
    assert done.input_ == payload
    rows = await raw.partition(history_table(hub_name), "big^^start")
    assert_history_partition_shape(rows, "big^^start")
    (started,) = [r for r in event_rows(rows) if r["EventType"] == "ExecutionStarted"]
    assert started["Input"] == ""
    assert re.fullmatch(
        r"big\^\^start/history-0000000000000001-ExecutionStarted-[0-9A-F]{8}-Input\.json\.gz",
        started["InputBlobName"],
    ), started["InputBlobName"]
    # Two copies of the input, as DTFx keeps: the start message's blob and the history row's,
    # which the Instances row now points at (no copy of its own).
    (done_row,) = await raw.partition(instances_table(hub_name), "big^^start")
    assert unquote(done_row["Input"]).endswith("/" + started["InputBlobName"])
    assert await raw.blob_names(f"{h}-largemessages") == {blob_name, started["InputBlobName"]}


async def test_large_activity_result_is_offloaded_from_its_history_row(
    azurite: AzuriteInstance, raw: RawStorage, hub_name: str
) -> None:
    """A 100 KB activity result: the TaskCompleted row has `Result` "" and `ResultBlobName`
    `{PartitionKey}/history-{RowKey}-TaskCompleted-{8 HEX}-Result.json.gz`; readers get it back."""
    h = hub_name.lower()
    instance_id = "big result^1"
    key = "big result^^1"
    registry = FunctionRegistry()

    def returns_big(ctx: DurableOrchestrationContext) -> Any:
        return (yield ctx.call_activity("make", BIG))

    registry.add_orchestrator("big", returns_big)
    registry.add_activity("make", lambda n: "ü" + "r" * n)
    async with make_runtime(registry, azurite, hub_name) as rt:
        await rt.client.start_new("big", instance_id)
        status = await rt.client.wait_for_completion(instance_id, timeout=RUN_TIMEOUT)
        history = await rt.client.get_history(instance_id)
        shown = await rt.client.get_status(instance_id, show_history=True, show_history_output=True)
    expected = "ü" + "r" * BIG
    assert status.output == expected
    (completed_event,) = [e for e in history if isinstance(e, TaskCompleted)]
    assert json.loads(completed_event.result or "") == expected
    assert shown.output == expected

    rows = await raw.partition(history_table(hub_name), key)
    assert_history_partition_shape(rows, key)
    (completed,) = [r for r in event_rows(rows) if r["EventType"] == "TaskCompleted"]
    assert completed["Result"] == ""
    pattern = (
        re.escape(key)
        + "/history-"
        + completed["RowKey"]
        + r"-TaskCompleted-[0-9A-F]{8}-Result\.json\.gz"
    )
    assert re.fullmatch(pattern, completed["ResultBlobName"]), completed["ResultBlobName"]
    text = await raw.download_gzip_text(f"{h}-largemessages", completed["ResultBlobName"])
    assert json.loads(text) == expected
    for row in event_rows(rows):
        for column, value in row.items():
            if isinstance(value, str):
                assert len(value.encode("utf-16-le")) <= 60 * 1024, (row["RowKey"], column)

    (instance_row,) = await raw.partition(instances_table(hub_name), key)
    output = instance_row["Output"]
    assert output.startswith(("http://", "https://")) and f"/{h}-largemessages/" in output, (
        "a large Instances Output is the blob's absolute URL"
    )


# -- continue-as-new ---------------------------------------------------------------------------------


def generations(ctx: DurableOrchestrationContext) -> Any:
    """Generation 0 does three activities and waits for "next"; generation 1 finishes at once."""
    generation = ctx.get_input()
    if generation == 0:
        for step in range(3):
            yield ctx.call_activity("step", step)
        yield ctx.wait_for_external_event("next")
        ctx.continue_as_new(1)
        return None
    return f"generation {generation}"


async def test_continue_as_new_leaves_only_the_newest_execution(
    azurite: AzuriteInstance, raw: RawStorage, hub_name: str
) -> None:
    registry = FunctionRegistry()
    registry.add_orchestrator("generations", generations)
    registry.add_activity("step", lambda n: n)
    instance_id = "can^1"
    key = "can^^1"
    async with make_runtime(registry, azurite, hub_name) as rt:
        await rt.client.start_new("generations", instance_id, 0)

        async def old_generation_waiting() -> list[dict[str, Any]]:
            rows = await raw.partition(history_table(hub_name), key)
            done = sum(1 for r in rows if r.get("EventType") == "TaskCompleted")
            return rows if done == 3 else []

        old_rows = await wait_until(
            old_generation_waiting, timeout=RUN_TIMEOUT, what="generation 0 to wait for 'next'"
        )
        old_execution = assert_history_partition_shape(old_rows, key)
        await rt.client.raise_event(instance_id, "next")
        status = await rt.client.wait_for_completion(instance_id, timeout=RUN_TIMEOUT)
        events = await rt.client.get_history(instance_id)
    assert status.output == "generation 1"

    all_rows = await raw.partition(history_table(hub_name), key)
    rows = current_execution(all_rows)
    new_execution = assert_history_partition_shape(rows, key)
    assert new_execution != old_execution
    new_rows = event_rows(rows)
    assert len(new_rows) < len(event_rows(old_rows))
    assert event_rows(all_rows)[len(new_rows) :] == event_rows(old_rows)[len(new_rows) :], (
        "generation 0's surplus rows stay (DTFx never deletes them; readers stop before them)"
    )
    (started,) = [r for r in new_rows if r["EventType"] == "ExecutionStarted"]
    assert started["Input"] == "1"
    assert json.loads(started["OrchestrationInstance"]) == {
        "InstanceId": instance_id,
        "ExecutionId": new_execution,
    }
    assert not [r for r in new_rows if r["EventType"] in ("TaskScheduled", "TaskCompleted")]
    assert len(events) == len(new_rows)

    (row,) = await raw.partition(instances_table(hub_name), key)
    assert row["ExecutionId"] == new_execution
    assert row["RuntimeStatus"] == "Completed"
    assert row["Input"] == "1"
    assert json.loads(row["Output"]) == "generation 1"


def long_or_short(ctx: DurableOrchestrationContext) -> Any:
    """Three activities when the input is "long", none when it is "short"."""
    if ctx.get_input() == "long":
        for step in range(3):
            yield ctx.call_activity("step", step)
    return ctx.get_input()


async def test_recreating_a_finished_instance_replaces_its_history(
    azurite: AzuriteInstance, raw: RawStorage, hub_name: str
) -> None:
    """start_new on a finished id: a new generation whose rows overwrite the old ones from
    RowKey 0 (the longer first run's surplus rows stay, unread), and Generation 1 on the Instances
    row."""
    registry = FunctionRegistry()
    registry.add_orchestrator("long_or_short", long_or_short)
    registry.add_activity("step", lambda n: n)
    instance_id = "again^1"
    key = "again^^1"
    async with make_runtime(registry, azurite, hub_name) as rt:
        await rt.client.start_new("long_or_short", instance_id, "long")
        await rt.client.wait_for_completion(instance_id, timeout=RUN_TIMEOUT)
        first_rows = await raw.partition(history_table(hub_name), key)
        first_execution = assert_history_partition_shape(first_rows, key)

        await rt.client.start_new("long_or_short", instance_id, "short")

        async def second_run_done() -> bool:
            """The Instances row is written last in a checkpoint (after History)."""
            (row,) = await raw.partition(instances_table(hub_name), key)
            return row["ExecutionId"] != first_execution and row["RuntimeStatus"] == "Completed"

        await wait_until(second_run_done, timeout=RUN_TIMEOUT, what="the second run")
        status = await rt.client.get_status(instance_id)
    assert status.output == "short"
    all_rows = await raw.partition(history_table(hub_name), key)
    rows = current_execution(all_rows)
    second_execution = assert_history_partition_shape(rows, key)
    assert len(event_rows(rows)) < len(event_rows(first_rows))
    assert {r["ExecutionId"] for r in event_rows(all_rows)[len(event_rows(rows)) :]} == {
        first_execution
    }
    (started,) = [r for r in event_rows(rows) if r["EventType"] == "ExecutionStarted"]
    assert started["Generation"] == 1
    assert started["Input"] == '"short"'
    (row,) = await raw.partition(instances_table(hub_name), key)
    assert (row["ExecutionId"], row["Generation"]) == (second_execution, 1)
    assert row["RuntimeStatus"] == "Completed"


def fan_out(ctx: DurableOrchestrationContext) -> Any:
    """Schedules `input` activities in one episode."""
    results = yield ctx.task_all([ctx.call_activity("step", i) for i in range(ctx.get_input())])
    return sum(results)


async def test_a_checkpoint_of_more_than_99_events_keeps_the_layout(
    azurite: AzuriteInstance, raw: RawStorage, hub_name: str
) -> None:
    """One episode writes 123 rows: more than one 100-operation table transaction (99 rows +
    the sentinel), yet the partition ends up with contiguous RowKeys and one sentinel."""
    registry = FunctionRegistry()
    registry.add_orchestrator("fan_out", fan_out)
    registry.add_activity("step", lambda n: n)
    async with make_runtime(registry, azurite, hub_name) as rt:
        await rt.client.start_new("fan_out", "wide", 120)
        status = await rt.client.wait_for_completion("wide", timeout=RUN_TIMEOUT)
        history = await rt.client.get_history("wide")
    assert status.output == sum(range(120))
    rows = await raw.partition(history_table(hub_name), "wide")
    assert_history_partition_shape(rows, "wide")
    events = event_rows(rows)
    assert len(events) == len(history)
    assert [r["EventType"] for r in events[:2]] == ["OrchestratorStarted", "ExecutionStarted"]
    scheduled = [r for r in events if r["EventType"] == "TaskScheduled"]
    assert [r["EventId"] for r in scheduled] == list(range(120))
    assert events.index(scheduled[-1]) == 121, "all 120 were scheduled in the first episode"
    completed = [r for r in events if r["EventType"] == "TaskCompleted"]
    assert sorted(r["TaskScheduledId"] for r in completed) == list(range(120))


@pytest.mark.parametrize("instance_id", [".", "..", "a%20b", "x%2F..%2Fy", "a;b&c=d+e", "~a:b"])
async def test_odd_instance_ids_keep_their_large_payloads_in_the_container(
    instance_id: str, azurite: AzuriteInstance, raw: RawStorage, hub_name: str
) -> None:
    """Blob names start with the instance id (messages) or its PartitionKey (properties), so ids
    that look like URL escapes or relative paths must still round-trip. In particular `.` and
    `..` are legal ids, but as the first segment of a blob name they are resolved as a relative
    path (`{h}-largemessages/../message-...` leaves the container)."""
    h = hub_name.lower()
    payload = "d" * BIG
    registry = FunctionRegistry()
    registry.add_orchestrator("echo", lambda ctx: ctx.get_input())
    containers_before = await raw.container_names()
    async with make_runtime(registry, azurite, hub_name) as rt:
        await rt.client.start_new("echo", instance_id, payload)
        status = await rt.client.wait_for_completion(instance_id, timeout=RUN_TIMEOUT)
        shown = await rt.client.get_status(instance_id, show_input=True)
    assert status.output == payload, "large Output read back through its blob URL"
    assert shown.input_ == payload, "large Input read back through its blob URL"
    blobs = await raw.blob_names(f"{h}-largemessages")
    assert any(name.endswith("-ExecutionStarted.json.gz") for name in blobs), blobs
    new_containers = (await raw.container_names()) - containers_before
    assert new_containers <= {f"{h}-leases", f"{h}-largemessages", f"{h}-applease"}, new_containers
