"""A `durable-ext start` host with a system key, serving `fuzz_app.py`, for the fuzz module.

It starts with one instance of each kind (completed, waiting for an event, failed) so that the
fuzzer's requests meet real instances in every state, and offers a snapshot of the hub's state
(Instances and History rows, queue messages) read straight from storage."""

from __future__ import annotations

import json
import secrets
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from azure.data.tables import TableServiceClient
from azure.storage.queue import QueueServiceClient

from tests.azurite import AzuriteInstance
from tests.sample_app.host_process import LocalHostProcess, make_app_root

APP_SOURCE = Path(__file__).with_name("fuzz_app.py")
WEBHOOKS = "/runtime/webhooks/durabletask"
SEEDED = {"fuzz-done": "hello", "fuzz-waiting": "wait_for_go", "fuzz-failed": "fails"}
"""Instances started before the fuzzing: id → orchestrator."""


@dataclass
class FuzzHost:
    """The running host, its system key, and raw storage clients of its hub."""

    process: LocalHostProcess
    key: str
    hub: str
    connection_string: str

    @property
    def api_url(self) -> str:
        return self.process.base_url + WEBHOOKS

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """A management API call with the system key; (status, decoded JSON or None)."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.api_url + path,
            data=data,
            method=method,
            headers={"x-functions-key": self.key, "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as error:
            with error:
                raw = error.read()
                return error.code, json.loads(raw) if raw else None

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


def _wait(what: str, check: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def fuzz_host(
    azurite: AzuriteInstance, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FuzzHost]:
    key = secrets.token_urlsafe(32)
    hub = "Fuzz" + secrets.token_hex(4)
    root = make_app_root(
        tmp_path_factory.mktemp("fuzz_app"),
        code=[],
        hub_name=hub,
        connection_string=azurite.connection_string,
        values={"DURABLE_EXT_SYSTEM_KEY": key},
    )
    shutil.copy2(APP_SOURCE, root / "function_app.py")
    process = LocalHostProcess(root)
    process.launch()
    try:
        process.wait_ready()
    except BaseException:
        process.kill()
        raise
    host = FuzzHost(process, key, hub, azurite.connection_string)
    try:
        for instance_id, orchestrator in SEEDED.items():
            status, _ = host.request("POST", f"/orchestrators/{orchestrator}/{instance_id}", "x")
            assert status == 202, (instance_id, status)
        for instance_id, final in (("fuzz-done", 200), ("fuzz-failed", 200)):
            _wait(
                f"{instance_id} finished",
                lambda i=instance_id, f=final: host.request("GET", f"/instances/{i}")[0] == f,
            )
        _wait(
            "fuzz-waiting running",
            lambda: (
                (host.request("GET", "/instances/fuzz-waiting")[1] or {}).get("runtimeStatus")
                == "Running"
            ),
        )
        yield host
    finally:
        process.stop()
