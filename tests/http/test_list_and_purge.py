"""Listing instances (filters, paging) and purging them over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from durable_ext import OrchestrationRuntimeStatus
from tests.http.functions import registry, wait_for_status

TOKEN = "x-ms-continuation-token"
COMPLETED = OrchestrationRuntimeStatus.Completed


def iso(moment: datetime) -> str:
    return quote(moment.isoformat())


async def test_list_pages_with_top_and_the_continuation_header(api) -> None:
    async with api(registry(), run_worker=False) as a:
        started = {f"page-{n}" for n in range(7)}
        for instance_id in started:
            await a.client.start_new("hello", instance_id, instance_id)
        seen: list[str] = []
        headers: dict[str, str] = {}
        pages = 0
        while True:
            response = await a.call("GET", "/instances?top=3", headers=headers)
            assert response.status == 200
            assert TOKEN in response.headers
            page = await response.json()
            assert len(page) <= 3
            seen += [item["instanceId"] for item in page]
            pages += 1
            if not response.headers[TOKEN]:
                break
            headers = {TOKEN: response.headers[TOKEN]}
        assert pages >= 3
        assert sorted(seen) == sorted(started)
        assert all(item["input"] is not None for item in page)


async def test_list_filters(api) -> None:
    async with api(registry(), run_worker=False) as a:
        for instance_id in ("alpha-1", "alpha-2", "beta-1"):
            await a.client.start_new("hello", instance_id, instance_id)

        async def ids(query: str) -> list[str]:
            response = await a.call("GET", f"/instances/?{query}")
            assert response.status == 200, await response.text()
            assert response.headers[TOKEN] == ""
            return sorted(item["instanceId"] for item in await response.json())

        everything = ["alpha-1", "alpha-2", "beta-1"]
        assert await ids("") == everything
        assert await ids("instanceIdPrefix=alpha") == ["alpha-1", "alpha-2"]
        assert await ids("runtimeStatus=Pending") == everything
        assert await ids("runtimeStatus=completed") == []
        assert await ids("runtimeStatus=Completed,pending") == everything
        assert await ids("runtimeStatus=Completed&runtimeStatus=Pending") == everything
        now = datetime.now(UTC)
        assert await ids(f"createdTimeFrom={iso(now - timedelta(minutes=5))}") == everything
        assert await ids(f"createdTimeFrom={iso(now + timedelta(minutes=5))}") == []
        assert await ids(f"createdTimeTo={iso(now - timedelta(minutes=5))}") == []
        assert await ids("createdTimeTo=2999-01-01T00:00:00Z") == everything
        response = await a.call("GET", "/instances?showInput=false&instanceIdPrefix=beta")
        assert [item["input"] for item in await response.json()] == [None]
        assert "historyEvents" not in (await response.json())[0]


async def test_list_rejects_bad_parameters(api) -> None:
    async with api(registry(), run_worker=False) as a:
        for query in (
            "top=0",
            "top=abc",
            "top=-1",
            "createdTimeFrom=yesterday",
            "createdTimeTo=2024-13-01",
            "runtimeStatus=Sleeping",
            "showInput=1",
        ):
            response = await a.call("GET", f"/instances?{query}")
            assert response.status == 400, query
            assert "error" in await response.json()
        bad_token = await a.call("GET", "/instances", headers={TOKEN: "!!not-a-token!!"})
        assert bad_token.status == 400


async def test_purge_one_instance(api) -> None:
    async with api(registry()) as a:
        await a.call("POST", "/orchestrators/hello/p1", json="x")
        await wait_for_status(a.client, "p1", COMPLETED)
        response = await a.call("DELETE", "/instances/p1")
        assert response.status == 200
        assert await response.json() == {"instancesDeleted": 1}
        assert (await a.call("GET", "/instances/p1")).status == 404
        assert await a.client.get_history("p1") == []
        again = await a.call("DELETE", "/instances/p1")
        assert again.status == 404
        assert "error" in await again.json()


async def test_purge_of_an_unfinished_instance_is_refused(api) -> None:
    async with api(registry()) as a:
        await a.call("POST", "/orchestrators/wait_for_go/p2")
        response = await a.call("DELETE", "/instances/p2")
        assert response.status == 412
        assert "terminal state" in (await response.json())["error"]
        assert await a.client.get_status("p2")


async def test_purge_by_filter(api) -> None:
    async with api(registry()) as a:
        since = iso(datetime.now(UTC) - timedelta(minutes=5))
        missing = await a.call("DELETE", "/instances")
        assert missing.status == 400
        assert "createdTimeFrom" in (await missing.json())["error"]
        assert (await a.call("DELETE", "/instances?createdTimeFrom=soon")).status == 400
        for n in range(3):
            await a.call("POST", f"/orchestrators/hello/f{n}", json=n)
        await a.call("POST", "/orchestrators/wait_for_go/f-running")
        for n in range(3):
            await wait_for_status(a.client, f"f{n}", COMPLETED)
        none_failed = await a.call(
            "DELETE", f"/instances?createdTimeFrom={since}&runtimeStatus=Failed"
        )
        assert none_failed.status == 404
        response = await a.call("DELETE", f"/instances/?createdTimeFrom={since}")
        assert response.status == 200
        assert await response.json() == {"instancesDeleted": 3}
        remaining, _ = await a.client.list_instances()
        assert [s.instance_id for s in remaining] == ["f-running"]
        assert (await a.call("DELETE", f"/instances?createdTimeFrom={since}")).status == 404
