"""`context.call_http` end to end: the built-in HTTP activity against a local server, the 202 +
Location polling loop with durable timers, a request that cannot be made, and a managed-identity
token from a local token endpoint. Nothing leaves 127.0.0.1."""

from __future__ import annotations

import functools
import json
import secrets
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from azure.identity.aio import DefaultAzureCredential

import durable_ext as df
from durable_ext import DurableOrchestrationContext, OrchestrationRuntimeStatus
from durable_ext.orchestration.executor import ReplayOptions
from durable_ext.orchestration.history import TaskScheduled, TimerCreated
from durable_ext.worker import FunctionRegistry
from tests.token_server import STORAGE_AUDIENCE, Certificates, TokenServer, make_certificates

IDENTITY_HEADER = secrets.token_hex(16)
MI_CLIENT_ID = "44444444-4444-4444-8444-444444444444"


class Service:
    """A local HTTP service: `/echo` answers 200 with what it got; `/jobs` accepts a job (202 +
    Location, `Retry-After: 1`), whose status answers 202 (no Retry-After) twice more, then 200."""

    def __init__(self) -> None:
        self.polls = 0
        self.seen: list[dict[str, Any]] = []
        app = web.Application()
        app.router.add_route("*", "/echo", self.echo)
        app.router.add_post("/jobs", self.accept)
        app.router.add_get("/jobs/1", self.status)
        self.runner = web.AppRunner(app)
        self.base = ""

    async def start(self) -> None:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base = f"http://127.0.0.1:{port}"

    async def echo(self, request: web.Request) -> web.Response:
        seen = {
            "method": request.method,
            "contentType": request.headers.get("Content-Type"),
            "body": await request.text(),
            "authorization": request.headers.get("Authorization"),
            "custom": request.headers.get("X-Custom"),
        }
        self.seen.append(seen)
        return web.json_response(seen, headers={"X-Reply": "yes"})

    async def accept(self, request: web.Request) -> web.Response:
        self.seen.append({"method": "POST", "functionsKey": request.headers.get("x-functions-key")})
        headers = {"Location": f"{self.base}/jobs/1", "Retry-After": "1"}
        return web.Response(status=202, headers=headers)

    async def status(self, request: web.Request) -> web.Response:
        self.polls += 1
        self.seen.append({"method": "GET", "functionsKey": request.headers.get("x-functions-key")})
        if self.polls < 3:
            return web.Response(status=202, headers={"Location": f"{self.base}/jobs/1"})
        return web.json_response({"done": True})


@pytest.fixture
async def service() -> AsyncIterator[Service]:
    server = Service()
    await server.start()
    yield server
    await server.runner.cleanup()


def call(ctx: DurableOrchestrationContext):
    args = ctx.get_input()
    token = args.pop("token", None)
    source = df.ManagedIdentityTokenSource(token) if token else None
    try:
        response = yield ctx.call_http(token_source=source, **args)
    except df.TaskFailedError as error:
        return {"failed": str(error)}
    return response


def registry() -> FunctionRegistry:
    reg = FunctionRegistry()
    reg.add_orchestrator("call", call)
    return reg


async def run(rt: Any, args: dict[str, Any]) -> tuple[Any, list[Any]]:
    instance_id = await rt.client.start_new("call", client_input=args)
    status = await rt.client.wait_for_completion(instance_id, timeout=60)
    assert status.runtime_status is OrchestrationRuntimeStatus.Completed, status.output
    return status.output, await rt.client.get_history(instance_id)


async def test_a_200_is_the_result_and_content_is_sent_as_given(runtime, service) -> None:
    async with runtime(registry()) as rt:
        answer, history = await run(
            rt,
            {
                "method": "POST",
                "uri": f"{service.base}/echo",
                "content": {"n": 1},
                "headers": {"Content-Type": "application/json", "X-Custom": "c"},
            },
        )
        raw, _ = await run(
            rt, {"method": "PUT", "uri": f"{service.base}/echo", "content": "plain text"}
        )
    assert answer["statusCode"] == 200
    assert answer["headers"]["X-Reply"] == "yes"
    assert json.loads(answer["content"]) == {
        "method": "POST",
        "contentType": "application/json",
        "body": '{"n": 1}',
        "authorization": None,
        "custom": "c",
    }
    assert json.loads(raw["content"])["body"] == "plain text"
    assert json.loads(raw["content"])["contentType"] == "text/plain"
    scheduled = [e for e in history if isinstance(e, TaskScheduled)]
    assert [e.name for e in scheduled] == ["BuiltIn::HttpActivity"]
    request = json.loads(scheduled[0].input or "")
    assert request[0]["uri"] == f"{service.base}/echo"
    assert request[0]["asynchronousPatternEnabled"] is True


