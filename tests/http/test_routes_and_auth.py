"""Unknown routes, the system key, error bodies, and rejected requests leaving storage alone."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from durable_ext.client import WEBHOOK_PATH, DurableOrchestrationClient
from durable_ext.http_api import create_management_routes
from tests.http.functions import registry

KEY = "s3cr3t-system-key"


async def test_unknown_routes_and_wrong_methods_are_404_json(api) -> None:
    async with api(registry(), run_worker=False) as a:
        await a.client.start_new("wait_for_go", "x")
        for method, path in (
            ("GET", "/nothing"),
            ("GET", ""),
            ("GET", "/"),
            ("PUT", "/instances"),
            ("POST", "/instances"),
            ("POST", "/instances/x"),
            ("GET", "/instances/x/terminate"),
            ("POST", "/instances/x/explode"),
            ("POST", "/instances/x/terminate/now"),
            ("GET", "/orchestrators/hello"),
            ("POST", "/orchestrators"),
            ("POST", "/makeprimary"),
            ("PATCH", "/entities/counter/k"),
        ):
            response = await a.call(method, path)
            assert response.status == 404, (method, path)
            assert response.headers["Content-Type"].startswith("application/json")
            assert "error" in await response.json()
        assert (await a.client.get_status("x")).runtime_status.value == "Pending"


async def test_system_key_is_required_and_carried_by_generated_uris(api) -> None:
    async with api(registry(), system_key=KEY, run_worker=False) as a:
        for headers, path in (
            ({}, "/instances"),
            ({}, f"/instances?code={KEY}x"),
            ({"x-functions-key": "wrong"}, "/instances"),
            ({}, "/nothing"),
        ):
            response = await a.call("GET", path, headers=headers)
            assert response.status == 401, (headers, path)
            assert "system key" in (await response.json())["error"]
        assert (await a.call("GET", f"/instances?code={KEY}")).status == 200
        assert (await a.call("GET", "/instances", headers={"x-functions-key": KEY})).status == 200

        refused = await a.call("POST", "/orchestrators/hello/k1", json="x")
        assert refused.status == 401
        assert not await a.client.get_status("k1")

        started = await a.call("POST", f"/orchestrators/hello/k1?code={KEY}", json="x")
        assert started.status == 202
        payload = await started.json()
        for field, uri in payload.items():
            if field != "id":
                assert parse_qs(urlsplit(uri).query)["code"] == [KEY], field
        assert (await a.call("GET", a.local(payload["statusQueryGetUri"]))).status == 202

        # The client's own payload (user code's create_check_status_response) works on the routes.
        base = str(a.http.make_url("")).rstrip("/")
        links = a.client.create_http_management_payload("k1", base)
        assert links == payload
        suspend = links["suspendPostUri"].replace("{text}", "why")
        assert (await a.call("POST", a.local(suspend))).status == 202


async def test_unexpected_errors_are_500_without_details() -> None:
    def client_for(task_hub: str | None) -> DurableOrchestrationClient:
        raise RuntimeError("AccountKey=very-secret-value")

    root = web.Application()
    root.add_subapp(WEBHOOK_PATH, create_management_routes(client_for))
    async with TestClient(TestServer(root, host="127.0.0.1")) as http:
        response = await http.get(f"{WEBHOOK_PATH}/instances/abc")
        assert response.status == 500
        body = await response.json()
        assert body == {"error": "Something went wrong while processing your request."}
        assert "secret" not in await response.text()


async def control_messages(a: Any) -> int:
    """Messages waiting in the hub's control queues (peeked with the Azure SDK)."""
    hub = a.runtime.hub
    count = 0
    async with hub.connection.queue_service() as service:
        for name in hub.names.control_queues(hub.partition_count):
            count += len(await service.get_queue_client(name).peek_messages(max_messages=32))
    return count


async def test_rejected_requests_change_nothing(api) -> None:
    async with api(registry(), run_worker=False) as a:
        for path, kwargs in (
            ("/orchestrators/nope/n1", {"json": 1}),
            ("/orchestrators/hello/n1", {"data": b"{"}),
            ("/orchestrators/hello/%40n1", {"json": 1}),
            ("/orchestrators/hello/n1?timeout=x&pollingInterval=1", {"json": 1}),
            ("/orchestrators/hello/n1?showHistory=2", {"json": 1}),
        ):
            assert (await a.call("POST", path, **kwargs)).status == 400, path
        assert await a.client.list_instances() == ([], None)
        assert await control_messages(a) == 0

        await a.client.start_new("wait_for_go", "n2")
        before = await a.client.get_status("n2")
        assert await control_messages(a) == 1
        for kwargs in (
            {"data": b"1", "headers": {"Content-Type": "text/plain"}},
            {"data": b"{bad", "headers": {"Content-Type": "application/json"}},
        ):
            assert (await a.call("POST", "/instances/n2/raiseEvent/go", **kwargs)).status == 400
        assert (await a.call("DELETE", "/instances/n2")).status == 412
        assert (await a.call("POST", "/instances/n2/rewind")).status == 412
        assert (
            await a.call("POST", "/instances/n2/restart?restartWithNewInstanceId=false")
        ).status == 409
        assert (await a.call("DELETE", "/instances?createdTimeTo=2999-01-01")).status == 400
        assert (await a.call("GET", "/instances/n2/terminate")).status == 404
        assert await control_messages(a) == 1
        after = await a.client.get_status("n2")
        assert after.to_json() == before.to_json()
        assert await a.client.get_history("n2") == []
