"""A hub written the way the .NET DTFx Azure Storage provider writes it, read by durable_ext.

Every row, message and blob below is written with the plain Azure SDK in the shape the DTFx
source gives it (the source file is named at each fixture; Azure/durabletask, the commit in
dtfx_fields.json): history rows as `TableEntityConverter` flattens the events (complex members as
JSON text, a null one as `null`, enums by name, `IsPlayed` true on processed events), the
Instances row as `AzureTableTrackingStore` writes it (`CustomStatus` "null", `Tags` "null", raw
termination reason), queue messages as Newtonsoft serialises `MessageData` (`$type` everywhere,
trimmed fractional seconds, `Sender` with empty strings for a client). durable_ext then reads
status and history, restarts, purges and continues an in-flight instance.
"""

from __future__ import annotations

import gzip
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from durable_ext import DurableOrchestrationContext, OrchestrationRuntimeStatus
from durable_ext.storage.names import fnv1a32
from durable_ext.worker import FunctionRegistry
from tests.azurite import AzuriteInstance
from tests.storage.raw_state import RawStorage, make_runtime, wait_until

T0 = datetime(2025, 6, 1, 10, 0, 0, tzinfo=UTC)
TIMEOUT = 60.0
CORE = "DurableTask.Core"


def fixture_registry() -> FunctionRegistry:
    def greet(ctx: DurableOrchestrationContext) -> Any:
        name = ctx.get_input()["name"]
        greeting = yield ctx.call_activity("say", name)
        extra = yield ctx.wait_for_external_event("extra")
        return f"{greeting}{extra}"

    functions = FunctionRegistry()
    functions.add_orchestrator("greet", greet)
    functions.add_activity("say", lambda name: f"hello {name}")
    return functions


def control_queue(hub: str, instance_id: str) -> str:
    return f"{hub.lower()}-control-{fnv1a32(instance_id.encode()) % 4:02d}"


# -- history rows (src/DurableTask.AzureStorage/Tracking/TableEntityConverter.cs and
# AzureTableTrackingStore.UpdateStateAsync: one row per event, RowKey = 16-digit hex index,
# ExecutionId added, `Timestamp` renamed `_Timestamp`) -------------------------------------------


def history_rows(instance_id: str, execution_id: str, events: list[dict[str, Any]]) -> list[dict]:
    rows = []
    for index, event in enumerate(events):
        row = {"PartitionKey": instance_id, "RowKey": f"{index:016X}", "ExecutionId": execution_id}
        row.update(event)
        rows.append(row)
    rows.append(
        {
            "PartitionKey": instance_id,
            "RowKey": "sentinel",
            "ExecutionId": execution_id,
            "IsCheckpointComplete": True,
            "CheckpointCompletedTimestamp": T0 + timedelta(seconds=5),
        }
    )
    return rows


def base(event_type: str, seconds: float, event_id: int = -1, played: bool = True) -> dict:
    """HistoryEvent's DataMembers (src/DurableTask.Core/History/HistoryEvent.cs)."""
    return {
        "EventType": event_type,
        "EventId": event_id,
        "IsPlayed": played,
        "_Timestamp": T0 + timedelta(seconds=seconds),
    }


def started_row(instance_id: str, execution_id: str, name: str, input_json: str) -> dict:
    """ExecutionStartedEvent (src/DurableTask.Core/History/ExecutionStartedEvent.cs): null
    ParentInstance, Tags and ParentTraceContext are the JSON text `null`."""
    return {
        **base("ExecutionStarted", 0.5),
        "OrchestrationInstance": json.dumps(
            {"InstanceId": instance_id, "ExecutionId": execution_id}
        ),
        "ParentInstance": "null",
        "Name": name,
        "Version": "",
        "Input": input_json,
        "Tags": "null",
        "ParentTraceContext": "null",
        "Generation": 0,
        "GenerateNewTrace": False,
    }


