"""Every column and envelope field durable_ext writes, read raw, against the members the DTFx
source serialises: `tests/storage/dtfx_fields.json`, generated from Azure/durabletask by
`python -m tools.dtfx_fields` (DataMember attributes, ITableEntity properties, TableEntity
indexer writes). The list comes from DTFx, not from durable_ext, so these checks and the
fixtures of test_dtfx_fixtures.py do not merely agree with each other. The ownership records
(Partitions table, app lease, lease blobs) are checked in test_dtfx_partition_fields.py.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from durable_ext import DurableOrchestrationContext, OrchestrationRuntimeStatus
from durable_ext.orchestration.history import (
    EventType,
    ExecutionStarted,
    OrchestrationInstance,
    event_from_fields,
)
from durable_ext.storage.history_store import LARGE_COLUMNS
from durable_ext.storage.messages import MessageData, serialize_message
from durable_ext.worker import FunctionRegistry
from tests.azurite import AzuriteInstance
from tests.storage.raw_state import RawStorage, make_runtime, wait_until

FIELDS = json.loads((Path(__file__).with_name("dtfx_fields.json")).read_text(encoding="utf-8"))
CONTRACTS: dict[str, Any] = FIELDS["data_contracts"]
TRACKING_STORE = "src/DurableTask.AzureStorage/Tracking/AzureTableTrackingStore.cs"
TABLE_KEYS = {"PartitionKey", "RowKey", "Timestamp", "etag"}
"""Every table row has them (`etag` is RawStorage's copy of the row's metadata)."""
BIG = 70_000
TIMEOUT = 60.0
PRIMITIVES = {"string", "int", "long", "bool", "double", "DateTime", "DateTimeOffset", "Guid"}
# Members DTFx always emits that durable_ext does not model; a reader takes their defaults.
NOT_MODELLED = {
    "DurableTask.Core.TaskMessage": {"OrchestrationExecutionContext"},
    "DurableTask.Core.History.ExecutionStartedEvent": {"GenerateNewTrace"},
    "DurableTask.Core.History.SubOrchestrationInstanceCreatedEvent": {"ClientSpanId", "Tags"},
}


def contract(full_name: str) -> list[dict[str, Any]]:
    """The serialised members of a DTFx class and of its bases."""
    members: list[dict[str, Any]] = []
    namespace = full_name.rsplit(".", 1)[0]
    name: str | None = full_name
    while name is not None:
        entry = CONTRACTS[name]
        members += entry["members"]
        base = entry["base"]
        name = f"{namespace}.{base}" if base and f"{namespace}.{base}" in CONTRACTS else None
    return members


def event_class(event_type: str) -> str:
    suffix = "" if event_type == "GenericEvent" else "Event"
    return f"DurableTask.Core.History.{event_type}{suffix}"


def is_complex(member: dict[str, Any]) -> bool:
    """A member TableEntityConverter stores as JSON text (not a primitive, not an enum)."""
    type_name = member["type"]
    return type_name.rstrip("?") not in PRIMITIVES and type_name not in (
        "EventType",
        "OrchestrationStatus",
    )


def child(ctx: DurableOrchestrationContext) -> Any:
    value = ctx.get_input()
    if value == "fail":
        raise ValueError("child failed")
    return value


def parent(ctx: DurableOrchestrationContext) -> Any:
    if ctx.get_input() == 0:
        ctx.continue_as_new(1)
        return None
    results: list[Any] = [(yield ctx.call_activity("echo", "x" * BIG))]
    try:
        yield ctx.call_activity("fail", 1)
    except Exception as error:  # noqa: BLE001 - the TaskFailed row is what the test wants
        results.append(str(error)[:10])
    yield ctx.create_timer(ctx.current_utc_datetime + timedelta(milliseconds=100))
    results.append((yield ctx.call_sub_orchestrator("child", "ok")))
    try:
        yield ctx.call_sub_orchestrator("child", "fail")
    except Exception:  # noqa: BLE001 - the SubOrchestrationInstanceFailed row
        results.append("child failed")
    results.append((yield ctx.wait_for_external_event("go")))
    ctx.set_custom_status("almost")
    yield ctx.wait_for_external_event("never")
    return results


def registry() -> FunctionRegistry:
    functions = FunctionRegistry()
    functions.add_orchestrator("parent", parent)
    functions.add_orchestrator("child", child)
    functions.add_activity("echo", lambda value: value)

    def fail(value: int) -> None:
        raise ValueError(f"failing {value}")

    functions.add_activity("fail", fail)
    return functions


async def run_everything(azurite: AzuriteInstance, raw: RawStorage, hub: str) -> dict[str, Any]:
    """A run that writes every kind of row durable_ext writes; the client's messages captured
    raw before a worker takes them. Returns the raw rows and message bodies."""
    captured: list[dict[str, Any]] = []
    h = hub.lower()

    async def control_bodies() -> list[dict[str, Any]]:
        bodies = []
        for index in range(4):
            bodies += await raw.peek_json(f"{h}-control-{index:02d}")
        return bodies

    async with make_runtime(registry(), azurite, hub, run_worker=False) as rt:
        await rt.client.start_new("parent", "everything", 0)
        await rt.client.start_new("parent", "big-start", "y" * BIG)
        captured += await control_bodies()
    async with make_runtime(registry(), azurite, hub) as rt:

        async def waiting_for_go() -> bool:
            history = await rt.client.get_history("everything")
            return any(e.event_type is EventType.SubOrchestrationInstanceFailed for e in history)

        await wait_until(waiting_for_go, timeout=TIMEOUT, what="the run to wait for 'go'")
        await rt.client.suspend("everything", "a pause")
        await wait_until(
            lambda: _status_is(rt, "everything", OrchestrationRuntimeStatus.Suspended),
            timeout=TIMEOUT,
            what="suspended",
        )
        (suspended,) = await raw.partition(f"{hub}Instances", "everything")
        await rt.client.resume("everything", "go on")
        await rt.client.raise_event("everything", "go", {"n": 1})
        await wait_until(lambda: _went_on(rt), timeout=TIMEOUT, what="the event 'go'")
        await rt.client.terminate("everything", "enough")
        await rt.client.wait_for_completion("everything", timeout=TIMEOUT)
        await rt.client.terminate("big-start", "enough")
        await rt.client.wait_for_completion("big-start", timeout=TIMEOUT)
    return {
        "history": await raw.all_rows(f"{hub}History"),
        "instances": await raw.all_rows(f"{hub}Instances"),
        "client_messages": captured,
        "suspended": suspended,
    }


async def _status_is(rt: Any, instance_id: str, wanted: OrchestrationRuntimeStatus) -> bool:
    return (await rt.client.get_status(instance_id)).runtime_status is wanted


async def _went_on(rt: Any) -> bool:
    history = await rt.client.get_history("everything")
    return any(e.event_type is EventType.EventRaised for e in history)


def assert_json_object(value: Any, members: list[dict[str, Any]], where: str) -> None:
    names = {m["name"] for m in members}
    assert isinstance(value, dict), where
    assert set(value) - {"$type"} <= names, f"{where}: {set(value) - names - {'$type'}}"


async def test_every_column_and_field_durable_ext_writes_is_one_dtfx_writes(
    azurite: AzuriteInstance, raw: RawStorage, hub_name: str
) -> None:
    written = await run_everything(azurite, raw, hub_name)

    # -- History rows: the event class's DataMembers (Timestamp as _Timestamp), ExecutionId,
    # `<Prop>BlobName` for offloaded columns; the sentinel's columns from the tracking store.
    writer_columns = set(FIELDS["table_writers"][TRACKING_STORE])
    seen_types: set[str] = set()
    blob_columns = 0
    for row in written["history"]:
        if row["RowKey"] == "sentinel":
            assert set(row) - TABLE_KEYS <= writer_columns, row
            assert {"ExecutionId", "IsCheckpointComplete"} <= set(row)
            continue
        members = contract(event_class(row["EventType"]))
        seen_types.add(row["EventType"])
        names = {"_Timestamp" if m["name"] == "Timestamp" else m["name"] for m in members}
        allowed = names | {"ExecutionId"} | {f"{c}BlobName" for c in LARGE_COLUMNS if c in names}
        extra = set(row) - TABLE_KEYS - allowed
        assert not extra, f"{row['EventType']} row: columns DTFx does not write: {extra}"
        blob_columns += sum(column.endswith("BlobName") for column in row)
        for member in members:
            name = "_Timestamp" if member["name"] == "Timestamp" else member["name"]
            if name not in row:
                continue
            value = row[name]
            if is_complex(member):
                assert isinstance(value, str), f"{row['EventType']}.{name} is JSON text"
                json.loads(value)
            elif member["type"].rstrip("?") in ("DateTime", "DateTimeOffset"):
                assert isinstance(value, datetime), f"{row['EventType']}.{name}"
            elif member["type"].rstrip("?") in ("int", "long"):
                assert type(value) is int, f"{row['EventType']}.{name}"
            elif member["type"] == "bool":
                assert type(value) is bool, f"{row['EventType']}.{name}"
            else:
                assert isinstance(value, str), f"{row['EventType']}.{name}"
    assert blob_columns, "the run offloaded at least one history column"
    assert {
        "ExecutionStarted",
        "TaskScheduled",
        "TaskCompleted",
        "TaskFailed",
        "TimerCreated",
        "TimerFired",
        "SubOrchestrationInstanceCreated",
        "SubOrchestrationInstanceCompleted",
        "SubOrchestrationInstanceFailed",
        "EventRaised",
        "ExecutionSuspended",
        "ExecutionResumed",
        "ExecutionTerminated",
        "ExecutionCompleted",
    } <= seen_types

    # -- Instances rows: OrchestrationInstanceStatus's properties and the tracking store's
    # indexer writes (TaskHubName).
    status_entity = FIELDS["table_entities"]["DurableTask.AzureStorage.OrchestrationInstanceStatus"]
    row_columns = {p["name"] for p in status_entity["properties"]} | writer_columns
    types = {p["name"]: p["type"] for p in status_entity["properties"]}
    for row in written["instances"]:
        extra = set(row) - TABLE_KEYS - row_columns
        assert not extra, f"Instances row: columns DTFx does not write: {extra}"
        for name, value in row.items():
            if types.get(name, "").rstrip("?") == "DateTime":
                assert isinstance(value, datetime), name
            elif types.get(name) == "int":
                assert type(value) is int, name
            elif name in types and name not in TABLE_KEYS:
                assert isinstance(value, str), name

    # Output as AzureTableTrackingStore writes it: the raw reason of a suspension and of a
    # termination (not JSON); CustomStatus "null" when none was set.
    assert written["suspended"]["Output"] == "a pause"
    rows = {row["PartitionKey"]: row for row in written["instances"]}
    assert rows["everything"]["Output"] == rows["big-start"]["Output"] == "enough"
    assert rows["big-start"]["CustomStatus"] == "null"

    # -- Queue messages: the client's as sent, and one message for every event the run wrote
    # (serialize_message is the only writer of envelopes).
    envelopes = list(written["client_messages"])
    assert any(e["CompressedBlobName"] for e in envelopes), "a large start went to a blob"
    for row in written["history"]:
        if row["RowKey"] == "sentinel":
            continue
        event = event_from_fields({k: v for k, v in row.items() if not k.endswith("BlobName")})
        target = OrchestrationInstance("everything", "e")
        envelopes.append(json.loads(serialize_message(MessageData(event, target, 1, target))))
    message_members = CONTRACTS["DurableTask.AzureStorage.MessageData"]["members"]
    always = {m["name"] for m in message_members if m["emit_default"]}
    not_written: dict[str, set[str]] = {}
    for envelope in envelopes:
        assert envelope["$type"] == "DurableTask.AzureStorage.MessageData"
        assert_json_object(envelope, message_members, "MessageData")
        assert always <= set(envelope), f"MessageData misses {always - set(envelope)}"
        task = envelope["TaskMessage"]
        if task is None:  # a large message's wrapper: every other member at its default
            assert envelope["ActivityId"] == "00000000-0000-0000-0000-000000000000"
            assert envelope["SequenceNumber"] == 0 and "Sender" not in envelope
            continue
        assert_json_object(
            envelope["Sender"], contract("DurableTask.Core.OrchestrationInstance"), "Sender"
        )
        task_members = contract("DurableTask.Core.TaskMessage")
        assert_json_object(task, task_members, "TaskMessage")
        not_written.setdefault("DurableTask.Core.TaskMessage", set()).update(
            {m["name"] for m in task_members} - set(task)
        )
        event = task["Event"]
        name = event["$type"]
        members = contract(name)
        assert_json_object(event, members, name)
        not_written.setdefault(name, set()).update({m["name"] for m in members} - set(event))
        for member in members:
            value = event.get(member["name"])
            nested = f"DurableTask.Core.{member['type']}"
            if isinstance(value, dict) and nested in CONTRACTS:
                assert value["$type"] == nested, "nested objects carry their full type name"
                assert_json_object(value, contract(nested), nested)
            elif member["name"] == "Tags" and value is not None:
                assert re.fullmatch(
                    r"System\.Collections\.Generic\.Dictionary`2\[\[.*\]\]", value["$type"]
                )
            elif member["name"] == "FailureDetails" and value is not None:
                failure = FIELDS["json_objects"]["DurableTask.Core.FailureDetails"]["properties"]
                assert_json_object(value, failure, "FailureDetails")
    # The members DTFx always writes that durable_ext leaves out are exactly the known ones.
    gaps = {k: v for k, v in not_written.items() if v}
    assert gaps == NOT_MODELLED


async def test_every_client_message_carries_dtfxs_empty_sender(
    azurite: AzuriteInstance, raw: RawStorage, hub_name: str
) -> None:
    """Start, raise event, suspend, resume, terminate and restart: `Sender` is
    `{"InstanceId": "", "ExecutionId": ""}` (AzureStorageOrchestrationService
    `EmptySourceInstance`), which a .NET worker's out-of-order check reads on every EventRaised."""
    async with make_runtime(registry(), azurite, hub_name, run_worker=False) as rt:
        await rt.client.start_new("parent", "sender", 1)
        await rt.client.raise_event("sender", "go", 1)
        await rt.client.suspend("sender", "s")
        await rt.client.resume("sender", "r")
        await rt.client.terminate("sender", "t")
        await rt.client.restart("sender")
        bodies = []
        for index in range(4):
            bodies += await raw.peek_json(f"{hub_name.lower()}-control-{index:02d}")
    kinds = sorted(b["TaskMessage"]["Event"]["$type"].rsplit(".", 1)[1] for b in bodies)
    assert kinds == [
        "EventRaisedEvent",
        "ExecutionResumedEvent",
        "ExecutionStartedEvent",
        "ExecutionStartedEvent",
        "ExecutionSuspendedEvent",
        "ExecutionTerminatedEvent",
    ]
    for body in bodies:
        assert body["Sender"] == {"InstanceId": "", "ExecutionId": ""}, body
        assert "Episode" not in body


def test_tags_carry_the_dictionary_type_by_its_full_name_only() -> None:
    """DTFx's TypeNameSerializationBinder writes `Type.FullName` and no assembly: for
    `Dictionary<string, string>` the generic arguments are inside the brackets, nothing after."""
    started = ExecutionStarted(
        orchestration_instance=OrchestrationInstance("tagged", "e"), name="n", tags={"k": "v"}
    )
    body = json.loads(serialize_message(MessageData(started, OrchestrationInstance("tagged"))))
    tags = body["TaskMessage"]["Event"]["Tags"]
    assert tags == {"$type": tags["$type"], "k": "v"}
    assert re.fullmatch(
        r"System\.Collections\.Generic\.Dictionary`2\[\[[^\]]+\],\[[^\]]+\]\]", tags["$type"]
    )
