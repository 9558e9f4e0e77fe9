"""Stale start messages and half-written first checkpoints: the defects the chaos driver found
(`chaos_audit.KNOWN_BUGS`), each reproduced deterministically.

* A finished instance must not be started over by a stale ExecutionStarted: the first start of a
  continue-as-new instance delivered again, or a sub-orchestration's start re-sent by its parent's
  retried checkpoint.
* An instance whose first checkpoint died between the history write and the Instances merge must
  not report Pending forever once its start message comes back.

A failed precondition raises `RuntimeError` rather than `AssertionError`, so a test that no longer
reaches the situation it is about says so instead of passing or failing for the wrong reason.

The crashes are real: a worker process (`tests/reliability/chaos_worker.py`) runs with a fault
point at probability 1 and exits with status 137 at its first checkpoint; a second worker in this
process, under the same worker id (so it reclaims the partitions at once), carries on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from azure.storage.blob.aio import BlobLeaseClient, BlobServiceClient
from azure.storage.queue.aio import QueueClient

from durable_ext.orchestration.status import OrchestrationRuntimeStatus
from durable_ext.runtime import Runtime
from durable_ext.storage.names import partition_index
from harness.azurite import REPO_ROOT, AzuriteInstance, die_with_parent
from tests.reliability.chaos_app import registry
from tests.worker.conftest import fast_options
from tests.worker.fault_app import expected_fan_out

T = TypeVar("T")
DEADLINE = 60.0
WORKER_ID = "bugrepro"


async def poll(probe: Callable[[], Awaitable[T]], done: Callable[[T], bool], what: str) -> T:
    """Call `probe` until `done(value)`; RuntimeError (a failed precondition) after DEADLINE."""
    end = time.monotonic() + DEADLINE
    while True:
        value = await probe()
        if done(value):
            return value
        if time.monotonic() > end:
            raise RuntimeError(f"{what}: not reached within {DEADLINE:.0f} s; last {value!r}")
        await asyncio.sleep(0.2)


def crash_at(point: str, connection: str, hub: str, visibility_seconds: float) -> None:
    """Run a worker process that exits with 137 at the first `point` it reaches; wait for that."""
    env = {k: v for k, v in os.environ.items() if k != "FAULT_APP_LOG"}
    env["PYTHONPATH"] = str(REPO_ROOT)
    env["DURABLE_EXT_FAULT_POINTS"] = f"{point}:1"
    command = [
        sys.executable,
        "-m",
        "tests.reliability.chaos_worker",
        "--connection",
        connection,
        "--hub",
        hub,
        "--worker-id",
        WORKER_ID,
        "--visibility-seconds",
        str(visibility_seconds),
        "--log-level",
        "WARNING",
        "--legacy",
    ]
    process = subprocess.run(
        command,
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=DEADLINE,
        preexec_fn=die_with_parent(),
        check=False,
    )
    if process.returncode != 137:
        raise RuntimeError(f"the worker exited with {process.returncode}: {process.stderr!r}")


def worker(connection: str, hub: str, visibility_seconds: float = 10.0) -> Runtime:
    """A worker in this process under the crashed worker's id (it reclaims the leases at once).
    These workers use the legacy blob leases, which `partitions_blocked` holds."""
    visibility = timedelta(seconds=visibility_seconds)
    options = fast_options(
        worker_id=WORKER_ID,
        control_queue_visibility_timeout=visibility,
        work_item_queue_visibility_timeout=visibility,
        use_legacy_partition_management=True,
    )
    return Runtime(registry, connection=connection, hub=hub, options=options)


def client_only(connection: str, hub: str) -> Runtime:
    return Runtime(
        registry, connection=connection, hub=hub, options=fast_options(), run_worker=False
    )


async def instance_row(rt: Runtime, instance_id: str) -> Any:
    return await rt.hub.instances.get(instance_id, fetch_payloads=False)


@contextlib.asynccontextmanager
async def partitions_blocked(connection: str, hub: str, blocked: set[int]) -> AsyncIterator[None]:
    """Hold the leases of the `blocked` partitions for the duration, as an owner that wrote no
    Token (so no worker can steal them: `PartitionLeaseManager._take` waits for such a lease to
    expire), then release them."""
    async with BlobServiceClient.from_connection_string(connection) as service:
        container = service.get_container_client(f"{hub.lower()}-leases")
        leases = []
        for index in sorted(blocked):
            name = f"{hub.lower()}-control-{index:02d}"
            blob = container.get_blob_client(f"default/{name}")
            content = {"PartitionId": name, "Owner": "blocker", "Token": "", "Epoch": 0}
            await blob.upload_blob(json.dumps(content), overwrite=True)
            lease = BlobLeaseClient(blob)
            await lease.acquire(60)
            leases.append(lease)
        try:
            yield
        finally:
            for lease in leases:
                await lease.release()


def parent_apart_from_children(prefix: str) -> str:
    """A `fan_out_parent` instance id whose two children live on other partitions than it."""
    for n in range(1000):
        parent = f"{prefix}{n}"
        own = partition_index(parent, 4)
        if all(partition_index(f"{parent}-c{i}", 4) != own for i in range(2)):
            return parent
    raise AssertionError("no such id")


async def test_a_stale_start_message_does_not_restart_a_finished_continue_as_new_instance(
    azurite: AzuriteInstance, hub_name: str
) -> None:
    """The first ExecutionStarted of a continue-as-new instance, delivered again after the
    instance completed (a redelivery after a crash before the inbound delete looks the same),
    must be dropped as a duplicate: it names an execution that is over."""
    connection = azurite.connection_string
    instance_id = "eternal-stale-start"
    queue_name = f"{hub_name.lower()}-control-{partition_index(instance_id, 4):02d}"
    async with client_only(connection, hub_name) as rt:
        await rt.client.start_new("eternal", instance_id, {"generations": 3, "ms": 1})
    async with QueueClient.from_connection_string(connection, queue_name) as queue:
        [start_message] = await queue.peek_messages(max_messages=1)
        async with worker(connection, hub_name) as rt:
            status = await rt.client.wait_for_completion(instance_id, timeout=DEADLINE)
            if status.output != 60:
                raise RuntimeError(f"unexpected first run: {status.to_json()}")
            first = await instance_row(rt, instance_id)
            await queue.send_message(start_message.content)
            await poll(
                lambda: queue.peek_messages(max_messages=1), lambda m: not m, "copy consumed"
            )
            await poll(
                lambda: instance_row(rt, instance_id),
                lambda row: row.runtime_status is OrchestrationRuntimeStatus.Completed,
                "instance finished",
            )
            last = await instance_row(rt, instance_id)
    assert (last.execution_id, last.completed_time) == (first.execution_id, first.completed_time), (
        f"the instance ran again: finished as {first.execution_id} at {first.completed_time}, "
        f"then as {last.execution_id} at {last.completed_time}"
    )


async def test_a_retried_parent_checkpoint_does_not_rerun_a_finished_sub_orchestration(
    azurite: AzuriteInstance, hub_name: str
) -> None:
    """A parent's worker dies after sending its children's start messages but before writing its
    history (`after-outbound-send`). The children run and finish; the parent's start message
    comes back after its visibility timeout, the parent's first episode is replayed and sends the
    children's start messages again. A finished child must not run a second time.

    The crashing worker may own only the parent's partition (the others are held by a blocker),
    so it cannot have taken the children's start messages too before it died."""
    connection = azurite.connection_string
    parent = parent_apart_from_children("parent-retried")
    children = [f"{parent}-c0", f"{parent}-c1"]
    async with client_only(connection, hub_name) as rt:
        await rt.client.start_new("fan_out_parent", parent, {"children": 2, "items": 1, "ms": 1})
    others = set(range(4)) - {partition_index(parent, 4)}
    async with partitions_blocked(connection, hub_name, others):
        await asyncio.to_thread(crash_at, "after-outbound-send", connection, hub_name, 10.0)
    async with worker(connection, hub_name) as rt:
        first = {}
        for child in children:
            first[child] = await poll(
                lambda child=child: instance_row(rt, child),  # type: ignore[misc]
                lambda row: row is not None and row.runtime_status is OrchestrationRuntimeStatus.Completed,
                f"{child} completed",
            )
        if (await rt.hub.history.load(parent)).events:
            raise RuntimeError("the parent was replayed before its children finished")
        status = await rt.client.wait_for_completion(parent, timeout=DEADLINE)
        if status.output != expected_fan_out(2, 1):
            raise RuntimeError(f"unexpected parent result: {status.to_json()}")
        await poll(
            lambda: asyncio.gather(*(q.count() for q in rt.hub.control_queues)),
            lambda counts: not any(counts),
            "control queues drained",
        )
        last = {child: await instance_row(rt, child) for child in children}
    reruns = {
        child: (first[child].execution_id, last[child].execution_id)
        for child in children
        if last[child].execution_id != first[child].execution_id
    }
    assert not reruns, f"finished sub-orchestrations ran again (first, last execution): {reruns}"