@pytest.mark.parametrize("cache", [1000, 0], ids=["cached", "replayed"])
async def test_a_202_is_polled_at_its_location_with_durable_timers(
    runtime, service, cache: int
) -> None:
    args = {
        "method": "POST",
        "uri": f"{service.base}/jobs",
        "headers": {"x-functions-key": "secret", "X-Custom": "kept"},
    }
    sleep = ReplayOptions(http_async_sleep=timedelta(milliseconds=300))
    async with runtime(registry(), replay=sleep, instance_cache_size=cache) as rt:
        answer, history = await run(rt, args)
        not_polled, _ = await run(rt, {**args, "asynchronous_pattern_enabled": False})
    assert answer["statusCode"] == 200 and json.loads(answer["content"]) == {"done": True}
    assert service.polls == 3
    timers = [e for e in history if isinstance(e, TimerCreated)]
    scheduled = [e for e in history if isinstance(e, TaskScheduled)]
    assert len(timers) == 3 and len(scheduled) == 4
    polls = [json.loads(e.input or "")[0] for e in scheduled[1:]]
    assert {(p["method"], p["uri"]) for p in polls} == {("GET", f"{service.base}/jobs/1")}
    assert all(p["headers"] == {"X-Custom": "kept"} for p in polls)
    assert [s["functionsKey"] for s in service.seen[:4]] == ["secret", None, None, None]
    delays = [(t.fire_at - t.timestamp).total_seconds() for t in timers if t.fire_at]
    assert delays == pytest.approx([1, 0.3, 0.3], abs=0.01)  # Retry-After, then the default
    assert not_polled["statusCode"] == 202


async def test_a_request_that_cannot_be_made_fails_the_task(runtime, unused_tcp_port) -> None:
    async with runtime(registry()) as rt:
        answer, _ = await run(rt, {"method": "GET", "uri": f"http://127.0.0.1:{unused_tcp_port}/"})
    assert answer["failed"].startswith("Activity function 'BuiltIn::HttpActivity' failed:")
    assert f"Cannot connect to host 127.0.0.1:{unused_tcp_port}" in answer["failed"]


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def token_server(certificates: Certificates) -> Iterator[TokenServer]:
    with TokenServer(
        certificates,
        tenant="72f988bf-0000-4000-8000-00000000beef",
        identity_header=IDENTITY_HEADER,
        client_secrets={},
        managed_identities={},
    ) as server:
        yield server


async def test_a_managed_identity_token_source_adds_a_bearer_token(
    runtime,
    service,
    token_server: TokenServer,
    certificates: Certificates,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IDENTITY_ENDPOINT", token_server.identity_endpoint)
    monkeypatch.setenv("IDENTITY_HEADER", IDENTITY_HEADER)
    monkeypatch.setenv("AZURE_CLIENT_ID", MI_CLIENT_ID)
    credential = functools.partial(DefaultAzureCredential, connection_verify=str(certificates.ca))
    args = {"method": "GET", "uri": f"{service.base}/echo", "token": STORAGE_AUDIENCE}
    async with runtime(registry(), http_credential=credential) as rt:
        answer, _ = await run(rt, args)
    authorization = json.loads(answer["content"])["authorization"]
    issued = token_server.issued("managed identity")
    assert len(issued) == 1 and issued[0].parameters["resource"] == STORAGE_AUDIENCE
    assert authorization.startswith("Bearer ") and len(authorization) > 40


def test_token_scopes_follow_the_extension() -> None:
    from durable_ext.worker.http_activity import token_scope

    assert token_scope("https://management.core.windows.net/") == (
        "https://management.core.windows.net/.default"
    )
    assert token_scope(STORAGE_AUDIENCE) == STORAGE_AUDIENCE
