"""Fan-out again and again on one hub: does the 20th run go as fast as the first, and if not, is it
the emulator or the engine?

One process, one `durable_ext.Runtime` (worker and client, the bench's `WorkerOptions`, tracking
events on, every storage request counted: `bench.engines.ours`) runs the FanOut scenario `runs`
times in a row on ONE hub, so the hub's History table grows by one fan-out's rows per run. Each
run records its rate, this process's CPU, Azurite's CPU, the storage requests by category (with
their median latency), RSS, the garbage collector's work (collections per generation and the
time spent in them, through `gc.callbacks`), the heap (`sys.getallocatedblocks`, tracked
objects) and the instance cache's size.

After each run the worker is left to finish its tail (the deletes of the work items the last
checkpoint consumed, still in flight when the client saw the orchestration complete; counted and
timed apart) until it has made no request for `QUIET` seconds. Then, before the next run, a fixed
raw-storage probe (`probe`, no engine: the lean REST path the engine uses) is timed twice: on the
SAME hub's tables (a small partition of its History table queried and read, its Instances row
read, queried and merged, a 100-row insert transaction, the lean sequential step of
bench/floor.py) and a probe queue beside its queues (the worker would take messages sent to its
own), and on a FRESH hub made for the probe (same Azurite, same moment, small tables). A probe
that slows on the grown hub but not on the fresh one is the emulator paying for table size
(Azurite keeps tables in LokiJS, where a query filters every row of the table); one that slows on
both is the machine or the emulator as a whole.

Before the first run, before every `control_every`-th and after the last, the same fan-out runs on
a fresh hub served by a second runtime in this process and event loop (the control: what the
machine and the process do to the rate without the hub's growth). At the end, `back_to_back` runs
follow one another with no pause, as a client driving a host starts them: each after the first
starts while the previous one's tail is still being deleted.

    .venv/bin/python -m bench.repeat --connection CS --hub HUB [--runs 20] [--size 1000]
        [--storage-pid PID] [--option NAME=VALUE ...] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import secrets
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

from azure.data.tables.aio import TableServiceClient
from azure.storage.queue.aio import QueueServiceClient

from durable_ext import Runtime
from durable_ext.storage.connection import StorageConnection
from durable_ext.storage.names import TaskHubNames
from durable_ext.storage.rest.queue_messages import QueueMessages
from durable_ext.storage.rest.table_rows import BatchOperation, TableRows

from .engines.base import Outcome
from .engines.ours import DurableExtEngine, parse_option, registry
from .metrics import Clock, median, pid_memory_mb, self_memory_mb

__all__ = ["PROBE_OPS", "GcTimer", "main", "measure_repeat", "probe"]

T = TypeVar("T")
BATCH_ROWS = 100
"""Rows of the probe's insert transaction: the most a table transaction takes, as a fan-out's
checkpoint writes them."""
QUERY_ROWS = 10
"""Rows of the small History partition the probe queries."""
HELD = 300
"""Seconds the probe's received or held messages stay invisible."""
QUIET = 0.3
"""Seconds without a worker request (empty polls aside) after which a finished run is settled."""
SETTLE_TIMEOUT = 60.0
PROBE_OPS = (
    "history.query",
    "history.get",
    "history.batch",
    "instances.get",
    "instances.query",
    "instances.merge",
    "queue.send",
    "queue.receive",
    "queue.delete",
    "step",
)
"""What the probe times, each `repeats` times. ``step`` is floor.py's lean sequential step (work
item sent invisible, history transaction under the sentinel ETag, work item deleted)."""
_STEP_BODY = json.dumps({"probe": "work item", "padding": "x" * 500})


class GcTimer:
    """Seconds the garbage collector spends per generation, from `gc.callbacks`."""

    def __init__(self) -> None:
        self.seconds = [0.0, 0.0, 0.0]
        self._began: float | None = None

    def __enter__(self) -> GcTimer:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._callback)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        elif self._began is not None:
            self.seconds[info["generation"]] += time.perf_counter() - self._began
            self._began = None

    def snapshot(self) -> dict[str, list[float]]:
        stats = gc.get_stats()
        return {
            "seconds": list(self.seconds),
            "collections": [s["collections"] for s in stats],
            "collected": [s["collected"] for s in stats],
        }