def greet_history(instance_id: str, execution_id: str, *, finished: bool) -> list[dict]:
    """`greet` after its first episode (waiting for `say`), or finished."""
    events = [
        base("OrchestratorStarted", 0.5, played=False),
        started_row(instance_id, execution_id, "greet", '{"name":"Ann"}'),
        # TaskScheduledEvent.cs
        {
            **base("TaskScheduled", 0.5, event_id=0, played=False),
            "Name": "say",
            "Version": "",
            "Input": '"Ann"',
            "Tags": "null",
            "ParentTraceContext": "null",
        },
        base("OrchestratorCompleted", 0.5, played=False),
    ]
    if finished:
        events += [
            base("OrchestratorStarted", 1),
            # TaskCompletedEvent.cs
            {**base("TaskCompleted", 1), "TaskScheduledId": 0, "Result": '"hello Ann"'},
            # EventRaisedEvent.cs
            {**base("EventRaised", 1), "Name": "extra", "Input": '"!"'},
            # ExecutionCompletedEvent.cs: OrchestrationStatus by name, FailureDetails "null"
            {
                **base("ExecutionCompleted", 1, event_id=1, played=False),
                "OrchestrationStatus": "Completed",
                "Result": '"hello Ann!"',
                "FailureDetails": "null",
            },
            base("OrchestratorCompleted", 1, played=False),
        ]
    return history_rows(instance_id, execution_id, events)


def instance_row(instance_id: str, execution_id: str, **columns: Any) -> dict:
    """OrchestrationInstanceStatus (src/DurableTask.AzureStorage/OrchestrationInstanceStatus.cs)
    as AzureTableTrackingStore writes it: CustomStatus "null" when none, Tags "null"."""
    return {
        "PartitionKey": instance_id,
        "RowKey": "",
        "ExecutionId": execution_id,
        "Name": "greet",
        "Version": "",
        "Input": '{"name":"Ann"}',
        "CustomStatus": "null",
        "CreatedTime": T0 + timedelta(seconds=0.5),
        "LastUpdatedTime": T0 + timedelta(seconds=1),
        "RuntimeStatus": "Running",
        "Generation": 0,
        "Tags": "null",
        "TaskHubName": columns.pop("hub"),
        **columns,
    }


# -- queue messages (src/DurableTask.AzureStorage/MessageData.cs, MessageManager.cs: Newtonsoft
# with TypeNameHandling.Objects, `$type` = full name; DateTimes with trailing zeros trimmed) ------


def message(
    instance_id: str,
    execution_id: str | None,
    event: dict[str, Any],
    sender: dict[str, str],
    episode: int | None = None,
) -> str:
    body: dict[str, Any] = {
        "$type": "DurableTask.AzureStorage.MessageData",
        "ActivityId": str(uuid.uuid4()),
        "TaskMessage": {
            "$type": f"{CORE}.TaskMessage",
            "Event": event,
            "SequenceNumber": 0,
            "OrchestrationInstance": {
                "$type": f"{CORE}.OrchestrationInstance",
                "InstanceId": instance_id,
                "ExecutionId": execution_id,
            },
            "OrchestrationExecutionContext": None,
        },
        "CompressedBlobName": None,
        "SequenceNumber": 7,
    }
    if episode is not None:
        body["Episode"] = episode
    body["Sender"] = sender
    body["SerializableTraceContext"] = None
    return json.dumps(body)


CLIENT = {"InstanceId": "", "ExecutionId": ""}
"""AzureStorageOrchestrationService.EmptySourceInstance."""


def event_json(kind: str, type_number: int, timestamp: str, **members: Any) -> dict[str, Any]:
    return {
        "$type": f"{CORE}.History.{kind}Event",
        **members,
        "EventId": -1,
        "IsPlayed": False,
        "Timestamp": timestamp,
        "EventType": type_number,
    }


async def write_rows(raw: RawStorage, table: str, rows: list[dict]) -> None:
    client = raw.tables.get_table_client(table)
    for row in rows:
        await client.upsert_entity(row)


async def put_message(raw: RawStorage, queue: str, text: str) -> None:
    await raw.queues.get_queue_client(queue).send_message(text, time_to_live=-1)


