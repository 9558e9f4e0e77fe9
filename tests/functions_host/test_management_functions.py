"""The management API as the app's own functions, through the fake host as Azure would run it.

The sample app (function_app/) is started the way the Python worker starts it; every request goes
through the host's routing and key checks to an indexed function. The management key is the app
setting DURABLE_EXT_SYSTEM_KEY, checked by the (anonymous) management functions themselves.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiohttp
import pytest

from durable_ext.management_functions import MANAGEMENT_FUNCTIONS
from tests.azurite import AzuriteInstance
from tests.functions_host import FakeHost
from tests.functions_host.conftest import APPS
from tests.sample_app.host_process import REPO_ROOT, make_app_root

KEY = "mgmt-" + secrets.token_urlsafe(24)
TIMEOUT = 30.0


def sample_app_root(tmp_path: Path, azurite: AzuriteInstance) -> Path:
    return make_app_root(
        tmp_path / "app",
        code=[REPO_ROOT / "function_app", REPO_ROOT / "function_app.py"],
        hub_name="Mgmt" + secrets.token_hex(4),
        connection_string=azurite.connection_string,
    )


@pytest.fixture
async def keyed_sample_host(azurite: AzuriteInstance, tmp_path: Path) -> AsyncIterator[FakeHost]:
    """The sample app with a management key, as an app setting."""
    settings = {"AzureWebJobsStorage": azurite.connection_string, "DURABLE_EXT_SYSTEM_KEY": KEY}
    async with FakeHost(sample_app_root(tmp_path, azurite), app_settings=settings) as host:
        yield host


def without_key(url: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "code"]
    return urlunsplit(parts._replace(query=urlencode(query)))


async def poll(
    http: aiohttp.ClientSession, url: str, until: Callable[[int, Any], bool]
) -> tuple[int, Any]:
    """GET `url` until `until(status, json)` holds (deadline TIMEOUT)."""
    deadline = asyncio.get_running_loop().time() + TIMEOUT
    while True:
        async with http.get(url) as response:
            status, body = response.status, await response.json()
        if until(status, body):
            return status, body
        assert asyncio.get_running_loop().time() < deadline, (status, body)
        await asyncio.sleep(0.1)


async def test_start_follow_status_raise_event_and_complete_through_the_host(
    keyed_sample_host: FakeHost,
) -> None:
    host = keyed_sample_host
    indexed = {fn.name: (fn.route, fn.auth_level) for fn in host.index.functions}
    for name, _, route, _ in MANAGEMENT_FUNCTIONS:
        assert indexed[name] == (route, "anonymous")
    request = {"requestId": "PO-7", "amount": 10}
    async with aiohttp.ClientSession() as http:
        async with http.post(host.url("orchestrators/approval_workflow"), json=request) as started:
            assert started.status == 202, await started.text()
            links = await started.json()
        status_uri = links["statusQueryGetUri"]
        assert status_uri.startswith(f"{host.url('durabletask/instances')}/{links['id']}?")
        assert f"code={KEY}" in status_uri and f"code={KEY}" in links["sendEventPostUri"]

        status, body = await poll(http, status_uri, lambda s, b: b["runtimeStatus"] == "Running")
        assert status == 202
        assert host.invocations.of("durabletask_instance")
        async with http.get(without_key(status_uri)) as refused:
            assert refused.status == 401
        async with http.get(status_uri.replace(KEY, KEY[:-1] + "x")) as wrong:
            assert wrong.status == 401

        event_uri = links["sendEventPostUri"].replace("{eventName}", "ApprovalEvent")
        async with http.post(without_key(event_uri), json=True) as refused:
            assert refused.status == 401
        async with http.post(event_uri, json=True) as raised:
            assert raised.status == 202, await raised.text()
        assert host.invocations.of("durabletask_raise_event")

        status, body = await poll(http, status_uri, lambda s, b: s == 200)
        assert body["runtimeStatus"] == "Completed"
        assert body["output"] == "Approved: PO-7"


async def test_in_azure_without_a_key_the_management_functions_refuse_everything(
    azurite: AzuriteInstance, tmp_path: Path
) -> None:
    settings = {
        "AzureWebJobsStorage": azurite.connection_string,
        "WEBSITE_INSTANCE_ID": "0123abcd",
    }
    async with (
        FakeHost(sample_app_root(tmp_path, azurite), app_settings=settings) as host,
        aiohttp.ClientSession() as http,
    ):
        for method, route in (
            ("GET", "durabletask/instances"),
            ("GET", "durabletask/instances/x"),
            ("POST", "durabletask/orchestrators/hello_sequence"),
            ("POST", "durabletask/instances/x/terminate"),
        ):
            async with http.request(method, host.url(route)) as response:
                assert response.status == 401, (method, route)


async def test_in_azure_the_urls_name_the_app_not_localhost(
    azurite: AzuriteInstance, tmp_path: Path
) -> None:
    """The fake host listens on 127.0.0.1: a loopback request URL gives way to WEBSITE_HOSTNAME."""
    settings = {
        "AzureWebJobsStorage": azurite.connection_string,
        "DURABLE_EXT_SYSTEM_KEY": KEY,
        "WEBSITE_HOSTNAME": "myapp.azurewebsites.net",
    }
    public = "https://myapp.azurewebsites.net/api/durabletask/instances/"
    async with (
        FakeHost(sample_app_root(tmp_path, azurite), app_settings=settings) as host,
        aiohttp.ClientSession() as http,
    ):
        async with http.post(host.url("orchestrators/hello_sequence")) as started:
            assert started.status == 202, await started.text()
            links = await started.json()
        async with http.post(
            host.url("durabletask/orchestrators/hello_sequence"), params={"code": KEY}
        ) as started_by_api:
            assert started_by_api.status == 202, await started_by_api.text()
            api_links = await started_by_api.json()
        for payload in (links, api_links):
            for name, uri in payload.items():
                if name != "id":
                    assert uri.startswith(public + payload["id"]), (name, uri)
                    assert f"code={KEY}" in uri
        local = links["statusQueryGetUri"].replace("https://myapp.azurewebsites.net", host.base_url)
        status, body = await poll(http, local, lambda s, b: s == 200)
        assert body["output"] == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]


async def test_management_calls_answer_503_while_the_engine_cannot_run(tmp_path: Path) -> None:
    """No host.json in Azure: the engine refuses to start (it would run another task hub). The
    key is checked first: without it 401 (nothing learnt); with it 503 with the reason."""
    app = tmp_path / "app"
    app.mkdir()
    shutil.copy2(APPS / "activity_context" / "function_app.py", app / "function_app.py")
    settings = {
        "AzureWebJobsStorage": "UseDevelopmentStorage=true",
        "WEBSITE_SITE_NAME": "myapp",
        "DURABLE_EXT_SYSTEM_KEY": KEY,
    }
    async with FakeHost(app, app_settings=settings) as host, aiohttp.ClientSession() as http:
        async with http.get(host.url("durabletask/instances")) as refused:
            assert refused.status == 401
        async with http.get(host.url("durabletask/instances"), params={"code": KEY}) as down:
            assert down.status == 503
            assert "host.json not found" in (await down.json())["error"]


async def test_the_dashboard_is_served_by_the_app_and_reads_through_the_keyed_api(
    azurite: AzuriteInstance, tmp_path: Path
) -> None:
    """In Azure the page is the app's `durabletask_dashboard` function (no key: no data), its
    read endpoints are management functions behind the key, and DURABLE_EXT_DASHBOARD=read-only
    marks the page so it offers no actions."""
    settings = {
        "AzureWebJobsStorage": azurite.connection_string,
        "DURABLE_EXT_SYSTEM_KEY": KEY,
        "DURABLE_EXT_DASHBOARD": "read-only",
        "WEBSITE_INSTANCE_ID": "0123abcd",
    }
    async with (
        FakeHost(sample_app_root(tmp_path, azurite), app_settings=settings) as host,
        aiohttp.ClientSession() as http,
    ):
        async with http.get(host.url("durabletask/dashboard"), allow_redirects=False) as moved:
            assert moved.status == 301
            assert moved.headers["Location"].endswith("/durabletask/dashboard/")
        async with http.get(host.url("durabletask/dashboard/")) as page:
            assert page.status == 200 and page.content_type == "text/html"
            assert "default-src 'none'" in page.headers["Content-Security-Policy"]
            assert 'data-read-only="true"' in await page.text()
        async with http.get(host.url("durabletask/dashboard/app.mjs")) as script:
            assert script.status == 200 and script.content_type == "text/javascript"
        async with http.get(host.url("durabletask/orchestrators")) as refused:
            assert refused.status == 401
        async with http.get(host.url(f"durabletask/orchestrators?code={KEY}")) as listed:
            assert listed.status == 200, await listed.text()
            assert "hello_sequence" in (await listed.json())["orchestrators"]
        async with http.get(host.url(f"durabletask/taskhub?code={KEY}")) as hub:
            assert hub.status == 200, await hub.text()
            assert len((await hub.json())["partitions"]) == (await hub.json())["partitionCount"]