def _gc_delta(before: dict[str, list[float]], after: dict[str, list[float]]) -> dict[str, Any]:
    return {key: [a - b for a, b in zip(after[key], before[key], strict=True)] for key in after}


# -- the probe --------------------------------------------------------------------------------------
class _Timed:
    def __init__(self) -> None:
        self.seconds: dict[str, list[float]] = {op: [] for op in PROBE_OPS}

    async def run(self, op: str, call: Coroutine[Any, Any, T]) -> T:
        began = time.perf_counter()
        value = await call
        self.seconds[op].append(time.perf_counter() - began)
        return value


async def _probe_once(
    history: TableRows,
    instances: TableRows,
    queue: QueueMessages,
    step_etag: str,
    batch_key: str,
    t: _Timed,
) -> str:
    await t.run("history.query", _count(history, "PartitionKey eq 'probe-query'"))
    await t.run("history.get", history.get("probe-query", f"{0:016X}"))
    rows = [
        {"PartitionKey": batch_key, "RowKey": f"{i:016X}", "EventType": "TaskScheduled", "Value": i}
        for i in range(BATCH_ROWS)
    ]
    await t.run("history.batch", history.transact([BatchOperation("insert", r) for r in rows]))
    await t.run("instances.get", instances.get("probe-instance", ""))
    await t.run(
        "instances.query",
        _count(instances, "RuntimeStatus eq 'Pending' or RuntimeStatus eq 'Running'"),
    )
    merge = {"PartitionKey": "probe-instance", "RowKey": "", "LastUpdatedTime": time.time()}
    await t.run("instances.merge", instances.write("merge", merge))
    await t.run("queue.send", queue.put(_STEP_BODY, visibility_timeout=None))
    found = await t.run("queue.receive", queue.get(1, HELD))
    if found:
        await t.run("queue.delete", queue.delete(found[0].id, found[0].pop_receipt))
    began = time.perf_counter()
    sent = await queue.put(_STEP_BODY, visibility_timeout=HELD)
    row = {"PartitionKey": "probe-step", "RowKey": secrets.token_hex(8), "Result": "1"}
    sentinel = {"PartitionKey": "probe-step", "RowKey": "sentinel", "IsCheckpointComplete": True}
    etags = await history.transact(
        [BatchOperation("upsert", row), BatchOperation("merge", sentinel, step_etag)]
    )
    await queue.delete(sent.id, sent.pop_receipt)
    t.seconds["step"].append(time.perf_counter() - began)
    return etags[-1]


async def _count(rows: TableRows, odata_filter: str) -> int:
    return sum([1 async for _ in rows.query(odata_filter)])


