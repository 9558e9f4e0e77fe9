"""The entity routes: signal (POST, DELETE), read one entity's state, list entities by name."""

from __future__ import annotations

from typing import Any

from tests.wait import wait_for
from tests.worker.entity_apps import app


async def test_signal_read_and_list_over_http(api: Any) -> None:
    async with api(app.durable_registry) as a:
        assert (await a.call("GET", "/entities/Counter/h1")).status == 404
        for amount in (1, 2, 3):
            response = await a.call("POST", "/entities/Counter/h1?op=add", json=amount)
            assert response.status == 202
            assert await response.read() == b""
        assert (await a.call("POST", "/entities/Account/h1?op=deposit", json=9)).status == 202

        async def counter_is(value: int) -> bool:
            response = await a.call("GET", "/entities/Counter/h1")
            return response.status == 200 and await response.json() == value

        await wait_for(lambda: counter_is(6), 30)
        await wait_for(lambda: _listed(a, "/entities/Account?fetchState=true"), 30)
        listed = await a.call("GET", "/entities/Counter?fetchState=true")
        assert listed.headers["x-ms-continuation-token"] == ""
        body = await listed.json()
        assert [(e["entityId"], e["state"]) for e in body] == [
            ({"name": "counter", "key": "h1"}, 6)
        ]
        everything = await (await a.call("GET", "/entities")).json()
        assert sorted(e["entityId"]["name"] for e in everything) == ["account", "counter"]
        assert all(e["state"] is None for e in everything)  # no fetchState

        assert (await a.call("DELETE", "/entities/Counter/h1")).status == 202
        await wait_for(lambda: _gone(a, "/entities/Counter/h1"), 30)


async def _listed(a: Any, path: str) -> bool:
    return bool(await (await a.call("GET", path)).json())


async def _gone(a: Any, path: str) -> bool:
    return (await a.call("GET", path)).status == 404


async def test_bad_entity_requests_answer_400_and_send_nothing(api: Any) -> None:
    async with api(app.durable_registry, run_worker=False) as a:
        for method, path, kwargs in (
            ("POST", "/entities/NoSuchEntity/k?op=add", {}),
            ("POST", "/entities/Counter/a%23b?op=add", {}),
            ("POST", "/entities/Counter?op=add", {}),
            ("POST", "/entities/Counter/k?op=add", {"data": b"{", "headers": _JSON}),
            ("DELETE", "/entities", {}),
        ):
            response = await a.call(method, path, **kwargs)
            assert response.status == 400, (method, path, await response.text())
            assert (await response.json())["error"]
        for queue in a.runtime.hub.control_queues:
            assert not await queue.count(), queue.name


_JSON = {"Content-Type": "application/json"}
