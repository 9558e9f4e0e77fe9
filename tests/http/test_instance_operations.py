"""raiseEvent, terminate, suspend, resume and restart over HTTP."""

from __future__ import annotations

from durable_ext import OrchestrationRuntimeStatus
from tests.http.functions import registry, wait_for_status

RUNNING = OrchestrationRuntimeStatus.Running
COMPLETED = OrchestrationRuntimeStatus.Completed
SUSPENDED = OrchestrationRuntimeStatus.Suspended
TERMINATED = OrchestrationRuntimeStatus.Terminated


async def test_raise_event(api) -> None:
    async with api(registry()) as a:
        await a.call("POST", "/orchestrators/wait_for_go/e1")
        await wait_for_status(a.client, "e1", RUNNING)
        response = await a.call(
            "POST",
            "/instances/e1/raiseEvent/go",
            data=b'{"ok": true}',
            headers={"Content-Type": "Application/JSON; charset=utf-8"},
        )
        assert response.status == 202
        assert await response.read() == b""
        status = await wait_for_status(a.client, "e1", COMPLETED)
        assert status.output == {"ok": True}


async def test_raise_event_operation_name_is_case_insensitive(api) -> None:
    async with api(registry()) as a:
        await a.call("POST", "/orchestrators/wait_for_go/e2")
        response = await a.call("POST", "/instances/e2/RAISEEVENT/go", json=[1, 2])
        assert response.status == 202
        assert (await wait_for_status(a.client, "e2", COMPLETED)).output == [1, 2]


async def test_raise_event_errors(api) -> None:
    async with api(registry()) as a:
        assert (await a.call("POST", "/instances/nope/raiseEvent/go", json=1)).status == 404
        await a.call("POST", "/orchestrators/wait_for_go/e3")
        text = await a.call(
            "POST", "/instances/e3/raiseEvent/go", data=b"1", headers={"Content-Type": "text/plain"}
        )
        assert text.status == 400
        assert "application/json" in (await text.json())["error"]
        no_type = await a.call("POST", "/instances/e3/raiseEvent/go", data=b"1")
        assert no_type.status == 400
        for body in (b"{oops", b"", b"Infinity"):
            invalid = await a.call(
                "POST",
                "/instances/e3/raiseEvent/go",
                data=body,
                headers={"Content-Type": "application/json"},
            )
            assert invalid.status == 400, body
            assert "Invalid JSON" in (await invalid.json())["error"]
        await a.call("POST", "/instances/e3/raiseEvent/go", json="done")
        await wait_for_status(a.client, "e3", COMPLETED)
        gone = await a.call("POST", "/instances/e3/raiseEvent/go", json=2)
        assert gone.status == 410
        assert "error" in await gone.json()


async def test_suspend_resume_terminate(api) -> None:
    async with api(registry()) as a:
        await a.call("POST", "/orchestrators/wait_for_go/s1")
        await wait_for_status(a.client, "s1", RUNNING)
        assert (await a.call("POST", "/instances/s1/suspend?reason=pause")).status == 202
        await wait_for_status(a.client, "s1", SUSPENDED)
        suspended = await a.call("GET", "/instances/s1")
        assert suspended.status == 202
        assert (await suspended.json())["runtimeStatus"] == "Suspended"
        assert (await a.call("POST", "/instances/s1/Resume?reason=go")).status == 202
        await wait_for_status(a.client, "s1", RUNNING)
        response = await a.call("POST", "/instances/s1/TERMINATE?reason=stop%20it")
        assert response.status == 202
        assert await response.read() == b""
        status = await wait_for_status(a.client, "s1", TERMINATED)
        assert status.output == "stop it"
        for operation in ("terminate", "suspend", "resume"):
            gone = await a.call("POST", f"/instances/s1/{operation}?reason=late")
            assert gone.status == 410, operation
            missing = await a.call("POST", f"/instances/none/{operation}")
            assert missing.status == 404, operation


async def test_restart_with_a_new_instance_id(api) -> None:
    async with api(registry()) as a:
        await a.call("POST", "/orchestrators/hello/r1", json="Again")
        await wait_for_status(a.client, "r1", COMPLETED)
        response = await a.call("POST", "/instances/r1/restart")
        assert response.status == 202
        body = await response.json()
        assert body["id"] != "r1"
        assert response.headers["Location"] == body["statusQueryGetUri"]
        status = await wait_for_status(a.client, body["id"], COMPLETED)
        assert status.output == "Hello Again!"
        assert (await a.client.get_status(body["id"], show_input=True)).input_ == "Again"


async def test_restart_with_the_same_id_and_wait(api) -> None:
    async with api(registry()) as a:
        await a.call("POST", "/orchestrators/hello/r2", json="Same")
        first = await wait_for_status(a.client, "r2", COMPLETED)
        response = await a.call(
            "POST",
            "/instances/r2/restart?restartWithNewInstanceId=false&timeout=30&pollingInterval=0.1",
        )
        assert response.status == 200
        assert await response.json() == "Hello Same!"
        second = await a.client.get_status("r2")
        assert second.created_time is not None and first.created_time is not None
        assert second.created_time >= first.created_time
        row = await a.runtime.hub.instances.get("r2")
        assert row is not None and row.generation == 1


async def test_restart_errors(api) -> None:
    async with api(registry()) as a:
        missing = await a.call("POST", "/instances/none/restart")
        assert missing.status == 400
        assert "does not match" in (await missing.json())["error"]
        await a.call("POST", "/orchestrators/wait_for_go/r3")
        busy = await a.call("POST", "/instances/r3/restart?restartWithNewInstanceId=false")
        assert busy.status == 409
        bad = await a.call("POST", "/instances/r3/restart?restartWithNewInstanceId=nope")
        assert bad.status == 400
        statuses, _ = await a.client.list_instances()
        assert [s.instance_id for s in statuses] == ["r3"]
