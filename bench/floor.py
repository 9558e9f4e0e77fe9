"""The physical floor: the raw storage calls of one orchestration step, with no engine at all.

With the Azure SDK's ``aio`` clients on the same Azurite as the engine, one sequential step in the
Durable Task Framework's order is (`dtfx` variant):

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
deleted by the pop receipt ``send_message`` returns, so the two receives disappear (6 requests).

`parallel` runs the `dtfx` step in many independent chains at once (each with its own instance
and ETag, sharing the queues): steps per second there is what Azurite can sustain for a workload
of many concurrent steps, the ceiling for fan-out and HelloCities.

The result of a step is what every engine step must at least pay; the suite reports each
scenario against it.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from azure.core import MatchConditions
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient
from azure.storage.queue import QueueMessage
from azure.storage.queue.aio import QueueClient, QueueServiceClient

from .metrics import median

__all__ = ["DTFX_ORDER", "FloorResult", "HANDOFF_ORDER", "measure_floor"]

T = TypeVar("T")
VISIBILITY = 300
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


@dataclass(slots=True)
class FloorResult:
    """Seconds per step of each variant (medians over runs) and what each request cost."""

    runs: int
    steps_per_run: int
    dtfx_step_s: list[float]
    handoff_step_s: list[float]
    parallel_steps_per_s: list[float]
    parallel_chains: int
    op_median_ms: dict[str, float]
    handoff_op_median_ms: dict[str, float]
    empty_receives: int

    def to_json(self) -> dict[str, Any]:
        dtfx, handoff = median(self.dtfx_step_s), median(self.handoff_step_s)
        parallel = median(self.parallel_steps_per_s)
        return {
            "runs": self.runs,
            "steps_per_run": self.steps_per_run,
            "dtfx": {
                "step_ms": dtfx * 1000,
                "steps_per_s": 1 / dtfx,
                "requests_per_step": len(DTFX_ORDER),
                "runs_step_ms": [s * 1000 for s in self.dtfx_step_s],
                "op_median_ms": self.op_median_ms,
            },
            "handoff": {
                "step_ms": handoff * 1000,
                "steps_per_s": 1 / handoff,
                "requests_per_step": len(HANDOFF_ORDER),
                "runs_step_ms": [s * 1000 for s in self.handoff_step_s],
                "op_median_ms": self.handoff_op_median_ms,
            },
            "parallel": {
                "chains": self.parallel_chains,
                "steps_per_s": parallel,
                "requests_per_s": parallel * len(DTFX_ORDER),
                "runs_steps_per_s": self.parallel_steps_per_s,
            },
            "empty_receives_retried": self.empty_receives,
        }


class _Floor:
    def __init__(self, queues: QueueServiceClient, tables: TableServiceClient, tag: str) -> None:
        self.work: QueueClient = queues.get_queue_client(f"floor{tag}-workitems")
        self.control: QueueClient = queues.get_queue_client(f"floor{tag}-control-00")
        self._tables = tables
        self.history_name = f"Floor{tag}History"
        self.instances_name = f"Floor{tag}Instances"
        self.history: TableClient = tables.get_table_client(self.history_name)
        self.instances: TableClient = tables.get_table_client(self.instances_name)

    async def create(self) -> None:
        await asyncio.gather(
            self.work.create_queue(),
            self.control.create_queue(),
            self._tables.create_table(self.history_name),
            self._tables.create_table(self.instances_name),
        )

    async def delete(self) -> None:
        await asyncio.gather(
            self.work.delete_queue(),
            self.control.delete_queue(),
            self._tables.delete_table(self.history_name),
            self._tables.delete_table(self.instances_name),
            return_exceptions=True,
        )

    async def new_chain(self) -> _Chain:
        key = "floor-" + secrets.token_hex(6)
        sentinel = await self.history.create_entity(
            {"PartitionKey": key, "RowKey": "sentinel", "ExecutionId": "e0"}
        )
        await self.instances.create_entity(
            {"PartitionKey": key, "RowKey": "", "RuntimeStatus": "Running", "ExecutionId": "e0"}
        )
        return _Chain(key, str(sentinel["etag"]))

    async def _receive_one(self, queue: QueueClient, timings: _Timings) -> QueueMessage:
        while True:
            async for message in queue.receive_messages(
                max_messages=1, visibility_timeout=VISIBILITY
            ):
                return message
            timings.empty_receives += 1

    async def _write_history(self, chain: _Chain) -> str:
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
        results = await self.history.submit_transaction(
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

    async def _merge_instance(self, chain: _Chain) -> None:
        await self.instances.update_entity(
            {
                "PartitionKey": chain.key,
                "RowKey": "",
                "LastUpdatedTime": datetime.now(UTC),
                "RuntimeStatus": "Running",
            },
            mode=UpdateMode.MERGE,
        )

    async def dtfx_step(self, chain: _Chain, t: _Timings) -> None:
        await t.timed(DTFX_ORDER[0], self.work.send_message(_WORK_ITEM, time_to_live=-1))
        work_item = await t.timed(DTFX_ORDER[1], self._receive_one(self.work, t))
        await t.timed(DTFX_ORDER[2], self.control.send_message(_RESULT, time_to_live=-1))
        await t.timed(DTFX_ORDER[3], self.work.delete_message(work_item))
        result = await t.timed(DTFX_ORDER[4], self._receive_one(self.control, t))
        chain.etag = await t.timed(DTFX_ORDER[5], self._write_history(chain))
        await t.timed(DTFX_ORDER[6], self._merge_instance(chain))
        await t.timed(DTFX_ORDER[7], self.control.delete_message(result))
        chain.index += 1

    async def handoff_step(self, chain: _Chain, t: _Timings) -> None:
        work_item = await t.timed(
            HANDOFF_ORDER[0],
            self.work.send_message(_WORK_ITEM, visibility_timeout=VISIBILITY, time_to_live=-1),
        )
        result = await t.timed(
            HANDOFF_ORDER[1],
            self.control.send_message(_RESULT, visibility_timeout=VISIBILITY, time_to_live=-1),
        )
        await t.timed(HANDOFF_ORDER[2], self.work.delete_message(work_item))
        chain.etag = await t.timed(HANDOFF_ORDER[3], self._write_history(chain))
        await t.timed(HANDOFF_ORDER[4], self._merge_instance(chain))
        await t.timed(HANDOFF_ORDER[5], self.control.delete_message(result))
        chain.index += 1


async def _sequential(floor: _Floor, steps: int, handoff: bool, t: _Timings) -> float:
    chain = await floor.new_chain()
    step = floor.handoff_step if handoff else floor.dtfx_step
    await step(chain, _Timings())  # warm the connections
    began = time.perf_counter()
    for _ in range(steps):
        await step(chain, t)
    return (time.perf_counter() - began) / steps


async def _parallel(floor: _Floor, chains: int, steps_each: int) -> float:
    all_chains = await asyncio.gather(*(floor.new_chain() for _ in range(chains)))
    t = _Timings()

    async def run(chain: _Chain) -> None:
        for _ in range(steps_each):
            await floor.dtfx_step(chain, t)

    began = time.perf_counter()
    await asyncio.gather(*(run(chain) for chain in all_chains))
    return chains * steps_each / (time.perf_counter() - began)


async def measure_floor(
    connection_string: str, *, runs: int, steps: int, parallel_chains: int
) -> FloorResult:
    """Time `runs` runs of `steps` steps of each variant on the storage behind the connection."""
    tag = secrets.token_hex(3)
    dtfx_t, handoff_t = _Timings(), _Timings()
    dtfx: list[float] = []
    handoff: list[float] = []
    parallel: list[float] = []
    async with (
        QueueServiceClient.from_connection_string(connection_string) as queues,
        TableServiceClient.from_connection_string(connection_string) as tables,
    ):
        floor = _Floor(queues, tables, tag)
        await floor.create()
        try:
            for _ in range(runs):
                dtfx.append(await _sequential(floor, steps, handoff=False, t=dtfx_t))
                handoff.append(await _sequential(floor, steps, handoff=True, t=handoff_t))
                parallel.append(
                    await _parallel(floor, parallel_chains, max(2, steps // parallel_chains * 2))
                )
        finally:
            await floor.delete()
    return FloorResult(
        runs=runs,
        steps_per_run=steps,
        dtfx_step_s=dtfx,
        handoff_step_s=handoff,
        parallel_steps_per_s=parallel,
        parallel_chains=parallel_chains,
        op_median_ms={op: median(s) * 1000 for op, s in dtfx_t.per_op.items()},
        handoff_op_median_ms={op: median(s) * 1000 for op, s in handoff_t.per_op.items()},
        empty_receives=dtfx_t.empty_receives,
    )
