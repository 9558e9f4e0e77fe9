"""Scale-out: HelloCities on one task hub served by one worker process, then by two.

Each worker is a separate OS process (``python -m bench.scale_out --worker ...``) running a
`durable_ext.Runtime` with the bench's `WorkerOptions` (tracking events on, as by default) and
answering a small control channel on stdin/stdout: ``status`` (its owned partitions, what it ran,
its storage requests), ``reset`` (counters to zero) and end of input (stop gracefully). The
measuring process (``--measure``) is the client: it starts the workers on a fresh hub, waits until
the partitions have rebalanced (every worker serves some, together all, and the `{Hub}Partitions`
table has no hand-over pending), runs a warm-up HelloCities, checks the balance again, then runs
HelloCities the way the in-process scenario does (`ours.run_hellocities`: `START_CONCURRENCY`
starts, the Instances table polled every 50 ms) and measures the wall time, each worker's CPU
(/proc/PID/stat), its own CPU, Azurite's and the rest of the machine's, every process's storage
requests (`bench/counting.py`, with queue traffic split by queue and message counts), and which
worker ran how many orchestrations, episodes and activities (counted by the functions).

The suite (`Suite.scale_out`, results key ``scale_out``) interleaves one- and two-worker runs;
`summarize_scale_out` gives the ratio (goal: two ≥ 1.0× one) and the findings, computed from
the runs: how busy the machine's cores were, Azurite's share, the cost per orchestration with
one and two workers, how work spread over the workers, and how activities reached them.

    .venv/bin/python -m bench.scale_out --measure --workers 2 --connection CS --hub HUB \\
        [--count 500] [--steps 5] [--storage-pid PID] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
import time
from collections import Counter
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from azure.data.tables.aio import TableClient

from durable_ext import DurableOrchestrationContext, Runtime
from durable_ext.storage.client_options import RequestObserver, StorageClientOptions
from durable_ext.storage.connection import StorageConnection
from durable_ext.storage.names import TaskHubNames
from durable_ext.worker import FunctionRegistry
from harness.azurite import die_with_parent

from . import telemetry
from .counting import ACTOR, ActorCounters
from .engines import ours
from .metrics import Clock, median, pid_cpu_seconds

__all__ = [
    "GOAL_RATIO",
    "balanced",
    "measure_scale_out",
    "queue_traffic",
    "scale_out_markdown",
    "scale_out_verdict",
    "summarize_scale_out",
]

STATUS_PREFIX = "SCALE-STATUS "
GOAL_RATIO = 1.0
"""Two worker processes on one hub against one: at least as fast (issue 20)."""
REBALANCE_TIMEOUT = 120.0
ANSWER_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
STDERR_TAIL = 3000
BUSY_CORES = 0.85
"""The machine counts as full when its processes kept this share of every core busy."""
AZURITE_SATURATED = 0.85
"""Azurite (one Node.js thread for the work) counts as saturated above this share of one core."""


# -- the worker process ----------------------------------------------------------------------------
class WorkDone:
    """What this worker's functions ran: HelloCities first episodes, episodes that got a new
    activity result, completions (each counted when not replaying), and activities (ours.CLOCK)."""

    def __init__(self) -> None:
        self.started = self.episodes = self.completed = 0

    def reset(self) -> None:
        self.started = self.episodes = self.completed = 0
        ours.CLOCK.reset()

    def to_json(self) -> dict[str, int]:
        return {
            "started": self.started,
            "episodes": self.episodes,
            "completed": self.completed,
            "activities": ours.CLOCK.count,
        }


DONE = WorkDone()


def hello_cities(context: DurableOrchestrationContext) -> Generator[Any, Any, list[str]]:
    """`ours.hello_cities`, counting in `DONE` what this worker ran of it."""
    if not context.is_replaying:
        DONE.started += 1
    greetings = []
    for city in context.get_input():
        greetings.append((yield context.call_activity("SayHello", city)))
        if not context.is_replaying:
            DONE.episodes += 1
    if not context.is_replaying:
        DONE.completed += 1
    return greetings


def _registry() -> FunctionRegistry:
    functions = FunctionRegistry()
    functions.add_orchestrator("HelloCities", hello_cities)
    functions.add_activity("SayHello", ours.say_hello)
    return functions


def queue_traffic(method: str, url: str, body: bytes) -> Counter[str]:
    """What one queue request did, by queue kind (``workitems`` / ``control``): messages sent
    visible or held (sent invisible for an in-process handoff), messages received, empty
    receives."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    if not path.endswith("/messages"):
        return Counter()
    queue = path.rsplit("/", 2)[-2]
    kind = (
        "workitems" if queue.endswith("-workitems") else "control" if "-control-" in queue else ""
    )
    if not kind:
        return Counter()
    if method == "POST":
        hidden = int(parse_qs(parts.query).get("visibilitytimeout", ["0"])[0]) > 0
        return Counter({f"{kind}.sent_{'held' if hidden else 'visible'}": 1})
    if method == "GET":
        messages = body.count(b"<QueueMessage>")
        return Counter({f"{kind}.received": messages} if messages else {f"{kind}.empty": 1})
    return Counter()


