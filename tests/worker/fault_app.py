"""The app the fault tests run, in worker processes (`tests/worker/worker_process.py`) or in-process.

Orchestrators:

* `fan_out_parent(spec)`: fans out to `spec["children"]` sub-orchestrations `child`, each of which
  fans out to `spec["items"]` `work` activities, and returns the sum of the children's sums
  (`expected_fan_out`). Children get the instance ids `{parent}-c{i}` so the tests can find them.
* `chain(spec)`: `spec["steps"]` sequential `work` activities; returns their results as a list
  (`expected_chain`).
* `timer_chain(spec)`: like `chain`, with a durable timer of `spec["timer_ms"]` after every step.
* `generations(spec)`: one activity per generation, continuing as new `spec["generations"]` times
  (`expected_generations`).
* `locked_section(key)`: locks entity `SlowCounter@key`, adds 1, waits for event `go`, adds 1.

Entity `SlowCounter`: `add` adds its input after `ENTITY_OP_MS` ms (so a kill lands mid-burst).

Every `work` call sleeps `spec["ms"]` (so a kill lands mid-fan-out), then appends one line, its
`key`, to the file named by the `FAULT_APP_LOG` environment variable (one `write` on a file opened
in append mode, so the lines of concurrent processes never interleave). Each line is one execution:
a key seen twice is an activity that ran twice (at-least-once delivery).
"""

from __future__ import annotations

import os
import time
from collections.abc import Generator
from datetime import timedelta
from typing import Any

from durable_ext import DurableOrchestrationContext, EntityId
from durable_ext.worker import FunctionRegistry

__all__ = [
    "LOG_ENV",
    "registry",
    "child_id",
    "work_key",
    "work_value",
    "expected_child",
    "expected_fan_out",
    "expected_chain",
    "expected_generations",
    "read_log",
]

LOG_ENV = "FAULT_APP_LOG"
DEFAULT_WORK_MS = 100

Orchestration = Generator[Any, Any, Any]


def child_id(parent_id: str, index: int) -> str:
    """The instance id of the `index`-th child of a `fan_out_parent`."""
    return f"{parent_id}-c{index}"


def work_key(instance_id: str, index: int) -> str:
    """The log key of the `index`-th activity of an instance."""
    return f"{instance_id}/{index}"


def work_value(index: int, offset: int = 0) -> int:
    """What the `index`-th activity of an instance returns."""
    return (index + 1) * 10 + offset


def expected_child(offset: int, items: int) -> int:
    """The output of the child with this offset (its index in the parent) and `items` activities."""
    return sum(work_value(j, offset) for j in range(items))


def expected_fan_out(children: int, items: int) -> int:
    """The output of `fan_out_parent({"children": children, "items": items})`."""
    return sum(expected_child(i, items) for i in range(children))


def expected_chain(steps: int) -> list[int]:
    """The output of `chain` or `timer_chain` with `steps` steps."""
    return [work_value(k) for k in range(steps)]


def _work_input(key: str, value: int, ms: int) -> dict[str, Any]:
    return {"key": key, "value": value, "ms": ms}


