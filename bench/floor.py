"""The physical floor: the raw storage calls of one orchestration step, with no engine at all.

On the same Azurite as the engine, one sequential step in the Durable Task Framework's order is
(`dtfx` variant):

1. send the work item (``{hub}-workitems``);
2. receive it;
3. send the result (control queue);
4. delete the work item;
5. receive the result;
6. write the history row under the sentinel ETag (one table transaction: upsert the row, merge
   the ``sentinel`` row if its ETag still matches; the new ETag fences the next step);
7. merge the Instances row;
8. delete the result message.

The `handoff` variant is the same step when the process hands work to itself in memory: both
messages are still written (sent invisible, with a visibility timeout, for crash recovery) and
deleted by the pop receipt the send returns, so the two receives disappear (6 requests).

Both are timed twice: with the Azure SDK's ``aio`` clients (`dtfx`, `handoff`) and with the lean
REST path the engine's hot loop uses (`durable_ext.storage.rest`: `dtfx_lean`, `handoff_lean`), so
every run measures what the lean path saves per request. `result_in_memory` is the engine's own
minimal sequential step on the lean path: the activity's result is handed to the orchestration in
memory, bound to its work item, and never written as a message; the Instances merge is skipped
while the status does not change. That leaves 3 requests: send the work item (invisible), write
history (the transaction), delete the work item.

Each sequential variant reports its wall time per step, this process's CPU per step
(``time.process_time`` around the loop: the client's cost of the requests) and, when Azurite's
process id is known, Azurite's CPU per step. `parallel` and `parallel_lean` run the DTFx step in
many independent chains at once (each with its own instance and ETag, sharing the queues), with the
SDK and with the lean path: steps per second there is what this client and Azurite sustain for many
concurrent steps done one request at a time.

The floor is what an engine step must at least pay; the suite reports each scenario against it.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from azure.core import MatchConditions
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient
from azure.storage.queue.aio import QueueClient, QueueServiceClient

from durable_ext.storage.connection import StorageConnection
from durable_ext.storage.rest.queue_messages import QueueMessages
from durable_ext.storage.rest.table_rows import BatchOperation, TableRows
from durable_ext.storage.rest.transport import RestTransport

from .metrics import median, pid_cpu_seconds

__all__ = [
    "DTFX_ORDER",
    "FloorResult",
    "HANDOFF_ORDER",
    "RESULT_IN_MEMORY_ORDER",
    "VARIANTS",
    "Variant",
    "measure_floor",
]

T = TypeVar("T")
VISIBILITY = 300
SDK = "Azure SDK (aio)"
LEAN = "lean REST"
DTFX_ORDER = (
    "send work item",
    "receive work item",
    "send result",
    "delete work item",
    "receive result",
    "write history (transaction)",
    "merge Instances",
    "delete result",
)
HANDOFF_ORDER = (
    "send work item (invisible)",
    "send result (invisible)",
    "delete work item",
    "write history (transaction)",
    "merge Instances",
    "delete result",
)
RESULT_IN_MEMORY_ORDER = (
    "send work item (invisible)",
    "write history (transaction)",
    "delete work item",
)
# Bodies the size of a DTFx TaskScheduled / TaskCompleted message (about 600 bytes).
_WORK_ITEM = json.dumps(
    {
        "$type": "DurableTask.AzureStorage.MessageData",
        "ActivityId": "5b0d2a36-0d8e-4f3c-9f40-1f5f7b0c9a11",
        "TaskMessage": {
            "$type": "DurableTask.Core.TaskMessage",
            "Event": {
                "$type": "DurableTask.Core.History.TaskScheduledEvent",
                "EventType": 4,
                "Name": "Noop",
                "Version": "",
                "Input": "17",
                "EventId": 17,
                "IsPlayed": False,
                "Timestamp": "2024-01-01T00:00:00.0000000Z",
            },
            "SequenceNumber": 0,
            "OrchestrationInstance": {
                "InstanceId": "floor-instance",
                "ExecutionId": "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
            },
        },
        "SequenceNumber": 42,
        "Episode": 17,
    }
)
_RESULT = _WORK_ITEM.replace("TaskScheduledEvent", "TaskCompletedEvent").replace(
    '"Input"', '"Result"'
)


@dataclass(slots=True)
class _Chain:
    """One instance's history partition and its current sentinel ETag."""

    key: str
    etag: str
    index: int = 0


