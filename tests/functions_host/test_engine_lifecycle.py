"""The embedded engine's lifecycle through the fake host: import never waits for storage, the
health function reports the engine, the heartbeat timer restarts it and holds while work is in
flight, and one engine runs per instance however many worker processes import the app."""

from __future__ import annotations

import json
import os
import secrets
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from durable_ext.host.embedded import engine_status, stop_embedded
from durable_ext.host.engine_status import EngineState
from durable_ext.runtime import Runtime
from durable_ext.worker import FunctionRegistry
from tests.azurite import AzuriteInstance
from tests.functions_host import FakeHost, ManualClock
from tests.functions_host.worker_process import worker_processes
from tests.sample_app.host_process import REPO_ROOT, make_app_root
from tests.wait import wait_for

HEALTH = "durabletask/health"
HEARTBEAT = "durabletask_heartbeat"


def sample_app_root(
    tmp_path: Path, storage: AzuriteInstance, durable_ext: dict[str, str] | None = None
) -> tuple[Path, str]:
    """The sample app on a hub of its own; `durable_ext` goes to host.json's
    extensions.durableTask.durableExt (lease timings)."""
    hub = "Life" + secrets.token_hex(4)
    root = make_app_root(
        tmp_path / "app",
        code=[REPO_ROOT / "function_app", REPO_ROOT / "function_app.py"],
        hub_name=hub,
        connection_string=storage.connection_string,
    )
    if durable_ext:
        host_json = json.loads((root / "host.json").read_text())
        host_json["extensions"]["durableTask"]["durableExt"] = durable_ext
        (root / "host.json").write_text(json.dumps(host_json))
    return root, hub


async def health(http: aiohttp.ClientSession, base_url: str, key: str) -> tuple[int, Any]:
    async with http.get(f"{base_url}/api/{HEALTH}", params={"code": key}) as response:
        return response.status, await response.json()


@asynccontextmanager
async def observer(storage: AzuriteInstance, hub: str) -> AsyncIterator[Runtime]:
    """A client on the hub that runs no worker: reads progress from storage, not over HTTP."""
    async with Runtime(
        FunctionRegistry(), connection=storage.connection_string, hub=hub, run_worker=False
    ) as runtime:
        yield runtime


async def test_the_app_indexes_with_storage_down_and_its_engine_starts_when_storage_is_back(
    private_azurite: AzuriteInstance, tmp_path: Path
) -> None:
    root, _ = sample_app_root(tmp_path, private_azurite)
    private_azurite.stop()
    settings = {"AzureWebJobsStorage": private_azurite.connection_string}
    began = time.monotonic()
    async with (
        FakeHost(root, app_settings=settings, clock=ManualClock()) as host,
        aiohttp.ClientSession() as http,
    ):
        assert time.monotonic() - began < 5, "importing the app waited for storage"
        key = host.keys.function_key("durabletask_health")
        async with http.get(host.url(HEALTH)) as response:
            assert response.status == 401  # FUNCTION level: no key, no answer

        async def failed() -> Any:
            status, body = await health(http, host.base_url, key)
            return body if body["state"] == "failed" else None

        body = await wait_for(failed, timeout=90)
        assert body["lastError"] and body["failedAttempts"] >= 1
        assert body["unavailableReason"].startswith("the durable engine cannot start: ")
        assert (await health(http, host.base_url, key))[0] == 503
        async with http.get(host.url("durabletask/instances")) as response:
            assert response.status == 503  # the management API says why, too
            assert (await response.json())["error"].startswith("The durable engine cannot start: ")

        private_azurite.start()
        await host.fire_timer(HEARTBEAT)  # retries at once instead of after the back-off

        async def running() -> Any:
            status, body = await health(http, host.base_url, key)
            return (status, body) if body["ownedPartitions"] == [0, 1, 2, 3] else None

        status, body = await wait_for(running, timeout=60)
        assert status == 200 and body["state"] == "running" and body["unavailableReason"] is None
        assert body["backlog"]["error"] is None
        async with http.post(host.url("orchestrators/hello_sequence/wait?timeout=30")) as response:
            assert response.status == 200, await response.text()
            assert await response.json() == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]


async def test_a_durable_timer_fires_with_no_http_traffic_once_the_heartbeat_restarts_the_engine(
    azurite: AzuriteInstance, tmp_path: Path
) -> None:
    root, hub = sample_app_root(tmp_path, azurite)
    clock = ManualClock()
    settings = {"AzureWebJobsStorage": azurite.connection_string}
    async with (
        FakeHost(root, app_settings=settings, clock=clock) as host,
        observer(azurite, hub) as storage,
        aiohttp.ClientSession() as http,
    ):
        job = {"jobId": "j1", "pollingIntervalSeconds": 3, "completeAfterChecks": 2}
        async with http.post(host.url("orchestrators/job_monitor"), json=job) as response:
            assert response.status == 202, await response.text()
            instance_id = (await response.json())["id"]

        async def its_timer_fire_time() -> datetime | None:
            status = await storage.client.get_status(instance_id, show_history=True)
            fire_at = [e["FireAt"] for e in status.history or [] if "FireAt" in e]
            return datetime.fromisoformat(fire_at[0].replace("Z", "+00:00")) if fire_at else None

        fire_at = await wait_for(its_timer_fire_time, timeout=30)
        # The engine goes away (as its thread does when the platform idles the instance) and
        # no HTTP request comes; the timer comes due meanwhile. Only the heartbeat's schedule
        # comes next.
        stop_embedded(host.register)
        assert engine_status(host.register).state is EngineState.STOPPED
        await wait_for(lambda: datetime.now(UTC) > fire_at + timedelta(seconds=1), timeout=30)
        clock.advance(timedelta(seconds=30))
        beat = await host.invocations.wait_for(lambda i: i.function == HEARTBEAT, timeout=90)
        assert beat.succeeded
        # The heartbeat held its execution until the work it restarted was done.
        status = await storage.client.get_status(instance_id)
        assert status is not None and status.runtime_status is not None
        assert status.runtime_status.value == "Completed", status
        assert status.output == {"jobId": "j1", "status": "Completed", "checks": 2}