async def create_hub(azurite: AzuriteInstance, hub: str) -> None:
    async with make_runtime(fixture_registry(), azurite, hub, run_worker=False) as rt:
        await rt.hub.create_if_not_exists()


# -- tests --------------------------------------------------------------------------------------


async def test_a_finished_dtfx_instance_reads_and_purges(
    azurite: AzuriteInstance, raw: RawStorage, hub_name: str
) -> None:
    await create_hub(azurite, hub_name)
    execution_id = uuid.uuid4().hex
    await write_rows(raw, f"{hub_name}History", greet_history("done", execution_id, finished=True))
    row = instance_row(
        "done",
        execution_id,
        hub=hub_name,
        RuntimeStatus="Completed",
        Output='"hello Ann!"',
        CompletedTime=T0 + timedelta(seconds=1),
    )
    await write_rows(raw, f"{hub_name}Instances", [row])
    async with make_runtime(fixture_registry(), azurite, hub_name, run_worker=False) as rt:
        status = await rt.client.get_status("done", show_history=True, show_input=True)
        assert status.runtime_status is OrchestrationRuntimeStatus.Completed
        assert (status.input_, status.output) == ({"name": "Ann"}, "hello Ann!")
        assert status.custom_status is None, 'CustomStatus "null" is no custom status'
        history = status.history or []
        assert [e["EventType"] for e in history] == [
            "ExecutionStarted",
            "TaskCompleted",
            "EventRaised",
            "ExecutionCompleted",
        ]
        events = await rt.client.get_history("done")
        assert events[1].tags is None and events[1].parent_instance is None
        assert (await rt.client.purge_instance_history("done")).instances_deleted == 1
    assert not await raw.partition(f"{hub_name}History", "done")
    assert not await raw.partition(f"{hub_name}Instances", "done")


async def test_a_terminated_and_a_failed_dtfx_row_read_as_dtfx_wrote_them(
    azurite: AzuriteInstance, raw: RawStorage, hub_name: str
) -> None:
    """Output is the raw reason of a termination and `{ErrorType}: {ErrorMessage}` of a failure
    (AzureTableTrackingStore.UpdateStateAsync), not JSON."""
    await create_hub(azurite, hub_name)
    rows = [
        instance_row("stopped", "e1", hub=hub_name, RuntimeStatus="Terminated", Output="by ops"),
        instance_row(
            "broken", "e2", hub=hub_name, RuntimeStatus="Failed", Output="ValueError: bad input"
        ),
    ]
    await write_rows(raw, f"{hub_name}Instances", rows)
    async with make_runtime(fixture_registry(), azurite, hub_name, run_worker=False) as rt:
        assert (await rt.client.get_status("stopped")).output == "by ops"
        # The status shows the message, as Durable Functions does.
        assert (await rt.client.get_status("broken")).output == "bad input"