@dataclass(slots=True)
class _Timings:
    per_op: dict[str, list[float]] = field(default_factory=dict)
    empty_receives: int = 0

    async def timed(self, op: str, call: Awaitable[T]) -> T:
        began = time.perf_counter()
        value = await call
        self.per_op.setdefault(op, []).append(time.perf_counter() - began)
        return value


def _history_rows(chain: _Chain) -> tuple[dict[str, Any], dict[str, Any]]:
    """The history row of a step and the sentinel merge that fences it."""
    now = datetime.now(UTC)
    row = {
        "PartitionKey": chain.key,
        "RowKey": f"{chain.index:016X}",
        "ExecutionId": "e0",
        "EventType": "TaskCompleted",
        "EventId": -1,
        "TaskScheduledId": chain.index,
        "Result": str(chain.index),
        "IsPlayed": False,
        "_Timestamp": now,
    }
    sentinel = {
        "PartitionKey": chain.key,
        "RowKey": "sentinel",
        "ExecutionId": "e0",
        "IsCheckpointComplete": True,
        "CheckpointCompletedTimestamp": now,
    }
    return row, sentinel


def _instance_columns(chain: _Chain) -> dict[str, Any]:
    return {
        "PartitionKey": chain.key,
        "RowKey": "",
        "LastUpdatedTime": datetime.now(UTC),
        "RuntimeStatus": "Running",
    }


class _Storage(Protocol):
    """The storage calls of a step, by one client path (the SDK or the lean REST path).

    `queue` is ``"work"`` (the work-item queue) or ``"control"`` (a control queue); a sent or
    received message is an opaque handle that `delete` accepts."""

    async def new_chain(self) -> _Chain: ...

    async def send(self, queue: str, text: str, *, held: bool) -> Any: ...

    async def receive(self, queue: str, timings: _Timings) -> Any: ...

    async def delete(self, queue: str, message: Any) -> None: ...

    async def write_history(self, chain: _Chain) -> str: ...

    async def merge_instance(self, chain: _Chain) -> None: ...


def _new_chain_rows() -> tuple[str, dict[str, Any], dict[str, Any]]:
    """A new chain's key, its sentinel row and its Instances row."""
    key = "floor-" + secrets.token_hex(6)
    sentinel = {"PartitionKey": key, "RowKey": "sentinel", "ExecutionId": "e0"}
    instance = {"PartitionKey": key, "RowKey": "", "RuntimeStatus": "Running", "ExecutionId": "e0"}
    return key, sentinel, instance


class _SdkStorage:
    """The steps' calls through the Azure SDK's aio clients."""

    def __init__(self, queues: QueueServiceClient, tables: TableServiceClient, names: _Names):
        self._queues: dict[str, QueueClient] = {
            "work": queues.get_queue_client(names.work),
            "control": queues.get_queue_client(names.control),
        }
        self._history: TableClient = tables.get_table_client(names.history)
        self._instances: TableClient = tables.get_table_client(names.instances)

    async def new_chain(self) -> _Chain:
        key, sentinel_row, instance_row = _new_chain_rows()
        sentinel = await self._history.create_entity(sentinel_row)
        await self._instances.create_entity(instance_row)
        return _Chain(key, str(sentinel["etag"]))

    async def send(self, queue: str, text: str, *, held: bool) -> Any:
        return await self._queues[queue].send_message(
            text, visibility_timeout=VISIBILITY if held else None, time_to_live=-1
        )

    async def receive(self, queue: str, timings: _Timings) -> Any:
        while True:
            async for message in self._queues[queue].receive_messages(
                max_messages=1, visibility_timeout=VISIBILITY
            ):
                return message
            timings.empty_receives += 1

    async def delete(self, queue: str, message: Any) -> None:
        await self._queues[queue].delete_message(message)

    async def write_history(self, chain: _Chain) -> str:
        row, sentinel = _history_rows(chain)
        results = await self._history.submit_transaction(
            [
                ("upsert", row, {"mode": UpdateMode.REPLACE}),
                (
                    "update",
                    sentinel,
                    {
                        "mode": UpdateMode.MERGE,
                        "etag": chain.etag,
                        "match_condition": MatchConditions.IfNotModified,
                    },
                ),
            ]
        )
        return str(results[-1]["etag"])

    async def merge_instance(self, chain: _Chain) -> None:
        await self._instances.update_entity(_instance_columns(chain), mode=UpdateMode.MERGE)


