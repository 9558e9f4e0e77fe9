"""Fixtures for the `durable-ext` command line: app roots on the session Azurite, a runner
that calls the installed console script in a subprocess, and a worker in a background thread
(so instances make progress while a test waits on a subprocess)."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import threading
from collections.abc import Callable, Coroutine, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from durable_ext import DurableOrchestrationContext, DurableOrchestrationStatus
from durable_ext.runtime import Runtime
from durable_ext.worker import FunctionRegistry
from tests.azurite import ACCOUNT_KEY, AzuriteInstance
from tests.worker.conftest import fast_options

SCRIPT = Path(sys.executable).parent / "durable-ext"
CLI_TIMEOUT = 60


def write_app_root(
    root: Path,
    hub: str,
    values: dict[str, str],
    durable_task: dict[str, Any] | None = None,
) -> Path:
    """An app root: host.json naming `hub`, and local.settings.json with `values`."""
    root.mkdir(parents=True, exist_ok=True)
    host = {
        "version": "2.0",
        "extensions": {"durableTask": {"hubName": hub, **(durable_task or {})}},
    }
    (root / "host.json").write_text(json.dumps(host), encoding="utf-8")
    settings = {"IsEncrypted": False, "Values": values}
    (root / "local.settings.json").write_text(json.dumps(settings), encoding="utf-8")
    return root


def clean_environment(**overrides: str) -> dict[str, str]:
    """This process's environment without storage settings that would override the app's."""
    env = {k: v for k, v in os.environ.items() if not k.lower().startswith("azurewebjobs")}
    env.update(overrides)
    return env


def run_cli(
    *args: str,
    cwd: Path,
    env: dict[str, str] | None = None,
    stdin: int | None = subprocess.DEVNULL,
) -> subprocess.CompletedProcess[str]:
    """Run the console script; the account key must never reach stdout or stderr."""
    result = subprocess.run(
        [str(SCRIPT), *args],
        cwd=cwd,
        env=env if env is not None else clean_environment(),
        stdin=stdin,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )
    assert ACCOUNT_KEY not in result.stdout + result.stderr, "the account key was printed"
    return result


def run_parallel(
    cli: Callable[..., subprocess.CompletedProcess[str]], *commands: Sequence[str]
) -> list[subprocess.CompletedProcess[str]]:
    """Run independent commands at once (each subprocess spends most of its time starting)."""
    with ThreadPoolExecutor(max_workers=len(commands)) as pool:
        return list(pool.map(lambda command: cli(*command), commands))


def new_hub_name(label: str) -> str:
    return f"Tcli{label}{secrets.token_hex(3)}"


Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def app_root(tmp_path: Path, azurite: AzuriteInstance, hub_name: str) -> Path:
    """An app root for this test's own hub on the session Azurite (no worker)."""
    return write_app_root(
        tmp_path / "app", hub_name, {"AzureWebJobsStorage": azurite.connection_string}
    )


@pytest.fixture
def cli(app_root: Path) -> Cli:
    """`cli("get-instances", "--json")`: the command run in this test's app root."""

    def run(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        kwargs.setdefault("cwd", app_root)
        return run_cli(*args, **kwargs)

    return run


# -- a worker in a background thread -------------------------------------------------------------


def hello(ctx: DurableOrchestrationContext) -> Any:
    results = []
    for name in ctx.get_input() or []:
        results.append((yield ctx.call_activity("say_hello", name)))
    return results


def approval(ctx: DurableOrchestrationContext) -> Any:
    decision = yield ctx.wait_for_external_event("Approval")
    return {"decision": decision}


def cli_registry() -> FunctionRegistry:
    registry = FunctionRegistry()
    registry.add_orchestrator("hello", hello)
    registry.add_orchestrator("approval", approval)
    registry.add_activity("say_hello", lambda name: f"Hello {name}!")
    return registry


class WorkerThread:
    """A Runtime on its own event loop in a daemon thread; `call()` runs client coroutines."""

    def __init__(self, connection_string: str, hub: str) -> None:
        self.hub = hub
        self._connection_string = connection_string
        self._ready: Future[Runtime] = Future()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name=f"worker-{hub}", daemon=True)

    def start(self) -> WorkerThread:
        self._thread.start()
        self.runtime = self._ready.result(timeout=60)
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)

    def call(self, coroutine: Coroutine[Any, Any, Any], timeout: float = 60) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def wait_for_completion(self, instance_id: str) -> DurableOrchestrationStatus:
        return self.call(self.runtime.client.wait_for_completion(instance_id, timeout=30))

    def wait_for_status(self, instance_id: str, status: str, timeout: float = 30) -> None:
        self.call(self._wait_for_status(instance_id, status, timeout), timeout + 5)

    async def _wait_for_status(self, instance_id: str, wanted: str, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while True:
                status = await self.runtime.client.get_status(instance_id)
                if status and status.runtime_status and status.runtime_status.value == wanted:
                    return
                await asyncio.sleep(0.05)

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # noqa: BLE001 - surface start-up failures to start()
            if not self._ready.done():
                self._ready.set_exception(exc)

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        runtime = Runtime(
            cli_registry(),
            connection=self._connection_string,
            hub=self.hub,
            options=fast_options(),
        )
        async with runtime:
            self._ready.set_result(runtime)
            await self._stop.wait()


@pytest.fixture(scope="module")
def worker(azurite: AzuriteInstance) -> Iterator[WorkerThread]:
    """One worker per test module, on a hub of its own, serving `hello` and `approval`."""
    thread = WorkerThread(azurite.connection_string, new_hub_name("worker")).start()
    try:
        yield thread
    finally:
        thread.stop()


@pytest.fixture(scope="module")
def worker_app_root(
    tmp_path_factory: pytest.TempPathFactory, azurite: AzuriteInstance, worker: WorkerThread
) -> Path:
    """The app root of the module's worker hub."""
    return write_app_root(
        tmp_path_factory.mktemp("app"),
        worker.hub,
        {"AzureWebJobsStorage": azurite.connection_string},
    )