async def test_a_large_start_dtfx_offloaded_reads_restarts_and_runs(
    azurite: AzuriteInstance, raw: RawStorage, hub_name: str
) -> None:
    """A DTFx client's start too large for a queue message: the message in a blob
    (MessageManager.SerializeMessageDataAsync: `{id}/message-{ActivityId:N}-ExecutionStarted
    .json.gz`, a wrapper message with only CompressedBlobName), and the Pending row's Input is
    the blob's URL (AzureStorageOrchestrationService / AzureTableTrackingStore.SetNewExecution
    `inputPayloadOverride`)."""
    await create_hub(azurite, hub_name)
    instance_id, execution_id = "big-dtfx", uuid.uuid4().hex
    name = "A" * 50_000
    input_json = json.dumps({"name": name})
    start = event_json(
        "ExecutionStarted",
        0,
        "2025-06-01T10:00:00.5Z",
        OrchestrationInstance={
            "$type": f"{CORE}.OrchestrationInstance",
            "InstanceId": instance_id,
            "ExecutionId": execution_id,
        },
        ParentInstance=None,
        Name="greet",
        Version="",
        Input=input_json,
        Tags=None,
        Correlation=None,
        ParentTraceContext=None,
        ScheduledStartTime=None,
        Generation=0,
        GenerateNewTrace=False,
    )
    envelope = message(instance_id, execution_id, start, CLIENT)
    activity = json.loads(envelope)["ActivityId"].replace("-", "")
    blob_name = f"{instance_id}/message-{activity}-ExecutionStarted.json.gz"
    container = raw.blobs.get_container_client(f"{hub_name.lower()}-largemessages")
    await container.create_container()
    await container.upload_blob(blob_name, gzip.compress(envelope.encode()))
    wrapper = {
        "$type": "DurableTask.AzureStorage.MessageData",
        "ActivityId": "00000000-0000-0000-0000-000000000000",
        "TaskMessage": None,
        "CompressedBlobName": blob_name,
        "SequenceNumber": 0,
        "SerializableTraceContext": None,
    }
    await put_message(raw, control_queue(hub_name, instance_id), json.dumps(wrapper))
    url = f"{container.url}/{blob_name}"
    pending = instance_row(
        instance_id, execution_id, hub=hub_name, RuntimeStatus="Pending", Input=url
    )
    del pending["CustomStatus"]
    await write_rows(raw, f"{hub_name}Instances", [pending])

    async with make_runtime(fixture_registry(), azurite, hub_name) as rt:
        status = await rt.client.get_status(instance_id, show_input=True)
        assert status.input_ == {"name": name}, "the start message's input, not the envelope"
        again = await rt.client.restart(instance_id)
        restarted = await rt.client.get_status(again, show_input=True)
        assert restarted.input_ == {"name": name}

        async def waiting(instance: str) -> bool:
            history = await rt.client.get_history(instance)
            return any(e.event_type.name == "TaskCompleted" for e in history)

        for instance in (instance_id, again):
            await wait_until(lambda i=instance: waiting(i), timeout=TIMEOUT, what=instance)
            await rt.client.raise_event(instance, "extra", "?")
            done = await rt.client.wait_for_completion(instance, timeout=TIMEOUT)
            assert done.output == f"hello {name}?"


async def test_an_in_flight_dtfx_instance_continues(
    azurite: AzuriteInstance, raw: RawStorage, hub_name: str
) -> None:
    """DTFx left `greet` waiting for its activity; the activity's TaskCompleted (sent by a .NET
    worker: Sender = the orchestration, Episode 1) and a client's EventRaised (Sender with empty
    strings, no ExecutionId target) wait in the control queue, with times trimmed as Newtonsoft
    writes them. durable_ext finishes the instance."""
    await create_hub(azurite, hub_name)
    instance_id, execution_id = "inflight", uuid.uuid4().hex
    await write_rows(
        raw, f"{hub_name}History", greet_history(instance_id, execution_id, finished=False)
    )
    await write_rows(
        raw, f"{hub_name}Instances", [instance_row(instance_id, execution_id, hub=hub_name)]
    )
    queue = control_queue(hub_name, instance_id)
    me = {"InstanceId": instance_id, "ExecutionId": execution_id}
    completed = event_json(
        "TaskCompleted", 5, "2025-06-01T10:00:01Z", TaskScheduledId=0, Result='"hello Ann"'
    )
    await put_message(raw, queue, message(instance_id, execution_id, completed, me, episode=1))
    raised = event_json("EventRaised", 15, "2025-06-01T10:00:01.25Z", Name="extra", Input='"!"')
    await put_message(raw, queue, message(instance_id, None, raised, CLIENT))
    async with make_runtime(fixture_registry(), azurite, hub_name) as rt:
        done = await rt.client.wait_for_completion(instance_id, timeout=TIMEOUT)
    assert done.output == "hello Ann!"
    rows = await raw.partition(f"{hub_name}History", instance_id)
    assert rows[0]["_Timestamp"] == T0 + timedelta(seconds=0.5), "DTFx's rows kept as they were"
    assert sum(r.get("EventType") == "ExecutionCompleted" for r in rows) == 1