class _LeanStorage:
    """The same calls through durable_ext's lean REST path, as the engine's hot loop makes them."""

    def __init__(
        self, queue_transport: RestTransport, table_transport: RestTransport, names: _Names
    ):
        self._queues = {
            "work": QueueMessages(queue_transport, names.work),
            "control": QueueMessages(queue_transport, names.control),
        }
        self._history = TableRows(table_transport, names.history)
        self._instances = TableRows(table_transport, names.instances)

    async def new_chain(self) -> _Chain:
        key, sentinel_row, instance_row = _new_chain_rows()
        etag = await self._history.insert(sentinel_row)
        await self._instances.insert(instance_row)
        return _Chain(key, etag)

    async def send(self, queue: str, text: str, *, held: bool) -> Any:
        return await self._queues[queue].put(
            text, visibility_timeout=VISIBILITY if held else None, ttl=-1
        )

    async def receive(self, queue: str, timings: _Timings) -> Any:
        while True:
            found = await self._queues[queue].get(1, VISIBILITY)
            if found:
                return found[0]
            timings.empty_receives += 1

    async def delete(self, queue: str, message: Any) -> None:
        await self._queues[queue].delete(message.id, message.pop_receipt)

    async def write_history(self, chain: _Chain) -> str:
        row, sentinel = _history_rows(chain)
        etags = await self._history.transact(
            [BatchOperation("upsert", row), BatchOperation("merge", sentinel, chain.etag)]
        )
        return etags[-1]

    async def merge_instance(self, chain: _Chain) -> None:
        await self._instances.write("merge", _instance_columns(chain))


# -- the step shapes ---------------------------------------------------------------------------
async def dtfx_step(storage: _Storage, chain: _Chain, t: _Timings) -> None:
    await t.timed(DTFX_ORDER[0], storage.send("work", _WORK_ITEM, held=False))
    work_item = await t.timed(DTFX_ORDER[1], storage.receive("work", t))
    await t.timed(DTFX_ORDER[2], storage.send("control", _RESULT, held=False))
    await t.timed(DTFX_ORDER[3], storage.delete("work", work_item))
    result = await t.timed(DTFX_ORDER[4], storage.receive("control", t))
    chain.etag = await t.timed(DTFX_ORDER[5], storage.write_history(chain))
    await t.timed(DTFX_ORDER[6], storage.merge_instance(chain))
    await t.timed(DTFX_ORDER[7], storage.delete("control", result))
    chain.index += 1


async def handoff_step(storage: _Storage, chain: _Chain, t: _Timings) -> None:
    work_item = await t.timed(HANDOFF_ORDER[0], storage.send("work", _WORK_ITEM, held=True))
    result = await t.timed(HANDOFF_ORDER[1], storage.send("control", _RESULT, held=True))
    await t.timed(HANDOFF_ORDER[2], storage.delete("work", work_item))
    chain.etag = await t.timed(HANDOFF_ORDER[3], storage.write_history(chain))
    await t.timed(HANDOFF_ORDER[4], storage.merge_instance(chain))
    await t.timed(HANDOFF_ORDER[5], storage.delete("control", result))
    chain.index += 1


async def result_in_memory_step(storage: _Storage, chain: _Chain, t: _Timings) -> None:
    work_item = await t.timed(
        RESULT_IN_MEMORY_ORDER[0], storage.send("work", _WORK_ITEM, held=True)
    )
    chain.etag = await t.timed(RESULT_IN_MEMORY_ORDER[1], storage.write_history(chain))
    await t.timed(RESULT_IN_MEMORY_ORDER[2], storage.delete("work", work_item))
    chain.index += 1