async def one_engine(http: aiohttp.ClientSession, infos: list[Any]) -> tuple[Any, Any] | None:
    """(the running process, the standby one) once exactly one runs the engine on every
    partition and the other is client-only."""
    bodies = [(await health(http, info["url"], info["health_key"]))[1] for info in infos]
    states = sorted(body["state"] for body in bodies)
    if states != ["running", "standby"]:
        return None
    running = next(i for i, b in zip(infos, bodies, strict=True) if b["state"] == "running")
    standby = next(i for i, b in zip(infos, bodies, strict=True) if b["state"] == "standby")
    running_body = bodies[infos.index(running)]
    if running_body["ownedPartitions"] != [0, 1, 2, 3]:
        return None
    assert bodies[infos.index(standby)]["enginePid"] == running["pid"]
    return running, standby


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["term", "int"])
async def test_two_worker_processes_run_one_engine_and_a_stop_signal_hands_it_over_at_once(
    azurite: AzuriteInstance, tmp_path: Path, stop_signal: signal.Signals
) -> None:
    root, hub = sample_app_root(tmp_path, azurite)
    settings = {"AzureWebJobsStorage": azurite.connection_string}
    with worker_processes(root, settings, 2) as infos:
        async with aiohttp.ClientSession() as http, observer(azurite, hub) as storage:
            running, standby = await wait_for(lambda: one_engine(http, infos), timeout=60)
            job = {"jobId": "j2", "pollingIntervalSeconds": 4, "completeAfterChecks": 3}
            url = f"{running['url']}/api/orchestrators/job_monitor"
            async with http.post(url, json=job) as response:
                assert response.status == 202, await response.text()
                instance_id = (await response.json())["id"]

            async def standby_sees_the_timer() -> bool:
                body = (await health(http, standby["url"], standby["health_key"]))[1]
                return body.get("nextTimerInSeconds") is not None

            # A heartbeat that lands in the client-only process holds for the engine's work too.
            await wait_for(standby_sees_the_timer, timeout=30)
            run = f"{standby['url']}/admin/functions/{HEARTBEAT}"
            async with http.post(run, headers={"x-functions-key": standby["master_key"]}) as ran:
                assert ran.status == 202

            seen: list[Any] = []

            async def standby_holds() -> bool:
                seen.append((await health(http, standby["url"], standby["health_key"]))[1])
                return seen[-1]["holdingInvocations"] == 1

            try:
                await wait_for(standby_holds, timeout=30)
            except TimeoutError:
                raise AssertionError(f"the standby's heartbeat never held: {seen[-3:]}") from None
            began = time.monotonic()
            os.kill(running["pid"], stop_signal)
            # The signal's own effect follows the engine's stop: SIGTERM's default action; for
            # SIGINT, asyncio's handler ends the main task and Python exits by the signal.
            assert running["process"].wait(60) == -stop_signal

            async def took_over() -> Any:
                status, body = await health(http, standby["url"], standby["health_key"])
                return body if body["ownedPartitions"] == [0, 1, 2, 3] else None

            body = await wait_for(took_over, timeout=25)
            # Within the 30 s lease interval: the stopped engine released its partitions.
            assert time.monotonic() - began < 30 and body["state"] == "running"
            status = await storage.client.wait_for_completion(instance_id, timeout=30)
            assert status.output == {"jobId": "j2", "status": "Completed", "checks": 3}
            url = f"{standby['url']}/api/orchestrators/hello_sequence/wait?timeout=30"
            async with http.post(url) as response:
                assert response.status == 200, await response.text()


@pytest.mark.slow
async def test_a_killed_engine_process_is_replaced_by_the_standby_one(
    azurite: AzuriteInstance, tmp_path: Path
) -> None:
    # SIGKILL, as Azure recycles a worker: nothing is released; the lock goes with the process
    # and the partitions come back when their leases expire (15 s, the shortest blob lease).
    leases = {
        "leaseInterval": "00:00:15",
        "leaseRenewInterval": "00:00:05",
        "leaseAcquireInterval": "00:00:01",
    }
    root, _ = sample_app_root(tmp_path, azurite, leases)
    settings = {"AzureWebJobsStorage": azurite.connection_string}
    with worker_processes(root, settings, 2) as infos:
        async with aiohttp.ClientSession() as http:
            running, standby = await wait_for(lambda: one_engine(http, infos), timeout=60)
            running["process"].kill()
            running["process"].wait(10)

            async def engine_state() -> Any:
                return (await health(http, standby["url"], standby["health_key"]))[1]

            async def engine_runs_here() -> bool:
                return (await engine_state())["state"] == "running"

            await wait_for(engine_runs_here, timeout=10)  # the lock went with the killed process

            async def took_over() -> Any:
                body = await engine_state()
                return body if body["ownedPartitions"] == [0, 1, 2, 3] else None

            body = await wait_for(took_over, timeout=40)
            assert body["state"] == "running" and body["enginePid"] is None