async def probe(
    connection_string: str,
    names: TaskHubNames,
    queue_name: str,
    *,
    repeats: int,
    storage_pid: int | None = None,
) -> dict[str, Any]:
    """Time the raw-storage probe `repeats` times on the hub `names` (its History and Instances
    tables, which must exist) and the queue `queue_name` (which must exist): each op's median ms,
    this process's and Azurite's CPU over the probe, and Azurite's CPU per request."""
    connection = StorageConnection.from_connection_string(connection_string)
    tables, queues = connection.rest_transport("table"), connection.rest_transport("queue")
    history = TableRows(tables, names.history_table)
    instances = TableRows(tables, names.instances_table)
    queue = QueueMessages(queues, queue_name)
    batch_keys = [f"probe-batch-{secrets.token_hex(4)}" for _ in range(repeats)]
    try:
        seed = [
            BatchOperation("upsert", {"PartitionKey": "probe-query", "RowKey": f"{i:016X}"})
            for i in range(QUERY_ROWS)
        ]
        await history.transact(seed)
        step_etag = await history.write(
            "upsert", {"PartitionKey": "probe-step", "RowKey": "sentinel"}
        )
        # Completed: nothing that looks for unfinished instances takes it for one.
        await instances.write(
            "upsert", {"PartitionKey": "probe-instance", "RowKey": "", "RuntimeStatus": "Completed"}
        )
        t = _Timed()
        clock = Clock(storage_pid)
        for key in batch_keys:
            step_etag = await _probe_once(history, instances, queue, step_etag, key, t)
        window = clock.stop()
        for key in batch_keys:  # keep the hub as the engine left it (untimed)
            await history.transact(
                [
                    BatchOperation("delete", {"PartitionKey": key, "RowKey": f"{i:016X}"})
                    for i in range(BATCH_ROWS)
                ]
            )
    finally:
        await asyncio.gather(tables.close(), queues.close())
        await connection.close()
    requests = sum(len(s) for s in t.seconds.values()) + 2 * len(t.seconds["step"])
    op_ms = {op: median(s) * 1000 for op, s in t.seconds.items() if s}
    return {
        "repeats": repeats,
        "op_median_ms": op_ms,
        "pass_ms": window.wall_s * 1000 / repeats,
        "requests": requests,
        "cpu_s": window.cpu_s,
        "storage_cpu_s": window.storage_cpu_s,
        "storage_cpu_ms_per_request": (
            window.storage_cpu_s * 1000 / requests if window.storage_cpu_s is not None else None
        ),
    }


async def _fresh_hub_probe(
    connection_string: str, *, repeats: int, storage_pid: int | None
) -> dict[str, Any]:
    """The probe on a hub made for it (its two tables and a queue), deleted afterwards."""
    names = TaskHubNames(f"RepeatControl{secrets.token_hex(3)}")
    queue_name = f"{names.lower}-probe"
    async with (
        TableServiceClient.from_connection_string(connection_string) as tables,
        QueueServiceClient.from_connection_string(connection_string) as queues,
    ):
        await asyncio.gather(
            tables.create_table(names.history_table),
            tables.create_table(names.instances_table),
            queues.create_queue(queue_name),
        )
        try:
            return await probe(
                connection_string, names, queue_name, repeats=repeats, storage_pid=storage_pid
            )
        finally:
            await asyncio.gather(
                tables.delete_table(names.history_table),
                tables.delete_table(names.instances_table),
                queues.delete_queue(queue_name),
                return_exceptions=True,
            )


# -- the runs ---------------------------------------------------------------------------------------
class _Engine(DurableExtEngine):
    """The bench's durable_ext engine, with a way to run probe coroutines on its event loop (so
    the worker keeps polling while they run) and to read its instance cache."""

    def __init__(self, connection_string: str, hub: str, options: dict[str, Any]) -> None:
        super().__init__(connection_string, hub, options)
        self.connection_string = connection_string

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self._runner.run(coroutine)

    def control_run(self, size: int) -> Outcome:
        """A fan-out on a fresh hub served by a second runtime in this process and event loop
        (warmed up by a small fan-out first), which is stopped and its hub deleted afterwards."""
        hub = f"RepeatFresh{secrets.token_hex(3)}"
        control = Runtime(registry(), connection=self.connection, hub=hub, options=self.options)
        self.call(control.__aenter__())
        main, self._runtime = self._runtime, control
        try:
            self.run("fanout", 3, 0)
            self.reset_storage_requests()
            return self.run("fanout", size, 0)
        finally:
            self._runtime = main
            self.call(self._stop(control))

    def worker_requests(self) -> int:
        """The worker's requests since the last reset, empty queue polls left out."""
        return self.counters["worker"].total(include_empty_receives=False)

    def cached_instances(self) -> int:
        worker = self._runtime.worker if self._runtime is not None else None
        return len(worker.orchestrations.cache) if worker is not None else 0


def _heap() -> dict[str, int]:
    return {"allocated_blocks": sys.getallocatedblocks(), "gc_objects": len(gc.get_objects())}


