"""DBOS Transact with a SQLite system database (a fresh file per run), in this process.

Shapes: steps called in-process by a workflow (sequential, HelloCities), a durable queue for the
fan-out (each activity a step enqueued on it; the workflow waits for every handle), one workflow
per HelloCities orchestration started with ``DBOS.start_workflow``, and ``DBOS.recv`` in the
workflow with ``DBOS.send`` from the client for events. The fan-out queue polls every 50 ms (the
DBOS default is 1 s; 50 ms matches the first polling interval of durable_ext's back-off).
Statements sent to SQLite are counted through SQLAlchemy's ``before_cursor_execute`` event.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import sqlalchemy
from dbos import DBOS, DBOSConfig

from ..workloads import expected_sum
from .base import ActivityClock, Engine, Outcome

__all__ = ["DbosEngine", "FANOUT_QUEUE", "QUEUE_POLLING_SECONDS"]

FANOUT_QUEUE = "bench_fanout"
QUEUE_POLLING_SECONDS = 0.05
RECV_TIMEOUT = 600.0
CITIES = ["Tokyo", "Seattle", "London", "Cairo", "Lima", "Oslo", "Delhi", "Quito"]

CLOCK = ActivityClock()


class _StatementCounter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0

    def __call__(self, *args: Any) -> None:
        with self._lock:
            self.count += 1


STATEMENTS = _StatementCounter()


@DBOS.step()
def noop(value: int) -> int:
    CLOCK.tick()
    return value


@DBOS.step()
def say_hello(city: str) -> str:
    CLOCK.tick()
    return f"Hello {city}!"


@DBOS.workflow()
def sequential_workflow(count: int) -> int:
    total = 0
    for i in range(count):
        total += noop(i)
    return total


@DBOS.workflow()
def fanout_workflow(count: int) -> int:
    queue = DBOS.retrieve_queue(FANOUT_QUEUE)
    assert queue is not None, "the fan-out queue is registered at start"
    handles = [queue.enqueue(noop, i) for i in range(count)]
    return sum(handle.get_result() for handle in handles)


@DBOS.workflow()
def hello_cities_workflow(cities: list[str]) -> list[str]:
    return [say_hello(city) for city in cities]


@DBOS.workflow()
def events_workflow(count: int) -> int:
    total = 0
    for _ in range(count):
        total += DBOS.recv("tick", timeout_seconds=RECV_TIMEOUT)
    return total


@DBOS.workflow()
def one_activity_workflow() -> int:
    return noop(1)


class DbosEngine(Engine):
    name = "dbos"

    def __init__(self, workdir: Path) -> None:
        super().__init__()
        self.activities = CLOCK
        self.database = workdir / "dbos-system.sqlite"

    def start(self) -> None:
        self.database.unlink(missing_ok=True)
        config: DBOSConfig = {
            "name": "bench",
            "system_database_url": f"sqlite:///{self.database}",
            "log_level": "WARNING",
        }
        logging.getLogger("dbos").setLevel(logging.WARNING)
        sqlalchemy.event.listen(sqlalchemy.engine.Engine, "before_cursor_execute", STATEMENTS)
        DBOS(config=config)
        DBOS.launch()
        DBOS.register_queue(FANOUT_QUEUE, polling_interval_sec=QUEUE_POLLING_SECONDS)

    def stop(self) -> None:
        DBOS.destroy()
        sqlalchemy.event.remove(sqlalchemy.engine.Engine, "before_cursor_execute", STATEMENTS)

    def versions(self) -> dict[str, str]:
        return {
            "dbos": metadata.version("dbos"),
            "sqlalchemy": metadata.version("sqlalchemy"),
            "sqlite": sqlite3.sqlite_version,
        }

    def storage_requests(self) -> dict[str, Any]:
        return {"sql_statements": STATEMENTS.count}

    def reset_storage_requests(self) -> None:
        STATEMENTS.count = 0

    def sequential(self, count: int) -> Outcome:
        result = sequential_workflow(count)
        return Outcome(count, result == expected_sum(count), detail=_finished())

    def fanout(self, count: int) -> Outcome:
        result = DBOS.start_workflow(fanout_workflow, count).get_result()
        return Outcome(count, result == expected_sum(count), detail=_finished())

    def hellocities(self, count: int, steps: int) -> Outcome:
        cities = [CITIES[i % len(CITIES)] for i in range(steps)]
        began = time.perf_counter()
        handles = [DBOS.start_workflow(hello_cities_workflow, cities) for _ in range(count)]
        started = time.perf_counter()
        expected = [f"Hello {city}!" for city in cities]
        correct = all(handle.get_result() == expected for handle in handles)
        detail = _finished()
        detail["start_calls_s"] = started - began
        return Outcome(count, correct, detail=detail)

    def events(self, count: int) -> Outcome:
        handle = DBOS.start_workflow(events_workflow, count)
        began = time.perf_counter()
        for i in range(count):
            DBOS.send(handle.workflow_id, i, "tick")
        raised = time.perf_counter()
        correct = handle.get_result() == expected_sum(count)
        detail = _finished()
        detail["raise_calls_s"] = raised - began
        return Outcome(count, correct, detail=detail)

    def latency(self, runs: int) -> Outcome:
        samples: list[float] = []
        correct = True
        for _ in range(runs):
            began = time.perf_counter()
            result = DBOS.start_workflow(one_activity_workflow).get_result()
            samples.append(time.perf_counter() - began)
            correct = correct and result == 1
        return Outcome(runs, correct, samples)


def _finished() -> dict[str, Any]:
    return {"finished_at": time.perf_counter()}
