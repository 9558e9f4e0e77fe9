"""The management functions' keys under `durable-ext start`: read once by the host (the
`settings_once` lever, on by default) or from the environment on every request (off); and the
levers' app settings."""

from __future__ import annotations

from collections.abc import Iterator

import azure.functions as func
import pytest

from durable_ext import http_api
from durable_ext.client import DurableOrchestrationClient
from durable_ext.host.local_host import api_levers
from durable_ext.http_api import ApiLevers
from durable_ext.management_functions import serve, set_host_keys


@pytest.fixture(autouse=True)
def _no_host_keys() -> Iterator[None]:
    yield
    set_host_keys(None)


async def _no_engine() -> DurableOrchestrationClient:
    raise RuntimeError("no engine in this test")


async def _status(code: str | None) -> int:
    request = func.HttpRequest(
        method="GET",
        url="http://127.0.0.1:7071/api/durabletask/instances/x",
        headers={},
        params={"code": code} if code else {},
        route_params={"instanceId": "x"},
        body=b"",
    )
    response = await serve(http_api.instance, request, _no_engine, lambda: None)
    return response.status_code  # 401: refused; 503: past the key check, no engine


@pytest.mark.parametrize("host_keys", [True, False])
async def test_keys_come_from_the_host_or_else_from_the_environment(
    host_keys: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DURABLE_EXT_SYSTEM_KEY", "from-the-environment")
    if host_keys:
        set_host_keys(("from-the-host", None))

    assert await _status(None) == 401
    assert await _status("from-the-host") == (503 if host_keys else 401)
    assert await _status("from-the-environment") == (401 if host_keys else 503)


def test_the_api_levers_are_on_unless_an_app_setting_says_false() -> None:
    assert api_levers({}) == ApiLevers(raise_reads_once=True, settings_once=True)
    assert api_levers(
        {"DURABLE_EXT_HTTP_RAISE_READS_ONCE": "False", "durable_ext_http_settings_once": "false"}
    ) == ApiLevers(raise_reads_once=False, settings_once=False)
    assert api_levers({"DURABLE_EXT_HTTP_SETTINGS_ONCE": "true"}).settings_once