def work(item: dict[str, Any]) -> int:
    """Sleep `item["ms"]`, record one execution of `item["key"]` in the log, return `item["value"]`."""
    time.sleep(int(item.get("ms", DEFAULT_WORK_MS)) / 1000)
    path = os.environ.get(LOG_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as log:
            log.write(f"{item['key']}\n")
            log.flush()
    return int(item["value"])


def fan_out_parent(ctx: DurableOrchestrationContext) -> Orchestration:
    """Fan out to `children` sub-orchestrations and sum their results."""
    spec = ctx.get_input()
    children = [
        ctx.call_sub_orchestrator(
            "child",
            {"items": spec["items"], "offset": i, "ms": spec.get("ms", DEFAULT_WORK_MS)},
            instance_id=child_id(ctx.instance_id, i),
        )
        for i in range(spec["children"])
    ]
    results = yield ctx.task_all(children)
    return sum(results)


def child(ctx: DurableOrchestrationContext) -> Orchestration:
    """Fan out to `items` activities and sum their results."""
    spec = ctx.get_input()
    tasks = [
        ctx.call_activity(
            "work",
            _work_input(work_key(ctx.instance_id, j), work_value(j, spec["offset"]), spec["ms"]),
        )
        for j in range(spec["items"])
    ]
    results = yield ctx.task_all(tasks)
    return sum(results)


def named_child_parent(ctx: DurableOrchestrationContext) -> Orchestration:
    """Call one `child` under the instance id the input names (`child_id`) and return its result."""
    spec = ctx.get_input()
    child_input = {"items": spec["items"], "offset": 0, "ms": spec.get("ms", DEFAULT_WORK_MS)}
    return (yield ctx.call_sub_orchestrator("child", child_input, instance_id=spec["child_id"]))


def chain(ctx: DurableOrchestrationContext) -> Orchestration:
    """`steps` activities one after the other; the list of their results."""
    spec = ctx.get_input()
    results = []
    for k in range(spec["steps"]):
        item = _work_input(work_key(ctx.instance_id, k), work_value(k), spec.get("ms", 50))
        results.append((yield ctx.call_activity("work", item)))
    return results


def timer_chain(ctx: DurableOrchestrationContext) -> Orchestration:
    """`steps` activities, each followed by a durable timer of `timer_ms`."""
    spec = ctx.get_input()
    results = []
    for k in range(spec["steps"]):
        item = _work_input(work_key(ctx.instance_id, k), work_value(k), spec.get("ms", 50))
        results.append((yield ctx.call_activity("work", item)))
        fire_at = ctx.current_utc_datetime + timedelta(milliseconds=spec["timer_ms"])
        yield ctx.create_timer(fire_at)
    return results


def ticks(ctx: DurableOrchestrationContext) -> Orchestration:
    """`steps` durable timers of `timer_ms` each and no activity: every step is control-queue
    work of the instance's partition alone. Returns `steps`."""
    spec = ctx.get_input()
    for _ in range(spec["steps"]):
        yield ctx.create_timer(ctx.current_utc_datetime + timedelta(milliseconds=spec["timer_ms"]))
    return spec["steps"]


def generations(ctx: DurableOrchestrationContext) -> Orchestration:
    """One `work` activity per generation, then continue-as-new until `generations` have run;
    returns the sum of all their results (`expected_generations`)."""
    spec = ctx.get_input()
    generation = spec["generation"]
    item = _work_input(
        work_key(ctx.instance_id, generation), work_value(generation), spec.get("ms", 50)
    )
    total = spec.get("total", 0) + (yield ctx.call_activity("work", item))
    if generation + 1 < spec["generations"]:
        ctx.continue_as_new({**spec, "generation": generation + 1, "total": total})
        return None
    return total


def expected_generations(count: int) -> int:
    """The output of `generations` started with `{"generation": 0, "generations": count}`."""
    return sum(work_value(g) for g in range(count))


def read_log(path: str | os.PathLike[str]) -> list[str]:
    """The keys logged so far, one per activity execution (empty if nothing ran yet)."""
    try:
        with open(path, encoding="utf-8") as log:
            return [line for line in log.read().splitlines() if line]
    except FileNotFoundError:
        return []


ENTITY_OP_MS = 5


def slow_counter(context: Any) -> None:
    """`add n` (after ENTITY_OP_MS ms) and `get`."""
    value = context.get_state(lambda: 0)
    if context.operation_name == "add":
        time.sleep(ENTITY_OP_MS / 1000)
        context.set_state(value + context.get_input())
    else:
        context.set_result(value)


def locked_section(ctx: DurableOrchestrationContext) -> Orchestration:
    """Inside a critical section over SlowCounter@key: add 1, wait for `go`, add 1."""
    entity = EntityId("SlowCounter", ctx.get_input())
    with (yield ctx.lock([entity])):
        yield ctx.call_entity(entity, "add", 1)
        yield ctx.wait_for_external_event("go")
        yield ctx.call_entity(entity, "add", 1)
    return "released"


registry = FunctionRegistry()
registry.add_orchestrator("fan_out_parent", fan_out_parent)
registry.add_orchestrator("child", child)
registry.add_orchestrator("named_child_parent", named_child_parent)
registry.add_orchestrator("chain", chain)
registry.add_orchestrator("timer_chain", timer_chain)
registry.add_orchestrator("generations", generations)
registry.add_orchestrator("ticks", ticks)
registry.add_activity("work", work)
registry.add_orchestrator("locked_section", locked_section)
registry.add_entity("SlowCounter", slow_counter)
