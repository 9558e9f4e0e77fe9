"""The management API of `fuzz_app.py`, reached three ways, for the fuzz module.

`PATHS`: `durable-ext start`'s Durable Functions path (`/runtime/webhooks/durabletask`), the
management functions the same process serves under the route prefix (`/api/durabletask`), and
those functions in the fake Functions host with Azure's settings (a worker process of
tests/functions_host, whose key check is the functions' own). Each host has a system key and a
hub of its own that starts with one instance of each kind (completed, waiting for an event, failed),
so that the fuzzer's requests meet real instances in every state; `FuzzApi.snapshot` reads the
hub's state (Instances and History rows, queue messages) straight from storage."""

from __future__ import annotations

import dataclasses
import json
import secrets
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from azure.data.tables import TableServiceClient
from azure.storage.queue import QueueServiceClient

from tests.azurite import AzuriteInstance
from tests.functions_host.worker_process import worker_processes
from tests.sample_app.host_process import LocalHostProcess, make_app_root

APP_SOURCE = Path(__file__).with_name("fuzz_app.py")
WEBHOOKS = "/runtime/webhooks/durabletask"
FUNCTIONS = "/api/durabletask"
PATHS = ("webhook", "function", "fake-host")
"""`durable-ext start` at WEBHOOKS, at FUNCTIONS, and the fake Functions host at FUNCTIONS."""
KEY = secrets.token_urlsafe(32)
SEEDED = {"fuzz-done": "hello", "fuzz-waiting": "wait_for_go", "fuzz-failed": "fails"}
"""Instances started before the fuzzing: id → orchestrator."""


@dataclass(frozen=True)
class FuzzApi:
    """One way to the management API (`name`, one of PATHS), its system key, and its hub."""

    name: str
    api_url: str
    key: str
    hub: str
    connection_string: str

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """A management API call with the system key and `body` (bytes as they are, else as
        JSON); (status, decoded JSON or None)."""
        data = body if isinstance(body, bytes | None) else json.dumps(body).encode()
        request = urllib.request.Request(
            self.api_url + path,
            data=data,
            method=method,
            headers={"x-functions-key": self.key, "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, _json(response.headers, response.read())
        except urllib.error.HTTPError as error:
            with error:
                return error.code, _json(error.headers, error.read())

    def snapshot(self) -> dict[str, Any]:
        """What a rejected request must not change: every Instances row (status, execution,
        update time), the History row count, and every queue's message count."""
        tables = TableServiceClient.from_connection_string(self.connection_string)
        queues = QueueServiceClient.from_connection_string(self.connection_string)
        with tables, queues:
            instances = tables.get_table_client(f"{self.hub}Instances")
            rows = sorted(
                (
                    r["PartitionKey"],
                    r.get("RuntimeStatus"),
                    r.get("ExecutionId"),
                    str(r.get("LastUpdatedTime")),
                )
                for r in instances.list_entities()
            )
            history = sum(
                1
                for _ in tables.get_table_client(f"{self.hub}History").list_entities(
                    select=["PartitionKey"]
                )
            )
            counts = {
                q.name: queues.get_queue_client(q.name)
                .get_queue_properties()
                .approximate_message_count
                for q in queues.list_queues(name_starts_with=self.hub.lower())
            }
        return {"instances": rows, "history rows": history, "queues": counts}


def _json(headers: Message, raw: bytes) -> Any:
    """A JSON body decoded; None if there is none or it is of another type."""
    return json.loads(raw) if raw and headers.get_content_type() == "application/json" else None


def _wait(what: str, check: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.2)


def _app_root(
    tmp_path_factory: pytest.TempPathFactory, azurite: AzuriteInstance
) -> tuple[Path, str]:
    """An app root serving fuzz_app.py on a new hub (root, hub name)."""
    hub = "Fuzz" + secrets.token_hex(4)
    root = make_app_root(
        tmp_path_factory.mktemp("fuzz_app"),
        code=[],
        hub_name=hub,
        connection_string=azurite.connection_string,
        values={"DURABLE_EXT_SYSTEM_KEY": KEY},
    )
    shutil.copy2(APP_SOURCE, root / "function_app.py")
    return root, hub


def _seed(api: FuzzApi) -> FuzzApi:
    """Start the SEEDED instances through `api` and wait until each is in its state."""
    for instance_id, orchestrator in SEEDED.items():
        status, _ = api.request("POST", f"/orchestrators/{orchestrator}/{instance_id}", "x")
        assert status == 202, (instance_id, status)
    for instance_id in ("fuzz-done", "fuzz-failed"):
        _wait(
            f"{instance_id} finished",
            lambda i=instance_id: api.request("GET", f"/instances/{i}")[0] == 200,
        )
    _wait(
        "fuzz-waiting running",
        lambda: (
            (api.request("GET", "/instances/fuzz-waiting")[1] or {}).get("runtimeStatus")
            == "Running"
        ),
    )
    return api


@pytest.fixture(scope="module")
def local_host(
    azurite: AzuriteInstance, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FuzzApi]:
    """`durable-ext start` serving the app; the API at WEBHOOKS."""
    root, hub = _app_root(tmp_path_factory, azurite)
    process = LocalHostProcess(root)
    process.launch()
    try:
        process.wait_ready()
    except BaseException:
        process.kill()
        raise
    try:
        yield _seed(
            FuzzApi("webhook", process.base_url + WEBHOOKS, KEY, hub, azurite.connection_string)
        )
    finally:
        process.stop()


@pytest.fixture(scope="module")
def fake_host(
    azurite: AzuriteInstance, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FuzzApi]:
    """The app in the fake Functions host, as in Azure (WEBSITE_INSTANCE_ID set: a key is
    required whatever happens), in a worker process of its own; the API at FUNCTIONS."""
    root, hub = _app_root(tmp_path_factory, azurite)
    settings = {
        "AzureWebJobsStorage": azurite.connection_string,
        "DURABLE_EXT_SYSTEM_KEY": KEY,
        "WEBSITE_INSTANCE_ID": "fuzz" + secrets.token_hex(8),
    }
    with worker_processes(root, settings, 1) as [worker]:
        yield _seed(
            FuzzApi("fake-host", worker["url"] + FUNCTIONS, KEY, hub, azurite.connection_string)
        )


@pytest.fixture(scope="module", params=PATHS)
def fuzz_api(request: pytest.FixtureRequest) -> FuzzApi:
    """The management API, once for each of PATHS."""
    if request.param == "fake-host":
        api: FuzzApi = request.getfixturevalue("fake_host")
        return api
    local: FuzzApi = request.getfixturevalue("local_host")
    if request.param == "function":
        url = local.api_url.removesuffix(WEBHOOKS) + FUNCTIONS
        return dataclasses.replace(local, name="function", api_url=url)
    return local
