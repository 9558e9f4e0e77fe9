"""The repository's sample app (function_app/) through the fake host, as Azure would run it
(the management functions: test_management_functions.py)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from durable_ext.management_functions import (
    DASHBOARD_FUNCTION,
    DASHBOARD_ROUTE,
    MANAGEMENT_FUNCTIONS,
)
from tests.azurite import AzuriteInstance
from tests.functions_host import FakeHost
from tests.sample_app.host_process import REPO_ROOT, make_app_root


@pytest.fixture
async def sample_host(azurite: AzuriteInstance, tmp_path: Path) -> AsyncIterator[FakeHost]:
    """The sample app in a copy of the repository's app root, on a task hub of its own."""
    app_root = make_app_root(
        tmp_path / "app",
        code=[REPO_ROOT / "function_app", REPO_ROOT / "function_app.py"],
        hub_name="Fake" + secrets.token_hex(4),
        connection_string=azurite.connection_string,
    )
    settings = {"AzureWebJobsStorage": azurite.connection_string}
    async with FakeHost(app_root, app_settings=settings) as host:
        yield host


async def test_the_sample_app_indexes_and_runs_an_orchestration_through_its_starter(
    sample_host: FakeHost,
) -> None:
    functions = sample_host.index.functions
    assert {(fn.name, fn.schedule) for fn in functions if fn.trigger_type == "timerTrigger"} == {
        ("durabletask_heartbeat", "*/30 * * * * *")
    }
    assert {
        (fn.name, fn.route, fn.methods, fn.auth_level)
        for fn in functions
        if fn.trigger_type == "httpTrigger"
    } == {
        ("http_start", "orchestrators/{functionName}", ("POST",), "anonymous"),
        ("http_start_and_wait", "orchestrators/{functionName}/wait", ("GET", "POST"), "anonymous"),
        ("start_cleanup", "cleanup", ("POST",), "anonymous"),
        ("add_to_counter", "counters/{key}/add", ("POST",), "anonymous"),
        ("read_counter", "counters/{key}", ("GET",), "anonymous"),
        *((name, route, methods, "anonymous") for name, methods, route, _ in MANAGEMENT_FUNCTIONS),
        (DASHBOARD_FUNCTION, DASHBOARD_ROUTE, ("GET",), "anonymous"),
        ("durabletask_health", "durabletask/health", ("GET",), "function"),
    }
    async with (
        aiohttp.ClientSession() as http,
        http.post(sample_host.url("orchestrators/hello_sequence/wait?timeout=15")) as response,
    ):
        assert response.status == 200, await response.text()
        assert await response.json() == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]