def measure_repeat(
    connection_string: str,
    hub: str,
    *,
    runs: int,
    size: int,
    probe_repeats: int = 10,
    control_every: int = 5,
    storage_pid: int | None = None,
    options: Sequence[str] = (),
    warm_up: bool = True,
    back_to_back: int = 3,
) -> dict[str, Any]:
    """Fan out `size` activities `runs` times on `hub`; before each run, the probe on the same hub
    and on a fresh one; before the first run, after the last and before every `control_every`-th
    run, the same fan-out on a fresh hub (the control). Then `back_to_back` more runs on the hub with
    no pause between them (as a client driving a host does): each after the first starts while the
    previous one's tail is still being deleted. Every run's figures."""
    engine = _Engine(connection_string, hub, dict(parse_option(o) for o in options))
    names = TaskHubNames(hub)
    queue_name = f"{names.lower}-probe"
    records: list[dict[str, Any]] = []
    controls: list[dict[str, Any]] = []
    engine.start()
    try:
        if warm_up:
            engine.warm_up()
        engine.call(_create_queue(connection_string, queue_name))
        with GcTimer() as gc_timer:
            for index in range(runs):
                if index % control_every == 0:
                    controls.append(_control(engine, index, size, storage_pid))
                records.append(
                    _one_run(
                        engine, index, size, names, queue_name, probe_repeats, storage_pid, gc_timer
                    )
                )
            controls.append(_control(engine, runs, size, storage_pid))
            engine.call(_settle(engine))
            chained = [_back_to_back(engine, size, storage_pid) for _ in range(back_to_back)]
        engine.call(_delete_queue(connection_string, queue_name))
    finally:
        engine.stop()
    return {
        "runs": runs,
        "size": size,
        "probe_repeats": probe_repeats,
        "batch_rows": BATCH_ROWS,
        "options": list(options),
        "control_every": control_every,
        "records": records,
        "controls": controls,
        "back_to_back": chained,
    }


def _back_to_back(engine: _Engine, size: int, storage_pid: int | None) -> dict[str, Any]:
    """A run started at once after the previous one: its requests include the previous run's
    tail (the deletes still in flight when its client saw it complete)."""
    engine.reset_storage_requests()
    figures = _timed(lambda: engine.run("fanout", size, 0), storage_pid)
    requests = engine.storage_requests()
    return figures | {
        "worker_requests": requests["total"],
        "deletes": requests["by_category"].get("queue.delete", 0),
    }


def _control(
    engine: _Engine, before_run: int, size: int, storage_pid: int | None
) -> dict[str, Any]:
    """The control fan-out on a fresh hub, placed before run `before_run` + 1 (after the last run
    when it equals the number of runs)."""
    return {"before_run": before_run + 1} | _timed(lambda: engine.control_run(size), storage_pid)


def _timed(run: Callable[[], Outcome], storage_pid: int | None) -> dict[str, Any]:
    """One fan-out's outcome, rate (to the moment its client saw it complete) and CPU."""
    clock = Clock(storage_pid)
    outcome = run()
    window = clock.stop()
    finished_at = outcome.detail.get("finished_at")
    wall = finished_at - clock.started if finished_at is not None else window.wall_s
    return {
        "correct": outcome.correct,
        "units": outcome.units,
        "wall_s": wall,
        "throughput_per_s": outcome.units / wall if wall > 0 else None,
        "cpu_s": window.cpu_s,
        "storage_cpu_s": window.storage_cpu_s,
        "other_cpu_s": window.other_cpu_s,
    }


