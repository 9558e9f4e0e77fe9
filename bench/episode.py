"""CPU per episode along a long chain with the instance cache on (issue 10, point 6).

A cached instance's episode must cost its new events, not its whole history. This measures it for
real: a chain orchestration (one no-op activity per step) runs through a `durable_ext.Runtime` on
the bench's Azurite, and every activity call stamps this process's CPU time
(``time.process_time``: the worker, all threads) and the wall clock. Between two consecutive
activity calls the worker runs exactly one episode (the result handed over, the episode, its
checkpoint, the next work item), so the differences are the CPU per episode, sampled in windows
along the chain: steps P to P + window for each position P.

Running 10,000 steps for real would take minutes, so a window at P > 0 starts from a chain
seeded to step P the way tests/worker/test_episode_cost.py does: the orchestrator is advanced in
memory with the engine's own episode code, its history written to the hub as the worker would
have written it, the worker's instance cache handed that executor with a `HistorySummary` (a
cached instance, as after P real episodes), and the result of step P - 1 sent through the control
queue. Everything after that is the real worker. The in-memory advance doubles as the contrast of
the engine alone: its CPU per cached episode (``continue_episode`` + the summary update, thread
CPU) in the same windows, and one full replay of the history at P (what a cache miss costs).

``python -m bench.episode --connection CS --hub HUB [--positions 0 1000 ...] [--window 100]
[--storage-pid PID] [--json PATH]`` (the suite runs it as a subprocess, so the process measured is
a fresh one holding only this worker).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from durable_ext import DurableOrchestrationContext, OrchestrationRuntimeStatus, Runtime
from durable_ext.clock import utc_now
from durable_ext.orchestration.episode import continue_episode, run_episode
from durable_ext.orchestration.executor import OrchestrationExecutor
from durable_ext.orchestration.history import (
    ExecutionStarted,
    HistoryEvent,
    OrchestrationInstance,
    TaskCompleted,
)
from durable_ext.orchestration.history_summary import HistorySummary
from durable_ext.storage.history_store import LoadedHistory
from durable_ext.storage.instance_store import InstanceColumns
from durable_ext.storage.messages import MessageData
from durable_ext.worker import FunctionRegistry
from durable_ext.worker.instance_cache import CachedInstance

from .engines import ours
from .metrics import median, pid_cpu_seconds

__all__ = ["POSITIONS", "WINDOW", "measure_episodes", "summarize_episodes"]

POSITIONS = (0, 1_000, 5_000, 10_000)
WINDOW = 100
CHAIN = "EpisodeChain"
STEP = "EpisodeStep"
DEADLINE = 120.0
REPLAY_RUNS = 3


# -- the orchestration ---------------------------------------------------------------------------
def episode_chain(context: DurableOrchestrationContext) -> Generator[Any, Any, int]:
    steps: int = context.get_input()
    for step in range(steps):
        yield context.call_activity(STEP, step)
    return steps


@dataclass(slots=True)
class Stamps:
    """CPU and wall clock at each activity call of the window being measured."""

    first: int = 0
    last: int = -1
    cpu: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)
    storage_cpu: list[float] = field(default_factory=list)
    storage_pid: int | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def arm(self, first: int, last: int) -> None:
        self.first, self.last = first, last
        self.cpu, self.wall, self.storage_cpu = [], [], []
        self.done = asyncio.Event()

    def stamp(self, step: int) -> None:
        if not self.first <= step <= self.last:
            return
        self.cpu.append(time.process_time())
        self.wall.append(time.perf_counter())
        if self.storage_pid and step in (self.first, self.last):
            self.storage_cpu.append(pid_cpu_seconds(self.storage_pid))
        if step == self.last:
            self.done.set()


STAMPS = Stamps()


async def episode_step(step: int) -> int:
    """The activity: a no-op that stamps the clocks (async: it runs on the worker's loop)."""
    STAMPS.stamp(step)
    return step


def registry() -> FunctionRegistry:
    functions = FunctionRegistry()
    functions.add_orchestrator(CHAIN, episode_chain)
    functions.add_activity(STEP, episode_step)
    return functions


# -- the engine alone: advancing a chain in memory ------------------------------------------------
@dataclass(slots=True)
class Seeded:
    executor: OrchestrationExecutor
    events: list[HistoryEvent]
    summary: HistorySummary
    engine_ms: dict[int, list[float]]
    """Thread CPU ms of each cached episode in the windows starting at each position."""


def advance(
    instance_id: str, execution_id: str, steps: int, total: int, windows: Sequence[int], width: int
) -> Seeded:
    """`episode_chain(total)` advanced in memory until it waits for the result of step
    `steps` - 1, timing each episode that falls in a window (position, position + width)."""
    start = ExecutionStarted(
        timestamp=utc_now(),
        orchestration_instance=OrchestrationInstance(instance_id, execution_id),
        name=CHAIN,
        input=json.dumps(total),
    )
    outcome = run_episode(
        episode_chain, instance_id=instance_id, past_events=[], new_events=[start], now=utc_now()
    )
    events, summary = outcome.events, HistorySummary.of(outcome.events)
    engine_ms: dict[int, list[float]] = {p: [] for p in windows}
    for step in range(steps - 1):
        done = TaskCompleted(timestamp=utc_now(), task_scheduled_id=step, result=json.dumps(step))
        began = time.thread_time()
        first_new = len(events)
        events = continue_episode(
            outcome.executor,
            episode_chain,
            instance_id=instance_id,
            past_events=events,
            new_events=[done],
            now=utc_now(),
        ).events
        summary.add(events[first_new:])
        spent = (time.thread_time() - began) * 1000
        for position in windows:
            if position <= step < position + width:
                engine_ms[position].append(spent)
    return Seeded(outcome.executor, events, summary, engine_ms)


def full_replay_ms(instance_id: str, events: list[HistoryEvent], step: int) -> float:
    """Thread CPU ms of an episode that replays `events` from the start (a cache miss): the
    median of `REPLAY_RUNS`."""
    done = TaskCompleted(timestamp=utc_now(), task_scheduled_id=step, result=json.dumps(step))
    samples = []
    for _ in range(REPLAY_RUNS):
        began = time.thread_time()
        run_episode(
            episode_chain,
            instance_id=instance_id,
            past_events=events,
            new_events=[done],
            now=utc_now(),
        )
        samples.append((time.thread_time() - began) * 1000)
    return median(samples)


# -- the real worker ------------------------------------------------------------------------------
async def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def _seed(rt: Runtime, instance_id: str, position: int, total: int) -> dict[str, Any]:
    """Put a chain at step `position` into the hub and the worker's cache; send the result of
    step `position` - 1 so that the worker takes over from there."""
    assert rt.worker is not None
    execution_id = "e" * 32
    seeded = advance(instance_id, execution_id, position, total, [], 0)
    began = time.perf_counter()
    etag = await rt.hub.history.append(instance_id, execution_id, seeded.events, 0, None)
    await rt.hub.instances.merge(
        instance_id,
        InstanceColumns(
            name=CHAIN,
            execution_id=execution_id,
            runtime_status=OrchestrationRuntimeStatus.Running,
            created_time=seeded.events[1].timestamp,
        ),
    )
    written_s = time.perf_counter() - began
    dispatcher = rt.worker.orchestrations
    await _until(lambda: dispatcher.owns(instance_id), "the worker to own the partition")
    stored = LoadedHistory(seeded.events, etag, execution_id)
    dispatcher.cache.put(instance_id, CachedInstance(seeded.executor, stored, seeded.summary))
    last = TaskCompleted(
        timestamp=utc_now(), task_scheduled_id=position - 1, result=json.dumps(position - 1)
    )
    target = OrchestrationInstance(instance_id, execution_id)
    await rt.hub.send_to_instance(MessageData(last, target, position, target))
    return {"history_events": len(seeded.events), "history_write_s": written_s}


async def _window(rt: Runtime, position: int, window: int, round_: int) -> dict[str, Any]:
    """`window` episodes of a chain from step `position`, each one's CPU and wall ms."""
    instance_id, total = f"episode-{round_}-{position}", position + window + 1
    STAMPS.arm(position, position + window)
    result: dict[str, Any] = {"round": round_, "position": position, "episodes": window}
    if position == 0:
        await rt.client.start_new(CHAIN, instance_id=instance_id, client_input=total)
    else:
        result.update(await _seed(rt, instance_id, position, total))
    async with asyncio.timeout(DEADLINE):
        await STAMPS.done.wait()
    status = await rt.client.wait_for_completion(instance_id, timeout=DEADLINE)
    cpu_ms = [(b - a) * 1000 for a, b in zip(STAMPS.cpu, STAMPS.cpu[1:], strict=False)]
    wall_ms = [(b - a) * 1000 for a, b in zip(STAMPS.wall, STAMPS.wall[1:], strict=False)]
    result.update(
        correct=status.runtime_status is OrchestrationRuntimeStatus.Completed
        and status.output == total,
        cpu_ms=cpu_ms,
        wall_ms=wall_ms,
    )
    if len(STAMPS.storage_cpu) == 2:
        result["storage_cpu_ms_per_episode"] = (
            (STAMPS.storage_cpu[1] - STAMPS.storage_cpu[0]) * 1000 / window
        )
    return result


async def _warm_up(rt: Runtime) -> None:
    """A few steps first, so that connections, imports and caches are warm."""
    instance_id = await rt.client.start_new(CHAIN, instance_id="episode-warm-up", client_input=3)
    await rt.client.wait_for_completion(instance_id, timeout=DEADLINE)


def _engine_alone(positions: Sequence[int], window: int) -> dict[str, Any]:
    """The engine's own CPU per cached episode in each window, and one full replay at each
    position, from one chain advanced in memory to the last window's end."""
    end = max(positions) + window
    seeded = advance("engine-alone", "e" * 32, end + 1, end + 1, positions, window)
    found: dict[str, Any] = {"cached_ms": {}, "replay_ms": {}}
    for position in positions:
        found["cached_ms"][str(position)] = seeded.engine_ms[position]
        # The history as it stood at `position`: 4 events to start, then 4 per step.
        events = seeded.events[: 4 * max(position, 1)]
        found["replay_ms"][str(position)] = full_replay_ms(
            "engine-alone", events, max(position, 1) - 1
        )
    return found


async def measure_episodes(
    connection: str,
    hub: str,
    positions: Sequence[int] = POSITIONS,
    window: int = WINDOW,
    *,
    rounds: int = 1,
    storage_pid: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """CPU per episode of a cached chain in a window at each position (every position once per
    round, each on a fresh instance); the engine alone too."""
    STAMPS.storage_pid = storage_pid
    result: dict[str, Any] = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "positions": list(positions),
        "window": window,
        "rounds": rounds,
        "windows": [],
    }
    options = ours.worker_options({"instance_cache_idle_timeout": timedelta(seconds=DEADLINE)})
    runtime = Runtime(registry(), connection=connection, hub=hub, options=options)
    async with runtime:
        await _warm_up(runtime)
        for round_ in range(rounds):
            for position in positions:
                found = await _window(runtime, position, window, round_)
                result["windows"].append(found)
                if progress is not None:
                    progress(
                        f"  round {round_ + 1}, steps {position:,}–{position + window:,}: "
                        f"{median(found['cpu_ms']):.2f} ms CPU per episode (median)"
                    )
        assert runtime.worker is not None
        await runtime.worker.stop()
        await runtime.hub.delete()  # keep the shared Azurite small
    began = time.perf_counter()
    result["engine_alone"] = _engine_alone(positions, window)
    result["engine_alone"]["wall_s"] = time.perf_counter() - began
    return result


# -- summary ---------------------------------------------------------------------------------------
def summarize_episodes(raw: dict[str, Any]) -> dict[str, Any]:
    """Per position, over every round's window: the worker's CPU and wall ms per episode
    (median and mean), Azurite's CPU ms per episode, the engine alone (a cached episode, a full
    replay); the last position's median CPU over the first's, and the largest median over the
    smallest."""
    engine = raw.get("engine_alone") or {}
    rows = []
    for position in raw.get("positions", []):
        windows = [w for w in raw.get("windows", []) if w["position"] == position]
        cpu = [ms for w in windows for ms in w["cpu_ms"]]
        wall = [ms for w in windows for ms in w["wall_ms"]]
        storage = [
            w["storage_cpu_ms_per_episode"] for w in windows if "storage_cpu_ms_per_episode" in w
        ]
        cached = (engine.get("cached_ms") or {}).get(str(position)) or []
        rows.append(
            {
                "position": position,
                "episodes": len(cpu),
                "correct": bool(windows) and all(w["correct"] for w in windows),
                "history_events": max((w.get("history_events", 0) for w in windows), default=0),
                "cpu_ms_median": median(cpu) if cpu else None,
                "cpu_ms_mean": sum(cpu) / len(cpu) if cpu else None,
                "wall_ms_median": median(wall) if wall else None,
                "storage_cpu_ms_per_episode": median(storage) if storage else None,
                "engine_cached_ms_median": median(cached) if cached else None,
                "engine_replay_ms": (engine.get("replay_ms") or {}).get(str(position)),
            }
        )
    summary: dict[str, Any] = {
        "window": raw.get("window"),
        "rounds": raw.get("rounds", 1),
        "measured_at": raw.get("measured_at"),
        "git_commit": raw.get("git_commit"),
        "rows": rows,
    }
    if "error" in raw:
        summary["error"] = raw["error"]
    medians = [r["cpu_ms_median"] for r in rows if r["cpu_ms_median"]]
    if len(medians) >= 2:
        summary["last_over_first"] = medians[-1] / medians[0]
        summary["spread"] = max(medians) / min(medians)
    return summary


# -- command line ---------------------------------------------------------------------------------
def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="CPU per episode along a long cached chain.")
    parser.add_argument("--connection", required=True)
    parser.add_argument("--hub", required=True)
    parser.add_argument("--positions", type=int, nargs="+", default=list(POSITIONS))
    parser.add_argument("--window", type=int, default=WINDOW)
    parser.add_argument("--rounds", type=int, default=1, help="windows at each position")
    parser.add_argument("--storage-pid", type=int, help="Azurite's pid, to measure its CPU")
    parser.add_argument("--json", type=str, help="write the figures here")
    return parser.parse_args(argv)


def _print(message: str) -> None:
    sys.stderr.write(message + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    result = asyncio.run(
        measure_episodes(
            args.connection,
            args.hub,
            args.positions,
            args.window,
            rounds=args.rounds,
            storage_pid=args.storage_pid,
            progress=_print,
        )
    )
    text = json.dumps(result)
    if args.json:
        with open(args.json, "w") as out:
            out.write(text + "\n")
    else:
        sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
