"""Starting instances and reading their status over HTTP."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs, quote, urlsplit

from durable_ext import OrchestrationRuntimeStatus
from durable_ext.client import WEBHOOK_PATH
from tests.http.functions import registry, wait_for_status

PAYLOAD_FIELDS = [
    "id",
    "statusQueryGetUri",
    "sendEventPostUri",
    "terminatePostUri",
    "purgeHistoryDeleteUri",
    "restartPostUri",
    "suspendPostUri",
    "resumePostUri",
]
STATUS_FIELDS = [
    "name",
    "instanceId",
    "runtimeStatus",
    "input",
    "customStatus",
    "output",
    "createdTime",
    "lastUpdatedTime",
]
RUNNING = OrchestrationRuntimeStatus.Running
COMPLETED = OrchestrationRuntimeStatus.Completed
FAILED = OrchestrationRuntimeStatus.Failed


async def test_start_returns_the_check_status_payload(api) -> None:
    async with api(registry()) as a:
        response = await a.call("POST", "/orchestrators/hello", json="World")
        assert response.status == 202
        body = await response.json()
        assert list(body) == PAYLOAD_FIELDS
        assert response.headers["Location"] == body["statusQueryGetUri"]
        assert response.headers["Retry-After"] == "10"
        instance_id = body["id"]
        root = str(a.http.make_url(f"{WEBHOOK_PATH}/instances/{instance_id}"))
        common = f"taskHub={a.client.task_hub_name}&connection=Storage"
        assert body["statusQueryGetUri"] == f"{root}?{common}"
        assert body["purgeHistoryDeleteUri"] == f"{root}?{common}"
        assert body["sendEventPostUri"] == f"{root}/raiseEvent/{{eventName}}?{common}"
        assert body["terminatePostUri"] == f"{root}/terminate?reason={{text}}&{common}"
        assert body["restartPostUri"] == f"{root}/restart?{common}"
        assert body["suspendPostUri"] == f"{root}/suspend?reason={{text}}&{common}"
        assert body["resumePostUri"] == f"{root}/resume?reason={{text}}&{common}"
        await wait_for_status(a.client, instance_id, COMPLETED)
        status = await a.call("GET", a.local(body["statusQueryGetUri"]))
        assert status.status == 200
        assert (await status.json())["output"] == "Hello World!"


async def test_start_with_an_instance_id_and_a_version(api) -> None:
    async with api(registry()) as a:
        response = await a.call("POST", "/orchestrators/hello/order%2042?version=2.0", json="X")
        assert response.status == 202
        assert (await response.json())["id"] == "order 42"
        assert response.headers["Location"].split("?")[0].endswith("/instances/order%2042")
        row = await a.runtime.hub.instances.get("order 42")
        assert row is not None and row.version == "2.0" and row.input == '"X"'


async def test_start_with_an_empty_body_has_no_input(api) -> None:
    async with api(registry()) as a:
        response = await a.call("POST", "/orchestrators/hello/empty")
        assert response.status == 202
        status = await wait_for_status(a.client, "empty", COMPLETED)
        assert status.output == "Hello None!"


async def test_start_and_wait_returns_the_raw_output(api) -> None:
    async with api(registry()) as a:
        response = await a.call(
            "POST", "/orchestrators/hello?timeout=30&pollingInterval=0.1", json="Sync"
        )
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("application/json")
        assert await response.text() == '"Hello Sync!"'


async def test_start_and_wait_times_out_with_the_check_status_payload(api) -> None:
    async with api(registry()) as a:
        response = await a.call(
            "POST", "/orchestrators/wait_for_go/slow?timeout=0.3&pollingInterval=0.1"
        )
        assert response.status == 202
        assert list(await response.json()) == PAYLOAD_FIELDS
        assert response.headers["Retry-After"] == "10"


async def test_start_and_wait_on_a_failure_returns_the_status_payload(api) -> None:
    async with api(registry()) as a:
        response = await a.call(
            "POST",
            "/orchestrators/explode/x?timeout=30&pollingInterval=0.1&showInput=false",
            json=1,
        )
        assert response.status == 200
        body = await response.json()
        assert body["runtimeStatus"] == "Failed"
        assert body["input"] is None
        assert "boom: 1" in str(body["output"])


async def test_start_rejects_bad_requests(api) -> None:
    async with api(registry()) as a:
        bad = [
            ("/orchestrators/nope", {"json": 1}, "nope"),
            ("/orchestrators/greet", {"json": 1}, "not an orchestrator"),
            ("/orchestrators/hello/%40entity", {}, "reserved"),
            ("/orchestrators/hello/a%23b", {}, "invalid character"),
            ("/orchestrators/hello/" + "x" * 257, {}, "limit is 256"),
            ("/orchestrators/hello", {"data": b"{not json"}, "Invalid JSON"),
            ("/orchestrators/hello", {"data": b"NaN"}, "Invalid JSON"),
            ("/orchestrators/hello", {"data": b"\xff\xfe"}, "UTF-8"),
            ("/orchestrators/hello?timeout=abc&pollingInterval=1", {}, "timeout"),
            ("/orchestrators/hello?timeout=1&pollingInterval=-1", {}, "pollingInterval"),
            ("/orchestrators/hello?timeout=1&pollingInterval=2", {}, "bigger than"),
            ("/orchestrators/hello?showInput=maybe", {}, "showInput"),
        ]
        for path, kwargs, message in bad:
            response = await a.call("POST", path, **kwargs)
            assert response.status == 400, path
            error = await response.json()
            assert message in error["error"], (path, error)
        statuses, _ = await a.client.list_instances()
        assert statuses == []


async def test_start_with_the_id_of_an_active_instance_is_a_conflict(api) -> None:
    async with api(registry()) as a:
        assert (await a.call("POST", "/orchestrators/wait_for_go/busy")).status == 202
        response = await a.call("POST", "/orchestrators/hello/busy", json="again")
        assert response.status == 409
        assert "already exists" in (await response.json())["error"]
        status = await a.client.get_status("busy")
        assert status.name == "wait_for_go"


async def test_status_of_a_running_instance_is_202_with_location(api) -> None:
    async with api(registry()) as a:
        await a.call("POST", "/orchestrators/wait_for_go/w1", json={"n": 1})
        await wait_for_status(a.client, "w1", RUNNING)
        path = "/instances/w1?showHistory=false"
        response = await a.call("GET", path)
        assert response.status == 202
        assert response.headers["Location"] == str(a.http.make_url(WEBHOOK_PATH + path))
        assert response.headers["Retry-After"] == "5"
        body = await response.json()
        assert list(body) == STATUS_FIELDS
        assert body["runtimeStatus"] == "Running"
        assert body["input"] == {"n": 1}
        assert body["output"] is None
        assert body["createdTime"].endswith("Z") and len(body["createdTime"]) == 20


async def test_status_of_a_finished_instance(api) -> None:
    async with api(registry()) as a:
        await a.call("POST", "/orchestrators/hello/done", json="Ann")
        await wait_for_status(a.client, "done", COMPLETED)
        response = await a.call("GET", "/instances/done")
        assert response.status == 200
        assert "Location" not in response.headers
        body = await response.json()
        assert list(body) == STATUS_FIELDS
        assert body["name"] == "hello"
        assert body["input"] == "Ann"
        assert body["output"] == "Hello Ann!"

        hidden = await (await a.call("GET", "/instances/done?showInput=FALSE")).json()
        assert hidden["input"] is None

        history = await (await a.call("GET", "/instances/done?showHistory=true")).json()
        events = history["historyEvents"]
        assert [e["EventType"] for e in events] == [
            "ExecutionStarted",
            "TaskCompleted",
            "ExecutionCompleted",
        ]
        assert events[1]["FunctionName"] == "greet"
        assert "Result" not in events[1]

        with_output = await a.call("GET", "/instances/done?showHistory=true&showHistoryOutput=true")
        events = (await with_output.json())["historyEvents"]
        assert events[1]["Result"] == "Hello Ann!"
        assert events[2]["Result"] == "Hello Ann!"


async def test_status_of_a_failed_instance(api) -> None:
    async with api(registry()) as a:
        await a.call("POST", "/orchestrators/explode/bad", json="x")
        await wait_for_status(a.client, "bad", FAILED)
        assert (await a.call("GET", "/instances/bad")).status == 200
        response = await a.call("GET", "/instances/bad?returnInternalServerErrorOnFailure=true")
        assert response.status == 500
        assert (await response.json())["runtimeStatus"] == "Failed"


async def test_status_errors(api) -> None:
    async with api(registry()) as a:
        missing = await a.call("GET", "/instances/missing")
        assert missing.status == 404
        assert "missing" in (await missing.json())["error"]
        assert (await a.call("GET", "/instances/missing?showHistory=yes")).status == 400


async def test_task_hub_parameter(api) -> None:
    async with api(registry()) as a:
        hub = a.client.task_hub_name
        assert (await a.call("GET", f"/instances?taskHub={hub.lower()}")).status == 200
        assert (await a.call("GET", "/instances?TASKHUB=%20")).status == 200
        other = await a.call("GET", "/instances?taskHub=OtherHub")
        assert other.status == 404
        assert "OtherHub" in (await other.json())["error"]


async def test_generated_uris_follow_the_request_and_the_connection_parameter(api) -> None:
    async with api(registry(), run_worker=False) as a:
        response = await a.call(
            "POST",
            "/orchestrators/hello/c1?connection=MyStorage",
            headers={"Host": "example.com:8080", "X-Forwarded-Host": "ignored.example"},
        )
        uri = (await response.json())["statusQueryGetUri"]
        parts = urlsplit(uri)
        assert parts.netloc == "example.com:8080"
        assert parse_qs(parts.query)["connection"] == ["MyStorage"]


async def test_forwarded_host_is_honoured_only_when_enabled(api) -> None:
    headers = {"X-Forwarded-Host": "public.example", "X-Forwarded-Proto": "https"}
    async with api(registry(), run_worker=False, use_forwarded_host=True) as a:
        response = await a.call("POST", "/orchestrators/hello/f1", headers=headers)
        uri = (await response.json())["statusQueryGetUri"]
        assert uri.startswith(f"https://public.example{WEBHOOK_PATH}/instances/f1?")
        status = await a.call("GET", "/instances/f1", headers=headers)
        assert status.headers["Location"] == f"https://public.example{WEBHOOK_PATH}/instances/f1"
        alone = await a.call(
            "POST", "/orchestrators/hello/f2", headers={"X-Forwarded-Host": "public.example"}
        )
        assert urlsplit((await alone.json())["statusQueryGetUri"]).hostname == "127.0.0.1"


async def test_polling_consumer_pattern(api) -> None:
    """A client that only follows Location headers sees 202s and then a 200."""
    async with api(registry()) as a:
        response = await a.call("POST", "/orchestrators/hello", json="Poll")
        location = response.headers["Location"]
        for _ in range(300):
            response = await a.call("GET", a.local(location))
            if response.status == 200:
                break
            assert response.status == 202
            location = response.headers["Location"]
            await asyncio.sleep(0.1)
        assert (await response.json())["output"] == "Hello Poll!"


async def test_unusual_instance_ids_round_trip_through_generated_uris(api) -> None:
    async with api(registry()) as a:
        instance_id = "spaces, ünïcode ☃ & 'quotes'"
        response = await a.call(
            "POST", "/orchestrators/hello/" + quote(instance_id, safe=""), json=1
        )
        assert response.status == 202
        body = await response.json()
        assert body["id"] == instance_id
        await wait_for_status(a.client, instance_id, COMPLETED)
        status = await a.call("GET", a.local(body["statusQueryGetUri"]))
        assert (await status.json())["instanceId"] == instance_id
        assert (await a.call("GET", "/instances/a%00b")).status == 404