Step = Callable[[_Storage, _Chain, _Timings], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Variant:
    """One step shape done through one client path."""

    key: str
    label: str
    client: str
    order: tuple[str, ...]
    step: Step
    description: str


VARIANTS = (
    Variant(
        "dtfx", "DTFx order", SDK, DTFX_ORDER, dtfx_step, "DTFx's order, every message received"
    ),
    Variant(
        "handoff",
        "handoff",
        SDK,
        HANDOFF_ORDER,
        handoff_step,
        "both messages sent invisible and deleted by their pop receipts; no receives",
    ),
    Variant(
        "dtfx_lean", "DTFx order", LEAN, DTFX_ORDER, dtfx_step, "DTFx's order on the lean path"
    ),
    Variant(
        "handoff_lean", "handoff", LEAN, HANDOFF_ORDER, handoff_step, "handoff on the lean path"
    ),
    Variant(
        "result_in_memory",
        "handoff, result in memory",
        LEAN,
        RESULT_IN_MEMORY_ORDER,
        result_in_memory_step,
        "the engine's sequential step: the work item sent invisible, the result handed over in "
        "memory (no message), the history transaction, the work item deleted; no Instances merge "
        "while the status is unchanged",
    ),
)


# -- measuring ---------------------------------------------------------------------------------
@dataclass(slots=True)
class _Runs:
    """What the runs of one variant measured."""

    step_s: list[float] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)
    storage_cpu_s: list[float] = field(default_factory=list)
    timings: _Timings = field(default_factory=_Timings)


@dataclass(slots=True)
class _ParallelRuns:
    steps_per_s: list[float] = field(default_factory=list)
    cpu_share: list[float] = field(default_factory=list)
    storage_cpu_share: list[float] = field(default_factory=list)


@dataclass(slots=True)
class FloorResult:
    """Seconds per step of each variant (medians over runs) and what each request cost."""

    runs: int
    steps_per_run: int
    parallel_chains: int
    parallel_steps_each: int
    variants: dict[str, _Runs]
    parallel: dict[str, _ParallelRuns]

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "runs": self.runs,
            "steps_per_run": self.steps_per_run,
            "variants": [v.key for v in VARIANTS],
        }
        for variant in VARIANTS:
            runs = self.variants[variant.key]
            step = median(runs.step_s)
            requests = len(variant.order)
            cpu_ms = median(runs.cpu_s) * 1000
            storage_ms = median(runs.storage_cpu_s) * 1000 if runs.storage_cpu_s else None
            document[variant.key] = {
                "label": variant.label,
                "client": variant.client,
                "description": variant.description,
                "step_ms": step * 1000,
                "steps_per_s": 1 / step,
                "requests_per_step": requests,
                "runs_step_ms": [s * 1000 for s in runs.step_s],
                "cpu_ms_per_step": cpu_ms,
                "cpu_ms_per_request": cpu_ms / requests,
                "runs_cpu_ms_per_step": [s * 1000 for s in runs.cpu_s],
                "storage_cpu_ms_per_step": storage_ms,
                "storage_cpu_ms_per_request": storage_ms / requests if storage_ms else None,
                "op_median_ms": {
                    op: median(runs.timings.per_op[op]) * 1000
                    for op in variant.order
                    if op in runs.timings.per_op
                },
                "empty_receives_retried": runs.timings.empty_receives,
            }
        for key, client in (("parallel", SDK), ("parallel_lean", LEAN)):
            parallel = self.parallel[key]
            rate = median(parallel.steps_per_s)
            document[key] = {
                "client": client,
                "chains": self.parallel_chains,
                "steps_each": self.parallel_steps_each,
                "steps_per_s": rate,
                "requests_per_s": rate * len(DTFX_ORDER),
                "runs_steps_per_s": parallel.steps_per_s,
                "cpu_share": median(parallel.cpu_share),
                "storage_cpu_share": (
                    median(parallel.storage_cpu_share) if parallel.storage_cpu_share else None
                ),
            }
        document["empty_receives_retried"] = sum(
            r.timings.empty_receives for r in self.variants.values()
        )
        return document


@dataclass(frozen=True, slots=True)
class _Names:
    work: str
    control: str
    history: str
    instances: str


class _Meter:
    """Wall, this process's CPU and Azurite's CPU over a stretch."""

    def __init__(self, storage_pid: int | None) -> None:
        self._pid = storage_pid
        self._wall = time.perf_counter()
        self._cpu = time.process_time()
        self._storage = self._storage_cpu()

    def _storage_cpu(self) -> float | None:
        if self._pid is None:
            return None
        try:
            return pid_cpu_seconds(self._pid)
        except OSError:
            return None

    def stop(self) -> tuple[float, float, float | None]:
        wall = time.perf_counter() - self._wall
        cpu = time.process_time() - self._cpu
        end = self._storage_cpu()
        storage = end - self._storage if end is not None and self._storage is not None else None
        return wall, cpu, storage