class TrafficCounters(ActorCounters):
    """`ActorCounters` that also count queue traffic by queue kind (`queue_traffic`) and the
    partition manager's requests to the `{Hub}Partitions` table."""

    def __init__(self) -> None:
        super().__init__()
        self.traffic: Counter[str] = Counter()

    def reset(self) -> None:
        super().reset()
        self.traffic = Counter()

    def rest_observer(self, service: str) -> RequestObserver:
        count = super().rest_observer(service)

        def observe(method: str, url: str, status: int, seconds: float, body: bytes) -> None:
            count(method, url, status, seconds, body)
            if service == "queue":
                self.traffic.update(queue_traffic(method.upper(), url, body))

        return observe

    def sdk_hooks(self, service: str) -> dict[str, Any]:
        hooks = super().sdk_hooks(service)
        if service != "table":
            return hooks
        on_request = hooks["raw_request_hook"]

        def counted(request: Any) -> None:
            on_request(request)
            if "Partitions" in urlsplit(request.http_request.url).path:
                self.traffic["partitions_table"] += 1

        return {**hooks, "raw_request_hook": counted}


class OwnershipLog(logging.Handler):
    """Keeps the partition manager's messages (``durable_ext.leases``, INFO and up) since the
    last reset, with the seconds since it: partitions acquired, lost, stolen, passes failed."""

    LIMIT = 100

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.since = time.monotonic()
        self.lost = 0
        self.failed_passes = 0
        self.messages: list[str] = []

    def reset(self) -> None:
        self.since, self.lost, self.failed_passes, self.messages = time.monotonic(), 0, 0, []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        self.lost += text.startswith("Lost partition")
        self.failed_passes += text.startswith("Partition table pass failed")
        if len(self.messages) < self.LIMIT:
            self.messages.append(f"{time.monotonic() - self.since:7.1f} s {text}")

    def to_json(self) -> dict[str, Any]:
        return {"lost": self.lost, "failed_passes": self.failed_passes, "log": self.messages}


def _connection(connection_string: str, counters: ActorCounters) -> StorageConnection:
    connection = StorageConnection.from_connection_string(connection_string)
    return connection.with_options(StorageClientOptions(watcher=counters))


async def _serve(connection_string: str, hub: str, name: str, options: dict[str, Any]) -> None:
    counters = TrafficCounters()
    chosen = dict(options)
    chosen.update(telemetry.configure(chosen.pop(telemetry.OPTION, "events")))
    runtime = Runtime(
        _registry(),
        connection=_connection(connection_string, counters),
        hub=hub,
        options=ours.worker_options(chosen),
    )
    ownership = OwnershipLog()
    leases_log = logging.getLogger("durable_ext.leases")
    leases_log.setLevel(logging.INFO)
    leases_log.addHandler(ownership)
    loop = asyncio.get_running_loop()
    commands = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(commands), sys.stdin)

    def report() -> None:
        worker = runtime.worker
        assert worker is not None
        status = {
            "name": name,
            "pid": os.getpid(),
            "worker_id": worker.options.worker_id,
            "owned": sorted(worker.leases.owned),
            "done": DONE.to_json(),
            "requests": ours.counter_json(counters["worker"]),
            "traffic": dict(counters.traffic),
            "ownership": ownership.to_json(),
        }
        sys.stdout.write(STATUS_PREFIX + json.dumps(status) + "\n")
        sys.stdout.flush()

    async with runtime:
        report()
        while line := (await commands.readline()).decode().strip():
            if line == "reset":
                counters.reset()
                DONE.reset()
                ownership.reset()
            report()