def _one_run(
    engine: _Engine,
    index: int,
    size: int,
    names: TaskHubNames,
    queue_name: str,
    probe_repeats: int,
    storage_pid: int | None,
    gc_timer: GcTimer,
) -> dict[str, Any]:
    cs = engine.connection_string
    probes = {
        "probe": probe(cs, names, queue_name, repeats=probe_repeats, storage_pid=storage_pid),
        "control": _fresh_hub_probe(cs, repeats=probe_repeats, storage_pid=storage_pid),
    }
    order = list(probes) if index % 2 == 0 else list(reversed(probes))  # neither always first
    record: dict[str, Any] = {"run": index + 1}
    for key in order:
        record[key] = engine.call(probes[key])
    engine.reset_storage_requests()
    gc_before, heap_before = gc_timer.snapshot(), _heap()
    record |= _timed(lambda: engine.run("fanout", size, 0), storage_pid)
    requests = engine.storage_requests()
    engine.reset_storage_requests()
    tail = Clock(storage_pid)
    busy_s = engine.call(_settle(engine))
    tail_window = tail.stop()
    record |= {
        "requests": requests,
        "tail": {
            "wall_s": busy_s,
            "cpu_s": tail_window.cpu_s,
            "storage_cpu_s": tail_window.storage_cpu_s,
            "requests": engine.storage_requests(),
        },
        "rss_mb": self_memory_mb().get("rss"),
        "gc": _gc_delta(gc_before, gc_timer.snapshot()),
        "heap_before": heap_before,
        "heap_after": _heap(),
        "cached_instances": engine.cached_instances(),
    }
    if storage_pid is not None:
        record["azurite_rss_mb"] = pid_memory_mb(storage_pid).get("rss")
    return record


async def _settle(engine: _Engine) -> float:
    """Wait until the worker has made no request but empty polls for `QUIET` seconds: what a
    finished fan-out still does after its client saw it complete (deleting the messages its last
    checkpoints consumed) must not overlap the next probe. The seconds until its last request."""
    began = time.monotonic()
    seen, since = 0, began
    while since - began < SETTLE_TIMEOUT:
        count = engine.worker_requests()
        if count != seen:
            seen, since = count, time.monotonic()
        elif time.monotonic() - since >= QUIET:
            break
        await asyncio.sleep(QUIET / 8)
    return since - began


async def _create_queue(connection_string: str, name: str) -> None:
    async with QueueServiceClient.from_connection_string(connection_string) as queues:
        await queues.create_queue(name)


async def _delete_queue(connection_string: str, name: str) -> None:
    async with QueueServiceClient.from_connection_string(connection_string) as queues:
        await queues.delete_queue(name)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connection", required=True)
    parser.add_argument("--hub", required=True)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--probe-repeats", type=int, default=10)
    parser.add_argument("--control-every", type=int, default=5)
    parser.add_argument("--back-to-back", type=int, default=3)
    parser.add_argument("--storage-pid", type=int, help="Azurite's pid, to measure its CPU")
    parser.add_argument("--option", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--json", type=Path, default=None, help="write the result here")
    args = parser.parse_args(argv)
    result = measure_repeat(
        args.connection,
        args.hub,
        runs=args.runs,
        size=args.size,
        probe_repeats=args.probe_repeats,
        control_every=args.control_every,
        back_to_back=args.back_to_back,
        storage_pid=args.storage_pid,
        options=args.option,
    )
    text = json.dumps(result, indent=1)
    if args.json is not None:
        args.json.write_text(text + "\n")
    for r in result["records"]:
        sys.stderr.write(
            f"run {r['run']:>2}: {r['throughput_per_s']:7.1f}/s  cpu {r['cpu_s']:.2f} s  "
            f"azurite {r['storage_cpu_s'] or 0:.2f} s  probe {r['probe']['pass_ms']:.1f} ms "
            f"(fresh hub {r['control']['pass_ms']:.1f} ms)  gc {sum(r['gc']['seconds']):.3f} s  "
            f"cache {r['cached_instances']}\n"
        )
    for b in result["back_to_back"]:
        sys.stderr.write(f"back to back: {b['throughput_per_s']:7.1f}/s ({b['deletes']} deletes)\n")
    for c in result["controls"]:
        sys.stderr.write(
            f"fresh hub before run {c['before_run']:>2}: {c['throughput_per_s']:7.1f}/s\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
