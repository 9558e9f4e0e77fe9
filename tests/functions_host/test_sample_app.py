"""The repository's sample app (function_app/) through the fake host, as Azure would run it.

Issue 11 is about what breaks here; the `xfail(strict=True)` test states what point 2 must make
true, and turns into a failure (XPASS) once it is, so the marker goes away with the fix.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

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
    assert {
        (fn.name, fn.route, fn.methods, fn.auth_level) for fn in sample_host.index.functions
    } == {
        ("http_start", "orchestrators/{functionName}", ("POST",), "anonymous"),
        ("http_start_and_wait", "orchestrators/{functionName}/wait", ("GET", "POST"), "anonymous"),
        ("start_cleanup", "cleanup", ("POST",), "anonymous"),
    }
    async with (
        aiohttp.ClientSession() as http,
        http.post(sample_host.url("orchestrators/hello_sequence/wait?timeout=15")) as response,
    ):
        assert response.status == 200, await response.text()
        assert await response.json() == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]


@pytest.mark.xfail(
    strict=True,
    reason="issue 11 point 2: statusQueryGetUri points at /runtime/webhooks/durabletask/..., "
    "which only the Durable Functions extension serves; an app function cannot (reserved prefix)",
)
async def test_the_status_url_of_the_starter_answers_through_the_host(
    sample_host: FakeHost,
) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(sample_host.url("orchestrators/hello_sequence")) as started:
            assert started.status == 202
            links = await started.json()
        async with http.get(links["statusQueryGetUri"]) as status:
            assert status.status == 200