def worker_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description="A durable_ext worker with a control channel.")
    parser.add_argument("--connection", required=True)
    parser.add_argument("--hub", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--option", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args(argv)
    options = dict(ours.parse_option(o) for o in args.option)
    asyncio.run(_serve(args.connection, args.hub, args.name, options))
    return 0


# -- the measuring process ---------------------------------------------------------------------------
class _Worker:
    """One worker process and its control channel."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.statuses: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.stderr_tail = ""
        """The last `STDERR_TAIL` characters it wrote to stderr (read all along, so a chatty
        worker never blocks on a full pipe)."""
        self._readers = [
            asyncio.create_task(self._read()),
            asyncio.create_task(self._read_stderr()),
        ]

    @classmethod
    async def start(cls, connection: str, hub: str, name: str, options: Sequence[str]) -> _Worker:
        command = [sys.executable, "-m", "bench.scale_out", "--worker", "--connection", connection]
        command += ["--hub", hub, "--name", name]
        for option in options:
            command += ["--option", option]
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            preexec_fn=die_with_parent(),  # no orphaned worker if the suite is killed
        )
        return cls(process)

    @property
    def pid(self) -> int:
        return self.process.pid

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            line = raw.decode(errors="replace").strip()
            if line.startswith(STATUS_PREFIX):
                await self.statuses.put(json.loads(line[len(STATUS_PREFIX) :]))

    async def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        async for raw in self.process.stderr:
            self.stderr_tail = (self.stderr_tail + raw.decode(errors="replace"))[-STDERR_TAIL:]

    async def answer(self) -> dict[str, Any]:
        async with asyncio.timeout(ANSWER_TIMEOUT):
            return await self.statuses.get()

    async def ask(self, command: str) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(command.encode() + b"\n")
        await self.process.stdin.drain()
        return await self.answer()

    async def stop(self) -> str:
        """Close the channel (the worker stops gracefully); its stderr's tail."""
        if self.process.stdin is not None and not self.process.stdin.is_closing():
            self.process.stdin.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.process.wait(), STOP_TIMEOUT)
        if self.process.returncode is None:  # still stopping: a crash from here on is fine
            self.process.kill()
            await self.process.wait()
        await asyncio.wait(self._readers, timeout=ANSWER_TIMEOUT)  # they end at end of file
        for reader in self._readers:
            reader.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
        return self.stderr_tail


def balanced(owned: Sequence[Sequence[int]], partitions: int) -> bool:
    """Every worker serves at least one partition, no partition twice, and all together."""
    served = [p for worker in owned for p in worker]
    return all(owned) and len(served) == len(set(served)) and set(served) == set(range(partitions))


async def _partition_rows(connection: str, hub: str) -> list[dict[str, Any]]:
    """The `{Hub}Partitions` rows: queue, current owner, next owner, draining."""
    table = TaskHubNames(hub).partitions_table
    async with TableClient.from_connection_string(connection, table) as client:
        return [
            {
                "queue": row["RowKey"],
                "owner": row.get("CurrentOwner"),
                "next_owner": row.get("NextOwner"),
                "draining": bool(row.get("IsDraining", False)),
            }
            async for row in client.list_entities()
        ]