async def test_the_instances_row_leaves_pending_once_a_crashed_first_checkpoint_is_retried(
    azurite: AzuriteInstance, hub_name: str
) -> None:
    """A worker dies after writing an instance's first history but before merging its Instances
    row (`after-history-write`). When the start message comes back, the row must say Running: the
    orchestration waits for an external event, and a client that polls for Running before raising
    it would otherwise wait forever."""
    connection = azurite.connection_string
    instance_id = "approval-pending"
    async with client_only(connection, hub_name) as rt:
        await rt.client.start_new("approval", instance_id, {"events": 1, "ms": 1})
    await asyncio.to_thread(crash_at, "after-history-write", connection, hub_name, 2.0)
    async with worker(connection, hub_name, visibility_seconds=2.0) as rt:
        loaded = await rt.hub.history.load(instance_id)
        pending = (await instance_row(rt, instance_id)).runtime_status
        if not loaded.events or pending is not OrchestrationRuntimeStatus.Pending:
            raise RuntimeError("the crash did not leave history written and the row Pending")
        queue = rt.hub.control_queue_for(instance_id)
        await poll(queue.count, lambda count: count == 0, "the start message consumed again")
        row = await instance_row(rt, instance_id)
        assert row.runtime_status is OrchestrationRuntimeStatus.Running, (
            f"the Instances row still says {row.runtime_status}"
        )
        await rt.client.raise_event(instance_id, "approve", 0)
        status = await rt.client.wait_for_completion(instance_id, timeout=DEADLINE)
        assert status.output == {"approvals": [0], "result": 10, "received": [0]}
