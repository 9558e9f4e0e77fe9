"""durable_ext: `durable_ext.Runtime` (worker + client in this process) on the bench's Azurite.

The worker runs with `WorkerOptions` defaults except a 1 s maximum queue polling interval and a
5 s shutdown timeout (`BENCH_OPTIONS`); `--option NAME=VALUE` overrides any field (for example
``instance_cache_size=0`` turns the instance cache off), and ``telemetry=off|events|tracing``
chooses the tracking events and spans (`bench/telemetry.py`; ``events``, the Durable Functions
default, unless told). Every storage request is counted
(`counting_connection`). Completion is observed the way a user would: the client polls the
instance's status (every 10 ms for the single-instance scenarios, 5 ms for latency), and for
HelloCities asks the Instances table whether any instance is still Pending or Running.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Coroutine, Generator, Mapping
from datetime import timedelta
from importlib import metadata
from typing import Any, TypeVar

from durable_ext import DurableOrchestrationContext, OrchestrationRuntimeStatus, Runtime
from durable_ext.client import DurableOrchestrationClient
from durable_ext.worker import FunctionRegistry, WorkerOptions

from .. import telemetry
from ..counting import ACTOR, RequestCounter, counting_connection
from ..metrics import median
from ..workloads import expected_sum
from .base import ActivityClock, Engine, Outcome

__all__ = [
    "BENCH_OPTIONS",
    "CITIES",
    "DurableExtEngine",
    "IDLE",
    "REPLAYS",
    "ReplayCounter",
    "counter_json",
    "parse_option",
    "registry",
    "worker_options",
]

T = TypeVar("T")
BENCH_OPTIONS: dict[str, Any] = {
    "max_queue_polling_interval": timedelta(seconds=1),
    "shutdown_timeout": timedelta(seconds=5),
}
CITIES = ["Tokyo", "Seattle", "London", "Cairo", "Lima", "Oslo", "Delhi", "Quito"]
SCENARIO_TIMEOUT = 600.0
START_CONCURRENCY = 50
STATUS_POLL = 0.01
LATENCY_POLL = 0.005

CLOCK = ActivityClock()


class ReplayCounter:
    """Counts, from inside the orchestrator code, how often it runs: ``invocations`` (the function
    was called, i.e. a replay from the first event began) and ``resumes`` after each activity,
    split into ``replayed`` (the result came from history) and ``fresh`` (a new result)."""

    def __init__(self) -> None:
        self.invocations = 0
        self.replayed = 0
        self.fresh = 0

    def reset(self) -> None:
        self.invocations = self.replayed = self.fresh = 0

    def to_json(self) -> dict[str, int]:
        return {"invocations": self.invocations, "replayed": self.replayed, "fresh": self.fresh}


REPLAYS = ReplayCounter()


class FirstEpisodes:
    """How many `wait_for_go` orchestrations have run their first (non-replayed) episode."""

    started = 0


IDLE = FirstEpisodes()


# -- the functions (the same shapes as the peers') ------------------------------------------------
def noop(value: int) -> int:
    CLOCK.tick()
    return value


def say_hello(city: str) -> str:
    CLOCK.tick()
    return f"Hello {city}!"


def sequential(context: DurableOrchestrationContext) -> Generator[Any, Any, int]:
    total = 0
    for i in range(context.get_input()):
        total += yield context.call_activity("Noop", i)
    return total


def fan_out(context: DurableOrchestrationContext) -> Generator[Any, Any, int]:
    count: int = context.get_input()
    results = yield context.task_all([context.call_activity("Noop", i) for i in range(count)])
    return sum(results)


def hello_cities(context: DurableOrchestrationContext) -> Generator[Any, Any, list[str]]:
    greetings = []
    for city in context.get_input():
        greetings.append((yield context.call_activity("SayHello", city)))
    return greetings


def events(context: DurableOrchestrationContext) -> Generator[Any, Any, int]:
    total = 0
    for _ in range(context.get_input()):
        total += yield context.wait_for_external_event("Tick")
    return total


def one_activity(context: DurableOrchestrationContext) -> Generator[Any, Any, int]:
    result: int = yield context.call_activity("Noop", 1)
    return result


def chain(context: DurableOrchestrationContext) -> Generator[Any, Any, int]:
    """`sequential`, counting its own replay work in `REPLAYS`."""
    REPLAYS.invocations += 1
    total = 0
    for i in range(context.get_input()):
        total += yield context.call_activity("Noop", i)
        if context.is_replaying:
            REPLAYS.replayed += 1
        else:
            REPLAYS.fresh += 1
    return total


def wait_for_go(context: DurableOrchestrationContext) -> Generator[Any, Any, str]:
    if not context.is_replaying:
        IDLE.started += 1
    yield context.wait_for_external_event("Go")
    return "done"


def registry() -> FunctionRegistry:
    functions = FunctionRegistry()
    for name, orchestrator in (
        ("Sequential", sequential),
        ("FanOut", fan_out),
        ("HelloCities", hello_cities),
        ("Events", events),
        ("OneActivity", one_activity),
        ("Chain", chain),
        ("WaitForGo", wait_for_go),
    ):
        functions.add_orchestrator(name, orchestrator)
    functions.add_activity("Noop", noop)
    functions.add_activity("SayHello", say_hello)
    return functions


# -- options ----------------------------------------------------------------------------------------
def worker_options(overrides: Mapping[str, Any] | None = None) -> WorkerOptions:
    return WorkerOptions(**{**BENCH_OPTIONS, **(overrides or {})})


def parse_option(text: str) -> tuple[str, Any]:
    """``NAME=VALUE`` for a `WorkerOptions` field (timedeltas in seconds), or ``telemetry=MODE``
    (`bench/telemetry.py`)."""
    name, separator, raw = text.partition("=")
    if name == telemetry.OPTION and separator:
        return name, raw
    defaults = WorkerOptions()
    known = {f.name for f in dataclasses.fields(WorkerOptions)}
    if not separator or name not in known:
        raise ValueError(f"expected NAME=VALUE with NAME one of {sorted(known)}, got {text!r}")
    current = getattr(defaults, name)
    value: Any
    if isinstance(current, bool):
        value = raw.lower() in ("1", "true", "yes", "on")
    elif isinstance(current, timedelta):
        value = timedelta(seconds=float(raw))
    elif isinstance(current, int):
        value = int(raw)
    elif isinstance(current, float):
        value = float(raw)
    else:
        value = raw
    return name, value


def counter_json(counter: RequestCounter) -> dict[str, Any]:
    """A counter's figures as results.json holds them."""
    return {
        "total": counter.total(),
        "total_without_empty_receives": counter.total(include_empty_receives=False),
        "by_category": counter.counts(),
        "response_bytes": counter.response_bytes(),
        "median_ms": {
            category: median(seconds) * 1000
            for category, seconds in counter.durations().items()
            if seconds
        },
    }