async def _sequential(
    storage: _Storage, variant: Variant, steps: int, runs: _Runs, storage_pid: int | None
) -> None:
    chain = await storage.new_chain()
    await variant.step(storage, chain, _Timings())  # warm the connections
    meter = _Meter(storage_pid)
    for _ in range(steps):
        await variant.step(storage, chain, runs.timings)
    wall, cpu, storage_cpu = meter.stop()
    runs.step_s.append(wall / steps)
    runs.cpu_s.append(cpu / steps)
    if storage_cpu is not None:
        runs.storage_cpu_s.append(storage_cpu / steps)


async def _parallel(
    storage: _Storage,
    chains: int,
    steps_each: int,
    runs: _ParallelRuns,
    storage_pid: int | None,
) -> None:
    all_chains = await asyncio.gather(*(storage.new_chain() for _ in range(chains)))
    t = _Timings()

    async def run(chain: _Chain) -> None:
        for _ in range(steps_each):
            await dtfx_step(storage, chain, t)

    meter = _Meter(storage_pid)
    await asyncio.gather(*(run(chain) for chain in all_chains))
    wall, cpu, storage_cpu = meter.stop()
    runs.steps_per_s.append(chains * steps_each / wall)
    runs.cpu_share.append(cpu / wall)
    if storage_cpu is not None:
        runs.storage_cpu_share.append(storage_cpu / wall)


async def _create(
    queues: QueueServiceClient, tables: TableServiceClient, names: _Names
) -> Callable[[], Awaitable[None]]:
    work, control = queues.get_queue_client(names.work), queues.get_queue_client(names.control)
    await asyncio.gather(
        work.create_queue(),
        control.create_queue(),
        tables.create_table(names.history),
        tables.create_table(names.instances),
    )

    async def delete() -> None:
        await asyncio.gather(
            work.delete_queue(),
            control.delete_queue(),
            tables.delete_table(names.history),
            tables.delete_table(names.instances),
            return_exceptions=True,
        )

    return delete


async def measure_floor(
    connection_string: str,
    *,
    runs: int,
    steps: int,
    parallel_chains: int,
    storage_pid: int | None = None,
) -> FloorResult:
    """Time `runs` runs of `steps` steps of each variant on the storage behind the connection
    (Azurite's CPU too when `storage_pid` is its process id)."""
    tag = secrets.token_hex(3)
    names = _Names(
        f"floor{tag}-workitems",
        f"floor{tag}-control-00",
        f"Floor{tag}History",
        f"Floor{tag}Instances",
    )
    parallel_steps = max(2, steps // parallel_chains * 2)
    variant_runs = {v.key: _Runs() for v in VARIANTS}
    parallel_runs = {"parallel": _ParallelRuns(), "parallel_lean": _ParallelRuns()}
    connection = StorageConnection.from_connection_string(connection_string)
    queue_transport = connection.rest_transport("queue")
    table_transport = connection.rest_transport("table")
    try:
        async with (
            QueueServiceClient.from_connection_string(connection_string) as queues,
            TableServiceClient.from_connection_string(connection_string) as tables,
        ):
            clients: dict[str, _Storage] = {
                SDK: _SdkStorage(queues, tables, names),
                LEAN: _LeanStorage(queue_transport, table_transport, names),
            }
            delete = await _create(queues, tables, names)
            try:
                for _ in range(runs):
                    for variant in VARIANTS:
                        await _sequential(
                            clients[variant.client],
                            variant,
                            steps,
                            variant_runs[variant.key],
                            storage_pid,
                        )
                    for key, client in (("parallel", SDK), ("parallel_lean", LEAN)):
                        await _parallel(
                            clients[client],
                            parallel_chains,
                            parallel_steps,
                            parallel_runs[key],
                            storage_pid,
                        )
            finally:
                await delete()
    finally:
        await asyncio.gather(queue_transport.close(), table_transport.close())
        await connection.close()
    return FloorResult(
        runs=runs,
        steps_per_run=steps,
        parallel_chains=parallel_chains,
        parallel_steps_each=parallel_steps,
        variants=variant_runs,
        parallel=parallel_runs,
    )
