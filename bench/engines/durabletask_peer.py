"""Microsoft's durabletask Python SDK against its in-memory test backend, all in this process.

`durabletask.testing.InMemoryOrchestrationBackend` keeps every instance in memory and serves the
sidecar's gRPC API on a loopback port; `TaskHubGrpcWorker` and `TaskHubGrpcClient` talk to it
as they would to a real sidecar. Nothing is stored, so this is an upper bound for the programming
model (a Python orchestrator driven by replay), not a durable engine.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from importlib import metadata
from typing import Any

from durabletask import task
from durabletask.client import OrchestrationState, OrchestrationStatus, TaskHubGrpcClient
from durabletask.testing import InMemoryOrchestrationBackend
from durabletask.worker import TaskHubGrpcWorker

from ..workloads import expected_sum
from .base import ActivityClock, Engine, Outcome

__all__ = ["DurableTaskEngine"]

TIMEOUT = 600
CITIES = ["Tokyo", "Seattle", "London", "Cairo", "Lima", "Oslo", "Delhi", "Quito"]

CLOCK = ActivityClock()


def noop(context: task.ActivityContext, value: int) -> int:
    CLOCK.tick()
    return value


def say_hello(context: task.ActivityContext, city: str) -> str:
    CLOCK.tick()
    return f"Hello {city}!"


def sequential(context: task.OrchestrationContext, count: int) -> Any:
    total = 0
    for i in range(count):
        total += yield context.call_activity(noop, input=i)
    return total


def fan_out(context: task.OrchestrationContext, count: int) -> Any:
    results = yield task.when_all([context.call_activity(noop, input=i) for i in range(count)])
    return sum(results)


def hello_cities(context: task.OrchestrationContext, cities: list[str]) -> Any:
    greetings = []
    for city in cities:
        greetings.append((yield context.call_activity(say_hello, input=city)))
    return greetings


def events(context: task.OrchestrationContext, count: int) -> Any:
    total = 0
    for _ in range(count):
        total += yield context.wait_for_external_event("tick")
    return total


def one_activity(context: task.OrchestrationContext, _: Any) -> Any:
    result = yield context.call_activity(noop, input=1)
    return result


def _quiet_logger(name: str) -> logging.Logger:
    logger = logging.getLogger(f"bench.{name}")
    logger.setLevel(logging.ERROR)  # it warns when its own stream is cancelled at shutdown
    return logger


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class DurableTaskEngine(Engine):
    name = "durabletask"

    def __init__(self) -> None:
        super().__init__()
        self.activities = CLOCK
        self._backend: InMemoryOrchestrationBackend | None = None
        self._worker: TaskHubGrpcWorker | None = None
        self._client: TaskHubGrpcClient | None = None

    def start(self) -> None:
        logging.getLogger("durabletask.testing.in_memory_backend").setLevel(logging.WARNING)
        self._backend = InMemoryOrchestrationBackend(port=_free_port())
        address = self._backend.start()
        self._worker = TaskHubGrpcWorker(host_address=address, logger=_quiet_logger("worker"))
        for orchestrator in (sequential, fan_out, hello_cities, events, one_activity):
            self._worker.add_orchestrator(orchestrator)
        self._worker.add_activity(noop)
        self._worker.add_activity(say_hello)
        self._worker.start()
        self._client = TaskHubGrpcClient(host_address=address, logger=_quiet_logger("client"))

    def stop(self) -> None:
        if self._worker is not None:
            self._worker.stop()
        if self._backend is not None:
            self._backend.stop()

    def versions(self) -> dict[str, str]:
        return {
            "durabletask": metadata.version("durabletask"),
            "grpcio": metadata.version("grpcio"),
        }

    @property
    def client(self) -> TaskHubGrpcClient:
        assert self._client is not None, "engine not started"
        return self._client

    def _run(self, orchestrator: Any, value: Any) -> OrchestrationState | None:
        instance_id = self.client.schedule_new_orchestration(orchestrator, input=value)
        return self.client.wait_for_orchestration_completion(instance_id, timeout=TIMEOUT)

    @staticmethod
    def _output(state: OrchestrationState | None) -> Any:
        if state is None or state.runtime_status != OrchestrationStatus.COMPLETED:
            return None
        return state.serialized_output

    def sequential(self, count: int) -> Outcome:
        output = self._output(self._run(sequential, count))
        return Outcome(count, _decoded(output) == expected_sum(count), detail=_finished())

    def fanout(self, count: int) -> Outcome:
        output = self._output(self._run(fan_out, count))
        return Outcome(count, _decoded(output) == expected_sum(count), detail=_finished())

    def hellocities(self, count: int, steps: int) -> Outcome:
        cities = [CITIES[i % len(CITIES)] for i in range(steps)]
        began = time.perf_counter()
        instance_ids = [
            self.client.schedule_new_orchestration(hello_cities, input=cities) for _ in range(count)
        ]
        started = time.perf_counter()
        expected = [f"Hello {city}!" for city in cities]
        states = [
            self.client.wait_for_orchestration_completion(i, timeout=TIMEOUT) for i in instance_ids
        ]
        detail = _finished()
        detail["start_calls_s"] = started - began
        correct = all(_decoded(self._output(state)) == expected for state in states)
        return Outcome(count, correct, detail=detail)

    def events(self, count: int) -> Outcome:
        instance_id = self.client.schedule_new_orchestration(events, input=count)
        began = time.perf_counter()
        for i in range(count):
            self.client.raise_orchestration_event(instance_id, "tick", data=i)
        raised = time.perf_counter()
        state = self.client.wait_for_orchestration_completion(instance_id, timeout=TIMEOUT)
        detail = _finished()
        detail["raise_calls_s"] = raised - began
        return Outcome(count, _decoded(self._output(state)) == expected_sum(count), detail=detail)

    def latency(self, runs: int) -> Outcome:
        samples: list[float] = []
        correct = True
        for _ in range(runs):
            began = time.perf_counter()
            output = self._output(self._run(one_activity, None))
            samples.append(time.perf_counter() - began)
            correct = correct and _decoded(output) == 1
        return Outcome(runs, correct, samples)


def _decoded(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _finished() -> dict[str, Any]:
    return {"finished_at": time.perf_counter()}