async def _wait_balanced(
    workers: Sequence[_Worker], connection: str, hub: str, partitions: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Ask the workers until they serve a balanced share and the table has no hand-over
    pending; their statuses and the table's rows then."""
    async with asyncio.timeout(REBALANCE_TIMEOUT):
        while True:
            statuses = [await w.ask("status") for w in workers]
            if balanced([s["owned"] for s in statuses], partitions):
                rows = await _partition_rows(connection, hub)
                if not any(r["next_owner"] or r["draining"] for r in rows):
                    return statuses, rows
            await asyncio.sleep(0.25)


async def measure_scale_out(
    connection: str,
    hub: str,
    workers: int,
    count: int,
    steps: int,
    *,
    warm_up: int = 0,
    options: Sequence[str] = (),
    storage_pid: int | None = None,
) -> dict[str, Any]:
    """HelloCities (`count` × `steps`) on a fresh hub served by `workers` worker processes,
    measured after the partitions have rebalanced and a warm-up of `warm_up` orchestrations."""
    partitions = ours.worker_options().partition_count
    result: dict[str, Any] = {
        "workers": workers,
        "count": count,
        "steps": steps,
        "warm_up": warm_up,
        "options": list(options),
        "partitions": partitions,
        "cores": os.cpu_count(),
    }
    client_counters = ActorCounters()
    ACTOR.set("client")
    client_runtime = Runtime(
        _registry(), connection=_connection(connection, client_counters), hub=hub, run_worker=False
    )
    began = time.monotonic()
    procs = await asyncio.gather(
        *(_Worker.start(connection, hub, f"w{i + 1}", options) for i in range(workers))
    )
    stopped = False
    try:
        await asyncio.gather(*(w.answer() for w in procs))  # each has started
        await _wait_balanced(procs, connection, hub, partitions)
        result["rebalance_s"] = time.monotonic() - began
        async with client_runtime:
            client = client_runtime.client
            if warm_up:
                await ours.run_hellocities(client, warm_up, steps)
            before, result["partition_rows"] = await _wait_balanced(
                procs, connection, hub, partitions
            )
            for w in procs:
                await w.ask("reset")
            client_counters.reset()
            cpu0 = [pid_cpu_seconds(w.pid) for w in procs]
            clock = Clock(storage_pid)
            outcome = await ours.run_hellocities(client, count, steps)
            window = clock.stop()
            cpu = [pid_cpu_seconds(w.pid) - c for w, c in zip(procs, cpu0, strict=True)]
            after = [await w.ask("status") for w in procs]
            stderr, stopped = await asyncio.gather(*(w.stop() for w in procs)), True
            await client_runtime.hub.delete()  # once no worker serves it
    finally:
        if not stopped:
            stderr = await asyncio.gather(*(w.stop() for w in procs))
    failed = [s for w, s in zip(procs, stderr, strict=True) if w.process.returncode != 0]
    if failed:
        result["worker_stderr"] = failed
    wall = outcome.detail["finished_at"] - clock.started
    workers_cpu = sum(cpu)
    result.update(
        units=outcome.units,
        correct=outcome.correct,
        wall_s=wall,
        throughput_per_s=outcome.units / wall if wall > 0 else None,
        start_calls_s=outcome.detail.get("start_calls_s"),
        client_cpu_s=window.cpu_s,
        storage_cpu_s=window.storage_cpu_s,
        # The machine's busy time minus every process measured here.
        other_cpu_s=max(0.0, window.other_cpu_s - workers_cpu),
        machine_cpu_s=window.machine_cpu_s,
        workers_cpu_s=workers_cpu,
        client_requests=ours.counter_json(client_counters["client"]),
        per_worker=[
            {
                "name": status["name"],
                "worker_id": status["worker_id"],
                "owned_before": start["owned"],
                "owned_after": status["owned"],
                "cpu_s": seconds,
                **status["done"],
                "requests": status["requests"],
                "traffic": status["traffic"],
                "ownership": status["ownership"],
            }
            for start, status, seconds in zip(before, after, cpu, strict=True)
        ],
    )
    return result


def measure_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description="HelloCities on one hub over N worker processes.")
    parser.add_argument("--connection", required=True)
    parser.add_argument("--hub", required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warm-up", type=int, default=50)
    parser.add_argument("--storage-pid", type=int)
    parser.add_argument("--option", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    result = asyncio.run(
        measure_scale_out(
            args.connection,
            args.hub,
            args.workers,
            args.count,
            args.steps,
            warm_up=args.warm_up,
            options=args.option,
            storage_pid=args.storage_pid,
        )
    )
    text = json.dumps(result, indent=1)
    if args.json is not None:
        args.json.write_text(text + "\n")
    else:
        sys.stdout.write(text + "\n")
    return 0


# -- summary and report ------------------------------------------------------------------------------
def _ok(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in runs if "error" not in r and r.get("throughput_per_s")]


def _med(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return median(known) if known else None


def _per_orchestration(run: dict[str, Any], get: Any) -> float:
    return float(sum(get(w) for w in run["per_worker"])) / run["units"]


def _request_median(runs: Sequence[dict[str, Any]], category: str) -> float | None:
    """The median over runs of the median over workers of one category's request time."""
    per_run = [
        [m for w in r["per_worker"] if (m := w["requests"]["median_ms"].get(category))]
        for r in runs
    ]
    return _med([median(times) for times in per_run if times])


def _ownership_changed(run: dict[str, Any]) -> bool:
    """A partition changed hands (or lapsed) during the measured stretch of `run`."""
    return any(
        w["owned_before"] != w["owned_after"] or w.get("ownership", {}).get("lost", 0)
        for w in run["per_worker"]
    )


def _figures(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the runs with one number of workers."""
    good = _ok(runs)
    if not good:
        return {"runs": len(runs), "error": runs[0].get("error", "no run") if runs else "not run"}

    def busy(run: dict[str, Any]) -> float:
        spent = run["workers_cpu_s"] + run["client_cpu_s"] + (run["storage_cpu_s"] or 0.0)
        return (spent + run["other_cpu_s"]) / (run["wall_s"] * (run["cores"] or 1))

    def traffic(key: str) -> float | None:
        return _med([_per_orchestration(r, lambda w: w["traffic"].get(key, 0)) for r in good])

    activities = [sum(w["activities"] for w in r["per_worker"]) for r in good]
    received = [
        sum(w["traffic"].get("workitems.received", 0) for w in r["per_worker"]) for r in good
    ]
    return {
        "runs": len(runs),
        "failed_runs": len(runs) - len(good),
        "all_correct": all(r["correct"] for r in good),
        "throughput_per_s": _med([r["throughput_per_s"] for r in good]),
        "throughput_runs": [r["throughput_per_s"] for r in good],
        "wall_s": _med([r["wall_s"] for r in good]),
        "rebalance_s": _med([r.get("rebalance_s") for r in good]),
        "workers_cpu_s": _med([r["workers_cpu_s"] for r in good]),
        "workers_cpu_ms_per_orchestration": _med(
            [r["workers_cpu_s"] * 1000 / r["units"] for r in good]
        ),
        "client_cpu_s": _med([r["client_cpu_s"] for r in good]),
        "storage_cpu_s": _med([r["storage_cpu_s"] for r in good]),
        "storage_cpu_ms_per_orchestration": _med(
            [(r["storage_cpu_s"] or 0.0) * 1000 / r["units"] for r in good]
        ),
        "storage_core_share": _med([(r["storage_cpu_s"] or 0.0) / r["wall_s"] for r in good]),
        "all_cpu_ms_per_orchestration": _med(
            [
                (r["workers_cpu_s"] + r["client_cpu_s"] + (r["storage_cpu_s"] or 0.0))
                * 1000
                / r["units"]
                for r in good
            ]
        ),
        "queue_send_median_ms": _request_median(good, "queue.send"),
        "table_batch_median_ms": _request_median(good, "table.batch"),
        "other_cpu_s": _med([r["other_cpu_s"] for r in good]),
        "cores": good[0]["cores"],
        "cores_busy": _med([busy(r) for r in good]),
        "requests_per_orchestration": _med(
            [_per_orchestration(r, lambda w: w["requests"]["total"]) for r in good]
        ),
        "requests_without_empty_per_orchestration": _med(
            [
                _per_orchestration(r, lambda w: w["requests"]["total_without_empty_receives"])
                for r in good
            ]
        ),
        "client_requests_per_orchestration": _med(
            [r["client_requests"]["total"] / r["units"] for r in good]
        ),
        "empty_receives_per_orchestration": _med(
            [
                _per_orchestration(
                    r, lambda w: w["requests"]["by_category"].get("queue.receive.empty", 0)
                )
                for r in good
            ]
        ),
        "partition_table_per_orchestration": traffic("partitions_table"),
        "control_received_per_orchestration": traffic("control.received"),
        "merges_per_orchestration": _med(
            [
                _per_orchestration(r, lambda w: w["requests"]["by_category"].get("table.merge", 0))
                for r in good
            ]
        ),
        "workitems_sent_visible_per_orchestration": traffic("workitems.sent_visible"),
        "activities_from_queue_share": _med(
            [q / a if a else None for q, a in zip(received, activities, strict=True)]
        ),
        "runs_with_ownership_changes": sum(1 for r in good if _ownership_changed(r)),
        "partitions_lost": sum(
            w.get("ownership", {}).get("lost", 0) for r in good for w in r["per_worker"]
        ),
        "failed_lease_passes": sum(
            w.get("ownership", {}).get("failed_passes", 0) for r in good for w in r["per_worker"]
        ),
        "repeated_activities": sum(
            a - r["units"] * r["steps"] for r, a in zip(good, activities, strict=True)
        ),
        "largest_worker_share": _med(
            [max(w["completed"] for w in r["per_worker"]) / max(r["units"], 1) for r in good]
        ),
        "per_worker_last": [
            {
                k: w[k]
                for k in ("name", "owned_after", "cpu_s", "started", "completed", "activities")
            }
            for w in good[-1]["per_worker"]
        ],
    }


def scale_out_verdict(ratio: float | None) -> tuple[bool | None, str]:
    """Whether two workers met the goal against one, and why, from the throughput ratio."""
    if ratio is None:
        return None, "not measured (a run failed or was left out)"
    if ratio >= GOAL_RATIO:
        return True, f"two worker processes ran {ratio:.2f}× one (goal ≥ {GOAL_RATIO:.1f}×)"
    return False, f"two worker processes ran only {ratio:.2f}× one (goal ≥ {GOAL_RATIO:.1f}×)"


def _bound(one: dict[str, Any], two: dict[str, Any]) -> str:
    """What bounds the two-worker run, in a clause (for the verdict's `why`)."""
    cores, busy = two.get("cores") or 1, two.get("cores_busy")
    if busy is None:
        return ""
    others = two["other_cpu_s"] / (two["wall_s"] * cores)
    if busy >= BUSY_CORES:
        return (
            f"the {cores} cores were full ({busy:.0%} busy, {others:.0%} of them other "
            f"processes'), and Azurite spent {two['storage_cpu_ms_per_orchestration']:.0f} ms of "
            f"CPU per orchestration against the workers' {two['workers_cpu_ms_per_orchestration']:.0f}"
        )
    return f"the {cores} cores were {busy:.0%} busy, not full"


def _findings(one: dict[str, Any], two: dict[str, Any]) -> list[str]:
    """Sentences computed from the medians: what bounds the two-worker run and what a second
    worker process changes."""
    found: list[str] = []
    cores = two.get("cores") or 1
    if two.get("cores_busy") is not None:
        spent = (
            f"workers {two['workers_cpu_s']:.1f} s, client {two['client_cpu_s']:.1f} s, Azurite "
            f"{two['storage_cpu_s'] or 0:.1f} s, other processes {two['other_cpu_s']:.1f} s in "
            f"{two['wall_s']:.1f} s"
        )
        full = two["cores_busy"] >= BUSY_CORES
        found.append(
            f"The {cores} cores were {'full' if full else 'not full'}: {two['cores_busy']:.0%} busy "
            f"during the two-worker runs ({spent}), {one['cores_busy']:.0%} with one worker"
            + ("; a second process can only add speed where a core is left idle." if full else ".")
        )
    share = two.get("storage_core_share")
    if share is not None:
        state = "saturated" if share >= AZURITE_SATURATED else "below a whole core"
        found.append(
            f"Azurite was {state}: {share:.0%} of one core with two workers, "
            f"{one['storage_core_share']:.0%} with one (its work runs on one Node.js thread)."
        )
    mine_one, mine_two = (
        one.get("all_cpu_ms_per_orchestration"),
        two.get("all_cpu_ms_per_orchestration"),
    )
    if mine_one and mine_two and two.get("storage_cpu_ms_per_orchestration"):
        storage = two["storage_cpu_ms_per_orchestration"]
        found.append(
            f"CPU per orchestration of the benchmark's processes (workers, client, Azurite): "
            f"{mine_one:.1f} ms with one worker, {mine_two:.1f} ms with two, of which Azurite "
            f"{storage:.1f} ms ({storage / mine_two:.0%}). Bounds: {cores} cores to themselves "
            f"would run at most {cores * 1000 / mine_two:.0f}/s, Azurite with a whole core at "
            f"most {1000 / storage:.0f}/s. If the runs are bound by CPU, two workers should run "
            f"{mine_one / mine_two:.2f}× one (the ratio of those costs); measured "
            f"{two['throughput_per_s'] / one['throughput_per_s']:.2f}×."
        )
    if one.get("queue_send_median_ms") and two.get("queue_send_median_ms"):
        batch = ""
        if one.get("table_batch_median_ms") and two.get("table_batch_median_ms"):
            batch = (
                f", while a checkpoint's table batch took {one['table_batch_median_ms']:.0f} ms "
                f"and {two['table_batch_median_ms']:.0f} ms: only message inserts wait, as "
                "Azurite appends every message to its queue extent store one at a time "
                "(`maxConcurrency: 1` in its DEFAULT_QUEUE_PERSISTENCE_ARRAY), for all worker "
                "processes together; a second worker only lengthens that line"
                if two["queue_send_median_ms"] > 3 * two["table_batch_median_ms"]
                else f", a checkpoint's table batch {one['table_batch_median_ms']:.0f} ms and "
                f"{two['table_batch_median_ms']:.0f} ms"
            )
        found.append(
            f"Median queue send (every work item goes to the one work-item queue, sent held for "
            f"the in-process handoff): {one['queue_send_median_ms']:.0f} ms with one worker, "
            f"{two['queue_send_median_ms']:.0f} ms with two{batch}."
        )
    costs = [
        ("worker CPU", "workers_cpu_ms_per_orchestration", " ms"),
        ("Azurite CPU", "storage_cpu_ms_per_orchestration", " ms"),
        ("worker requests", "requests_per_orchestration", ""),
        ("of them empty receives (idle polling)", "empty_receives_per_orchestration", ""),
        (
            "Instances merges (start, end, at most one per 10 s running)",
            "merges_per_orchestration",
            "",
        ),
        ("Partitions-table requests (leases)", "partition_table_per_orchestration", ""),
        ("control messages received", "control_received_per_orchestration", ""),
    ]
    parts = [
        f"{label} {one[key]:.2f}{unit} → {two[key]:.2f}{unit}"
        for label, key, unit in costs
        if one.get(key) is not None and two.get(key) is not None
    ]
    if parts:
        found.append("Per orchestration, one worker → two: " + "; ".join(parts) + ".")
    moved = [
        (label, f)
        for label, f in (("one worker", one), ("two", two))
        if f["runs_with_ownership_changes"]
    ]
    if moved:
        found.append(
            "Partition ownership changed during measured runs ("
            + "; ".join(
                f"{label}: {f['runs_with_ownership_changes']} of {f['runs'] - f['failed_runs']} runs, "
                f"{f['partitions_lost']} partitions lost, {f['failed_lease_passes']} failed "
                f"Partitions-table passes, {f['repeated_activities']} activities run again"
                for label, f in moved
            )
            + "): a renewal that does not reach the Partitions table in time lets the lease "
            "lapse; the partition is taken again (by the other worker, if it is quicker), its "
            "cached instances are replayed and held work items are received and run again."
        )
    else:
        found.append("No partition changed hands during any measured run.")
    if one.get("activities_from_queue_share") is not None:
        found.append(
            f"Activities received from the work-item queue (not handed over in-process to the "
            f"worker that scheduled them): {one['activities_from_queue_share']:.0%} with one "
            f"worker, {two['activities_from_queue_share']:.0%} with two; control messages "
            f"received per orchestration {one['control_received_per_orchestration']:.2f} with "
            f"one, {two['control_received_per_orchestration']:.2f} with two ("
            + (
                "the start message alone: no result went through a queue"
                if two["control_received_per_orchestration"] <= 1.01
                else "above 1, the start message: results went through the control queues"
            )
            + f"); activities run more than once: {one['repeated_activities']} with one worker, "
            f"{two['repeated_activities']} with two; the busiest of two workers completed "
            f"{two['largest_worker_share']:.0%} of the orchestrations."
        )
    return found


def summarize_scale_out(raw: dict[str, Any]) -> dict[str, Any]:
    """The figures of the one- and two-worker runs, the ratio, the verdict and the findings."""
    runs: dict[str, list[dict[str, Any]]] = raw.get("runs", {})
    one, two = _figures(runs.get("1", [])), _figures(runs.get("2", []))
    ratio = None
    if one.get("throughput_per_s") and two.get("throughput_per_s"):
        ratio = two["throughput_per_s"] / one["throughput_per_s"]
    pairs = [
        b["throughput_per_s"] / a["throughput_per_s"]
        for a, b in zip(_ok(runs.get("1", [])), _ok(runs.get("2", [])), strict=False)
    ]
    per_cpu = None  # orchestrations per CPU second of the benchmark's own processes, two / one
    if one.get("all_cpu_ms_per_orchestration") and two.get("all_cpu_ms_per_orchestration"):
        per_cpu = one["all_cpu_ms_per_orchestration"] / two["all_cpu_ms_per_orchestration"]
    met, why = scale_out_verdict(ratio)
    if met is False and (bound := _bound(one, two)):
        why += f": {bound}"
    correct = one.get("all_correct", False) and two.get("all_correct", False)
    if met is not None and not correct:
        met, why = False, "a run produced wrong outputs"
    summary: dict[str, Any] = {
        "count": raw.get("count"),
        "steps": raw.get("steps"),
        "one": one,
        "two": two,
        "ratio": ratio,
        "pair_ratios": pairs,
        "per_cpu_ratio": per_cpu,
        "goal": GOAL_RATIO,
        "met": met,
        "why": why,
        "findings": _findings(one, two) if ratio is not None else [],
    }
    if "error" in raw:
        summary["error"] = raw["error"]
    return summary


def _cell(value: float | None, digits: int = 1, suffix: str = "") -> str:
    return "–" if value is None else f"{value:,.{digits}f}{suffix}"


def scale_out_markdown(summary: dict[str, Any]) -> list[str]:
    """The report's section on one and two worker processes."""
    if not summary or "one" not in summary:
        return ["Not measured in this run (`--skip scale_out`)."]
    lines = [
        f"HelloCities ({summary['count']} orchestrations × {summary['steps']} activities) on one "
        "task hub, served by one worker process and by two (separate OS processes, the bench's "
        "worker options, tracking events on), the client in a third process starting and polling "
        "as the in-process scenario does. Each run is measured on a fresh hub after the "
        "partitions have rebalanced (every worker serves some, the Partitions table has no "
        "hand-over pending) and a warm-up; one- and two-worker runs are interleaved.",
        "",
        "| workers | orchestrations/s | wall s | workers' CPU s | client CPU s | Azurite CPU s "
        "| others' CPU s | cores busy | requests / orch. (workers, client) | empty receives / "
        "orch. | activities from the queue | busiest worker's share |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, figures in (("1", summary["one"]), ("2", summary["two"])):
        if "error" in figures:
            lines.append(f"| {label} | failed: {figures['error']} |" + " |" * 10)
            continue
        lines.append(
            f"| {label} | {_cell(figures['throughput_per_s'])} | {_cell(figures['wall_s'], 2)} "
            f"| {_cell(figures['workers_cpu_s'], 2)} | {_cell(figures['client_cpu_s'], 2)} "
            f"| {_cell(figures['storage_cpu_s'], 2)} | {_cell(figures['other_cpu_s'], 2)} "
            f"| {_cell(100 * figures['cores_busy'], 0, '%')} "
            f"| {_cell(figures['requests_per_orchestration'])}, "
            f"{_cell(figures['client_requests_per_orchestration'])} "
            f"| {_cell(figures['empty_receives_per_orchestration'])} "
            f"| {_cell(100 * (figures['activities_from_queue_share'] or 0), 0, '%')} "
            f"| {_cell(100 * figures['largest_worker_share'], 0, '%')} |"
        )
    verdict = {True: "**met**", False: "**not met**", None: "**not measured**"}[summary["met"]]
    pairs = ", ".join(f"{r:.2f}×" for r in summary.get("pair_ratios", []))
    lines += [
        "",
        f"Two / one: {_cell(summary['ratio'], 2, '×')} (interleaved pairs: {pairs or '–'}); goal "
        f"≥ {summary['goal']:.1f}×: {verdict} — {summary['why']}. Per CPU second of the "
        f"benchmark's own processes (workers, client, Azurite), which the other processes on "
        f"the machine do not move: {_cell(summary.get('per_cpu_ratio'), 2, '×')}.",
        "",
        *[f"- {finding}" for finding in summary.get("findings", [])],
    ]
    return lines


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        sys.exit(worker_main(sys.argv[2:]))
    if sys.argv[1:2] == ["--measure"]:
        sys.exit(measure_main(sys.argv[2:]))
    sys.exit("usage: python -m bench.scale_out --worker|--measure --connection CS --hub HUB ...")
