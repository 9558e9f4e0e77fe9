"""HTTP through the fake host: routes under routePrefix, methods, keys by auth level, and the
request/response conversion of host and worker."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.functions_host import FakeHost, HostKeys
from tests.functions_host.conftest import APPS

KEYS = HostKeys(
    master="master-key",
    host={"default": "host-key"},
    system={"durabletask_extension": "system-key"},
    functions={"order": {"default": "order-key"}, "reset": {"default": "reset-key"}},
)


@pytest.fixture
async def host() -> AsyncIterator[FakeHost]:
    async with FakeHost(
        APPS / "rules", keys=KEYS, app_settings={"TICK_SCHEDULE": "0 0 0 1 1 *"}
    ) as running:
        yield running


async def _status(http: aiohttp.ClientSession, method: str, url: str, **kwargs: object) -> int:
    async with http.request(method, url, **kwargs) as response:  # type: ignore[arg-type]
        return response.status


async def test_anonymous_function_needs_no_key_and_gets_the_worker_request(
    host: FakeHost, http: aiohttp.ClientSession
) -> None:
    async with http.get(host.url("hello") + "?a=1&a=2&empty=", headers={"X-Two": "b"}) as r:
        assert r.status == 200
        assert r.headers["content-type"] == "application/json"
        echoed = json.loads(await r.text())
    assert echoed["method"] == "GET"
    assert echoed["url"] == f"{host.base_url}/api/hello?a=1&a=2&empty="
    assert echoed["params"] == {"a": "1,2"}
    assert echoed["headers"]["x-two"] == "b"
    assert echoed["function_name"] == "hello"
    [invocation] = host.invocations.of("hello")
    assert (invocation.invocation_id, invocation.succeeded) == (echoed["invocation_id"], True)


async def test_function_level_needs_a_function_host_or_master_key(
    host: FakeHost, http: aiohttp.ClientSession
) -> None:
    url = host.url("orders/42")
    assert await _status(http, "GET", url) == 401
    assert await _status(http, "GET", url + "?code=wrong") == 401
    assert await _status(http, "GET", url + "?code=system-key") == 401
    assert await _status(http, "GET", url + "?code=reset-key") == 401  # another function's key
    for key in ("order-key", "host-key", "master-key"):
        assert await _status(http, "GET", f"{url}?code={key}") == 200
        assert await _status(http, "GET", url, headers={"x-functions-key": key}) == 200
    assert host.invocations.of("order")[-1].succeeded


async def test_admin_level_needs_the_master_key(
    host: FakeHost, http: aiohttp.ClientSession
) -> None:
    url = host.url("manage/reset")
    for key in ("reset-key", "host-key", "system-key"):
        assert await _status(http, "POST", f"{url}?code={key}") == 401
    async with http.post(url, headers={"x-functions-key": "master-key"}) as r:
        assert (r.status, await r.text()) == (200, "reset")
        assert r.headers["content-type"] == "text/plain; charset=utf-8"


async def test_routes_methods_and_route_values(host: FakeHost, http: aiohttp.ClientSession) -> None:
    headers = {"x-functions-key": "order-key"}
    async with http.post(host.url("ORDERS/7/lines"), data=b"hi", headers=headers) as r:
        assert r.status == 201
        assert await r.json() == {"route": {"id": "7", "part": "lines"}, "body": "hi"}
    async with http.get(host.url("orders/7"), headers=headers) as r:
        assert await r.json() == {"route": {"id": "7"}, "body": ""}
    assert await _status(http, "DELETE", host.url("orders/7"), headers=headers) == 404
    assert await _status(http, "GET", host.url("orders/seven"), headers=headers) == 404
    assert await _status(http, "POST", host.url("hello")) == 404
    assert await _status(http, "GET", f"{host.base_url}/hello") == 404  # outside routePrefix


async def test_a_failing_function_answers_500(host: FakeHost, http: aiohttp.ClientSession) -> None:
    assert await _status(http, "GET", host.url("broken")) == 500
    [failed] = host.invocations.of("broken")
    assert isinstance(failed.error, RuntimeError)


async def test_generated_keys_and_a_route_prefix_from_host_json(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    root = tmp_path
    (root / "function_app.py").write_text((APPS / "rules" / "function_app.py").read_text())
    (root / "host.json").write_text(
        json.dumps({"version": "2.0", "extensions": {"http": {"routePrefix": ""}}})
    )
    async with FakeHost(root, app_settings={"TICK_SCHEDULE": "0 0 0 1 1 *"}) as host:
        url = f"{host.base_url}/orders/1"
        assert host.url("orders/1") == url
        assert await _status(http, "GET", url) == 401
        assert await _status(http, "GET", f"{url}?code={host.keys.function_key('order')}") == 200
        assert await _status(http, "GET", f"{url}?code={host.keys.host['default']}") == 200


async def test_a_disabled_function_answers_404_except_to_the_master_key(
    http: aiohttp.ClientSession,
) -> None:
    settings = {"TICK_SCHEDULE": "0 0 0 1 1 *", "AzureWebJobs.hello.Disabled": "true"}
    async with FakeHost(APPS / "rules", keys=KEYS, app_settings=settings) as host:
        assert await _status(http, "GET", host.url("hello")) == 404
        assert await _status(http, "GET", host.url("hello") + "?code=master-key") == 200