async def _as_client(coroutine: Coroutine[Any, Any, T]) -> T:
    ACTOR.set("client")
    return await coroutine


# -- the engine ----------------------------------------------------------------------------------
class DurableExtEngine(Engine):
    name = "durable_ext"

    def __init__(
        self, connection_string: str, hub: str, options: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__()
        self.activities = CLOCK
        self.hub = hub
        self.connection, self.counters = counting_connection(connection_string)
        chosen = dict(options or {})
        chosen.update(telemetry.configure(chosen.pop(telemetry.OPTION, "events")))
        self.options = worker_options(chosen)
        self._runner = asyncio.Runner()
        self._runtime: Runtime | None = None

    # -- lifecycle
    def start(self) -> None:
        self._runtime = Runtime(
            registry(), connection=self.connection, hub=self.hub, options=self.options
        )
        # Not through _run: the worker's tasks start here and must count as the worker's.
        self._runner.run(self._runtime.__aenter__())

    def stop(self) -> None:
        try:
            if self._runtime is not None:
                self._runner.run(self._stop(self._runtime))
        finally:
            self._runner.close()

    @staticmethod
    async def _stop(runtime: Runtime) -> None:
        try:
            if runtime.worker is not None:
                await runtime.worker.stop()
            await runtime.hub.delete()  # keep the shared Azurite small between runs
        finally:
            await runtime.__aexit__(None, None, None)

    def versions(self) -> dict[str, str]:
        return {
            "durable-ext": metadata.version("durable-ext"),
            "azure-storage-queue": metadata.version("azure-storage-queue"),
            "azure-data-tables": metadata.version("azure-data-tables"),
            "azure-storage-blob": metadata.version("azure-storage-blob"),
        }

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run client-side work: its storage requests count as the client's, not the worker's
        (the worker's tasks were created at start, outside this context)."""
        return self._runner.run(_as_client(coroutine))

    @property
    def client(self) -> DurableOrchestrationClient:
        assert self._runtime is not None, "engine not started"
        return self._runtime.client

    # -- counting
    def storage_requests(self) -> dict[str, Any]:
        """The worker's requests at the top level, the bench client's under ``client``."""
        found = counter_json(self.counters["worker"])
        found["client"] = counter_json(self.counters["client"])
        return found

    def reset_storage_requests(self) -> None:
        self.counters.reset()

    # -- scenarios
    def sequential(self, count: int) -> Outcome:
        return self._run(self._single("Sequential", count, count, expected_sum(count)))

    def fanout(self, count: int) -> Outcome:
        return self._run(self._single("FanOut", count, count, expected_sum(count)))

    def chain(self, count: int) -> Outcome:
        REPLAYS.reset()
        outcome = self._run(self._single("Chain", count, count, expected_sum(count)))
        outcome.detail["replays"] = REPLAYS.to_json()
        return outcome

    def hellocities(self, count: int, steps: int) -> Outcome:
        return self._run(self._hellocities(count, steps))

    def events(self, count: int) -> Outcome:
        return self._run(self._events(count))

    def latency(self, runs: int) -> Outcome:
        return self._run(self._latency(runs))

    def run(self, scenario: str, size: int, steps: int) -> Outcome:
        if scenario == "chain":
            self.activities.reset()
            return self.chain(size)
        return super().run(scenario, size, steps)

    async def _single(self, name: str, client_input: Any, units: int, expected: Any) -> Outcome:
        instance_id = await self.client.start_new(name, client_input=client_input)
        return await self._wait(instance_id, units, expected)

    async def _hellocities(self, count: int, steps: int) -> Outcome:
        cities = [CITIES[i % len(CITIES)] for i in range(steps)]
        gate = asyncio.Semaphore(START_CONCURRENCY)
        began = time.perf_counter()

        async def start() -> str:
            async with gate:
                return await self.client.start_new("HelloCities", client_input=cities)

        instance_ids = await asyncio.gather(*(start() for _ in range(count)))
        started = time.perf_counter()
        unfinished = [OrchestrationRuntimeStatus.Pending, OrchestrationRuntimeStatus.Running]
        async with asyncio.timeout(SCENARIO_TIMEOUT):
            while True:
                page, token = await self.client.list_instances(
                    runtime_status=unfinished, page_size=1
                )
                if not page and not token:
                    break
                await asyncio.sleep(0.05)
        finished = time.perf_counter()
        expected = [f"Hello {city}!" for city in cities]
        statuses = await self.client.get_status_by(
            runtime_status=[OrchestrationRuntimeStatus.Completed]
        )
        done = {s.instance_id for s in statuses if s.output == expected}
        correct = done.issuperset(instance_ids)
        return Outcome(
            count,
            correct,
            detail={"finished_at": finished, "start_calls_s": started - began},
        )

    async def _events(self, count: int) -> Outcome:
        instance_id = await self.client.start_new("Events", client_input=count)
        began = time.perf_counter()
        for i in range(count):
            await self.client.raise_event(instance_id, "Tick", i)
        raised = time.perf_counter()
        outcome = await self._wait(instance_id, count, expected_sum(count))
        outcome.detail["raise_calls_s"] = raised - began
        return outcome

    async def _wait(self, instance_id: str, units: int, expected: Any) -> Outcome:
        status = await self.client.wait_for_completion(
            instance_id, timeout=SCENARIO_TIMEOUT, poll_interval=STATUS_POLL
        )
        finished = time.perf_counter()
        correct = (
            status.runtime_status is OrchestrationRuntimeStatus.Completed
            and status.output == expected
        )
        return Outcome(units, correct, detail={"finished_at": finished})

    async def _latency(self, runs: int) -> Outcome:
        samples: list[float] = []
        stamped: list[float] = []
        correct = True
        for _ in range(runs):
            began = time.perf_counter()
            instance_id = await self.client.start_new("OneActivity")
            status = await self.client.wait_for_completion(
                instance_id, timeout=60, poll_interval=LATENCY_POLL
            )
            samples.append(time.perf_counter() - began)
            correct = correct and status.output == 1
            if status.created_time and status.last_updated_time:
                stamped.append((status.last_updated_time - status.created_time).total_seconds())
        return Outcome(runs, correct, samples, {"engine_stamped_s": stamped})
