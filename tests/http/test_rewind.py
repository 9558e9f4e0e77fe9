"""Rewind over HTTP: DTFx's table-rewrite rewind, verified end to end on storage."""

from __future__ import annotations

from collections import Counter
from typing import Any

from durable_ext import DurableOrchestrationContext, OrchestrationRuntimeStatus
from durable_ext.worker import FunctionRegistry
from tests.http.functions import registry, wait_for_status

COMPLETED = OrchestrationRuntimeStatus.Completed
FAILED = OrchestrationRuntimeStatus.Failed
RUNNING = OrchestrationRuntimeStatus.Running


def flaky_registry(calls: Counter[str]) -> FunctionRegistry:
    """`chain` greets then calls `flaky`, whose first call per input fails; `parent` runs `chain`."""

    def counted_greet(name: str) -> str:
        calls["greet"] += 1
        return f"Hello {name}!"

    def flaky(key: str) -> str:
        calls[key] += 1
        if calls[key] == 1:
            raise RuntimeError(f"first call for {key} fails")
        return f"ok {key}"

    def chain(ctx: DurableOrchestrationContext) -> Any:
        greeting = yield ctx.call_activity("counted_greet", "A")
        return [greeting, (yield ctx.call_activity("flaky", ctx.get_input()))]

    def parent(ctx: DurableOrchestrationContext) -> Any:
        result = yield ctx.call_sub_orchestrator(
            "chain", ctx.get_input(), f"{ctx.instance_id}-child"
        )
        return {"child": result}

    return registry(o_chain=chain, o_parent=parent, counted_greet=counted_greet, flaky=flaky)


async def history_rows(api: Any, instance_id: str) -> list[dict[str, Any]]:
    """The instance's rows in the History table, read with the Azure SDK."""
    hub = api.runtime.hub
    async with hub.connection.table_service() as service:
        table = service.get_table_client(hub.names.history_table)
        query = table.query_entities("PartitionKey eq @pk", parameters={"pk": instance_id})
        rows = [dict(row) async for row in query]
    return sorted(rows, key=lambda r: r["RowKey"])


async def test_rewind_reruns_the_failed_activity(api) -> None:
    calls: Counter[str] = Counter()
    async with api(flaky_registry(calls)) as a:
        await a.call("POST", "/orchestrators/chain/rw1", json="k1")
        failed = await wait_for_status(a.client, "rw1", FAILED, COMPLETED)
        assert failed.runtime_status is FAILED

        response = await a.call("POST", "/instances/rw1/REWIND?reason=try%20again")
        assert response.status == 202
        assert await response.read() == b""
        status = await wait_for_status(a.client, "rw1", COMPLETED, FAILED)
        assert status.runtime_status is COMPLETED
        assert status.output == ["Hello A!", "ok k1"]
        assert calls == Counter({"greet": 1, "k1": 2})

        rows = await history_rows(a, "rw1")
        tombstones = [
            r["Reason"] for r in rows if r.get("EventType") == "GenericEvent" and r.get("Reason")
        ]
        assert tombstones == [
            "Rewound: TaskScheduled",
            "Rewound: TaskFailed",
            "Rewound: ExecutionCompleted",
        ]
        woken = [r for r in rows if r.get("EventType") == "GenericEvent" and not r.get("Reason")]
        assert [r.get("Data") for r in woken] == ["try again"]
        assert [
            r["OrchestrationStatus"] for r in rows if r.get("EventType") == "ExecutionCompleted"
        ] == ["Completed"]


async def test_rewind_recurses_into_failed_sub_orchestrations(api) -> None:
    calls: Counter[str] = Counter()
    async with api(flaky_registry(calls)) as a:
        await a.call("POST", "/orchestrators/parent/rw2", json="k2")
        await wait_for_status(a.client, "rw2", FAILED, COMPLETED)
        assert (await a.client.get_status("rw2-child")).runtime_status is FAILED

        assert (await a.call("POST", "/instances/rw2/rewind")).status == 202
        status = await wait_for_status(a.client, "rw2", COMPLETED, FAILED)
        assert status.output == {"child": ["Hello A!", "ok k2"]}
        child = await a.client.get_status("rw2-child")
        assert child.runtime_status is COMPLETED
        assert calls == Counter({"greet": 1, "k2": 2})

        parent_rows = await history_rows(a, "rw2")
        created = [
            r for r in parent_rows if r.get("EventType") == "SubOrchestrationInstanceCreated"
        ]
        assert [r["Reason"] for r in created] == ["Rewound: SubOrchestrationInstanceCreated"]


async def test_rewind_errors(api) -> None:
    calls: Counter[str] = Counter()
    async with api(flaky_registry(calls)) as a:
        missing = await a.call("POST", "/instances/none/rewind")
        assert missing.status == 404
        await a.call("POST", "/orchestrators/wait_for_go/running")
        await wait_for_status(a.client, "running", RUNNING)
        running = await a.call("POST", "/instances/running/rewind")
        assert running.status == 412
        assert "only Failed instances" in (await running.json())["error"]
        await a.call("POST", "/instances/running/terminate")
        await wait_for_status(a.client, "running", OrchestrationRuntimeStatus.Terminated)
        assert (await a.call("POST", "/instances/running/rewind")).status == 410
        await a.call("POST", "/orchestrators/hello/done", json="x")
        await wait_for_status(a.client, "done", COMPLETED)
        before = await history_rows(a, "done")
        assert (await a.call("POST", "/instances/done/rewind")).status == 410
        assert await history_rows(a, "done") == before
