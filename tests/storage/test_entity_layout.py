"""Entities as Durable Functions lays them out on Azure Storage (durable-entities.md §3), read RAW
from Azurite: the `op` message a signal sends (the RequestMessage in an EventRaised, on the control
queue FNV-1a picks for `@name@key`), and after the batch the three-row history whose
ExecutionStarted carries the SchedulerState, and the Running Instances row with the state as Input
and the EntityStatus as CustomStatus."""

from __future__ import annotations

import json
from typing import Any

import durable_ext as df
from tests.azurite import AzuriteInstance
from tests.storage.raw_state import RawStorage, fnv1a32_reference, make_runtime, wait_until
from tests.storage.test_layout import DOTNET_TIME, GUID, HEX32, PARTITIONS
from tests.worker.entity_apps import app

ENTITY = "@counter@k1"


async def test_entity_messages_and_rows_in_dfs_layout(
    azurite: AzuriteInstance, hub_name: str
) -> None:
    partition = fnv1a32_reference(ENTITY.encode()) % PARTITIONS
    queue = f"{hub_name.lower()}-control-{partition:02d}"
    async with RawStorage(azurite.connection_string) as raw:
        async with make_runtime(app.durable_registry, azurite, hub_name, run_worker=False) as rt:
            await rt.client.signal_entity(df.EntityId("Counter", "k1"), "add", 5)
        (body,) = await raw.peek_json(queue)
        task = body["TaskMessage"]
        assert task["OrchestrationInstance"]["InstanceId"] == ENTITY
        event = task["Event"]
        assert event["$type"] == "DurableTask.Core.History.EventRaisedEvent"
        assert event["Name"] == "op"
        request = json.loads(event["Input"])
        assert set(request) == {"op", "signal", "input", "id", "Timestamp", "Predecessor"}
        assert (request["op"], request["signal"], request["input"]) == ("add", True, "5")
        assert GUID.match(request["id"]) and DOTNET_TIME.match(request["Timestamp"])

        async with make_runtime(app.durable_registry, azurite, hub_name) as rt:

            async def stored() -> Any:
                rows = await raw.partition(f"{hub_name}Instances", ENTITY)
                return (
                    rows if rows and "entityExists" in (rows[0].get("CustomStatus") or "") else None
                )

            (row,) = await wait_until(stored, timeout=30, what="the entity's Instances row")

            async def consumed() -> bool:
                return not await raw.message_count(queue)

            await wait_until(consumed, timeout=30, what="the signal deleted from its queue")
            caller = await rt.client.start_new("call_and_signal", "caller", "k2")
            assert (await rt.client.wait_for_completion(caller, 30)).output["first"] == 15
        assert (row["Name"], row["RuntimeStatus"], row["Version"]) == (ENTITY, "Running", "")
        assert json.loads(row["CustomStatus"]) == {"entityExists": True}
        scheduler = json.loads(row["Input"])
        assert (scheduler["exists"], scheduler["state"]) == (True, "5")
        history = await raw.partition(f"{hub_name}History", ENTITY)
        events = sorted(
            (r for r in history if r["RowKey"] != "sentinel"), key=lambda r: r["RowKey"]
        )
        assert [r["EventType"] for r in events] == [
            "OrchestratorStarted",
            "ExecutionStarted",
            "OrchestratorCompleted",
        ]
        started = events[1]
        assert started["Name"] == ENTITY and HEX32.match(started["ExecutionId"])
        assert json.loads(started["Input"]) == scheduler
        assert row["ExecutionId"] == started["ExecutionId"]

        # The orchestration's side: EventSent rows carrying labelled RequestMessages, EventRaised
        # rows named by the request id carrying the ResponseMessages.
        rows = await raw.partition(f"{hub_name}History", "caller")
        sent = [r for r in rows if r.get("EventType") == "EventSent"]
        assert {r["InstanceId"] for r in sent} == {"@counter@k2", "@account@k2"}
        assert {r["Name"] for r in sent} == {"op"}
        requests = [json.loads(r["Input"]) for r in sent]
        calls = [m for m in requests if not m.get("signal")]
        assert all(m["parent"] == "caller" and HEX32.match(m["parentExecution"]) for m in calls)
        assert all(DOTNET_TIME.match(m["Timestamp"]) for m in requests)
        first, second = requests[0], requests[1]  # a signal then a call to Counter@k2
        assert second["Predecessor"] == first["Timestamp"] < second["Timestamp"]
        answers = {
            r["Name"]: json.loads(r["Input"]) for r in rows if r.get("EventType") == "EventRaised"
        }
        assert {m["id"] for m in calls} == set(answers)
        failed = [a for a in answers.values() if "exceptionType" in a]
        assert failed == [{"result": '"failed after adding"', "exceptionType": "Error"}]
