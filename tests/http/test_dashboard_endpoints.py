"""The read endpoints the dashboard uses besides the Durable Functions API: registered
orchestrators, an instance's full history, the task hub's state and instance counts per status,
and the name filter of GET /instances."""

from __future__ import annotations

import re

from durable_ext import OrchestrationRuntimeStatus
from durable_ext.dashboard.counts import status_counts
from durable_ext.storage.instance_store import InstanceQuery
from tests.http.functions import registry, wait_for_status
from tests.wait import wait_for

COMPLETED = OrchestrationRuntimeStatus.Completed
PENDING = OrchestrationRuntimeStatus.Pending
SEVEN_DIGITS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$")


async def test_orchestrators_lists_the_registered_names(api) -> None:
    async with api(registry(), run_worker=False) as a:
        response = await a.call("GET", "/orchestrators")
        assert response.status == 200
        assert await response.json() == {"orchestrators": ["explode", "hello", "wait_for_go"]}
        assert (await a.call("GET", "/orchestrators?taskHub=elsewhere")).status == 404


async def test_history_has_every_event_with_exact_times(api) -> None:
    async with api(registry()) as a:
        instance_id = await a.client.start_new("hello", "hist-1", "Tokyo")
        await wait_for_status(a.client, instance_id, COMPLETED)
        response = await a.call("GET", "/instances/hist-1/history")
        assert response.status == 200
        body = await response.json()
    assert body["instanceId"] == "hist-1"
    events = body["events"]
    types = [e["EventType"] for e in events]
    for wanted in ("ExecutionStarted", "TaskScheduled", "TaskCompleted", "ExecutionCompleted"):
        assert wanted in types, types
    assert "OrchestratorStarted" in types, "the status API's view hides these; this one does not"
    assert all(SEVEN_DIGITS.match(e["Timestamp"]) for e in events), events
    scheduled = next(e for e in events if e["EventType"] == "TaskScheduled")
    completed = next(e for e in events if e["EventType"] == "TaskCompleted")
    assert scheduled["Name"] == "greet" and completed["TaskScheduledId"] == scheduled["EventId"]
    started = next(e for e in events if e["EventType"] == "ExecutionStarted")
    assert started["OrchestrationInstance"]["InstanceId"] == "hist-1"
    assert started["Input"] == '"Tokyo"'


async def test_history_of_a_failure_carries_its_details(api) -> None:
    async with api(registry()) as a:
        instance_id = await a.client.start_new("explode", "hist-failed")
        await wait_for_status(a.client, instance_id, OrchestrationRuntimeStatus.Failed)
        events = (await (await a.call("GET", "/instances/hist-failed/history")).json())["events"]
    done = next(e for e in events if e["EventType"] == "ExecutionCompleted")
    assert done["OrchestrationStatus"] == "Failed"
    assert done["FailureDetails"]["ErrorType"] and done["FailureDetails"]["StackTrace"]


async def test_history_of_no_instance_is_not_found(api) -> None:
    async with api(registry(), run_worker=False) as a:
        response = await a.call("GET", "/instances/nobody/history")
        assert response.status == 404
        assert "nobody" in (await response.json())["error"]


async def test_task_hub_shows_owners_queue_depths_and_the_oldest_message(api) -> None:
    async with api(registry(), run_worker=False) as a:
        await a.client.start_new("hello", "queued-1", "x")
        body = await (await a.call("GET", "/taskhub")).json()
    assert body["taskHub"] == a.client.task_hub_name
    assert body["partitionCount"] == len(body["partitions"]) == 4
    assert body["workers"] == [] and all(p["owner"] is None for p in body["partitions"])
    queued = [p for p in body["partitions"] if p["messages"]]
    assert len(queued) == 1 and queued[0]["messages"] == 1
    assert queued[0]["oldestMessageAgeSeconds"] >= 0
    assert queued[0]["queue"].endswith(f"-control-{queued[0]['partition']:02d}")
    assert body["workItems"]["messages"] == 0 and body["workItems"]["oldestMessageAgeSeconds"] is None


async def test_task_hub_names_the_worker_that_owns_the_partitions(api) -> None:
    async with api(registry()) as a:
        assert a.runtime.worker is not None
        worker_id = a.runtime.worker.options.worker_id

        async def owned_by_worker() -> dict | None:
            body = await (await a.call("GET", "/taskhub")).json()
            owners = {p["owner"] for p in body["partitions"]}
            return body if owners == {worker_id} else None

        body = await wait_for(owned_by_worker, timeout=30)
    assert body["workers"] == [worker_id]


async def test_counts_per_status_stop_at_the_cap(api) -> None:
    async with api(registry(), run_worker=False) as a:
        for n in range(5):
            await a.client.start_new("hello", f"count-{n}", n)
        await a.client.start_new("wait_for_go", "count-other")
        hub = a.client.task_hub
        assert await status_counts(hub, InstanceQuery(runtime_status=[PENDING]), cap=3) == [
            {"runtimeStatus": "Pending", "count": 3, "capped": True}
        ]
        exact = await status_counts(hub, InstanceQuery(runtime_status=[PENDING], name="hello"), cap=5)
        assert exact == [{"runtimeStatus": "Pending", "count": 5, "capped": False}]
        response = await a.call("GET", "/taskhub/counts?instanceIdPrefix=count-")
        counts = {c["runtimeStatus"]: c for c in (await response.json())["counts"]}
    assert counts["Pending"] == {"runtimeStatus": "Pending", "count": 6, "capped": False}
    assert {c["count"] for s, c in counts.items() if s != "Pending"} == {0}
    assert set(counts) == {s.value for s in OrchestrationRuntimeStatus}


async def test_counts_reject_bad_filters(api) -> None:
    async with api(registry(), run_worker=False) as a:
        assert (await a.call("GET", "/taskhub/counts?runtimeStatus=Sleeping")).status == 400
        assert (await a.call("GET", "/taskhub/counts?createdTimeFrom=yesterday")).status == 400


async def test_instances_filter_by_orchestrator_name(api) -> None:
    async with api(registry(), run_worker=False) as a:
        await a.client.start_new("hello", "named-1", "a")
        await a.client.start_new("wait_for_go", "named-2")
        response = await a.call("GET", "/instances?name=wait_for_go&instanceIdPrefix=named-")
        assert [i["instanceId"] for i in await response.json()] == ["named-2"]
        response = await a.call("GET", "/instances?name=nothing")
        assert await response.json() == []
