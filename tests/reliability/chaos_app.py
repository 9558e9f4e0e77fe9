"""The app the chaos driver (`tests/reliability/chaos.py`) runs in its worker processes.

It reuses the orchestrators and the logging `work` activity of `tests/worker/fault_app.py` (chains,
timer chains, fan-out/fan-in through sub-orchestrations) and adds the two patterns that app lacks:

* `approval(spec)`: waits for `spec["events"]` distinct `approve` events (the driver raises them
  once each, with the values `0..events-1`: unique within the instance), then runs one `work`
  activity; returns the sorted values, the activity's result (`expected_approval`) and, under
  `received`, every value in the order the orchestration received it. A repeated value does not
  change the rest of the output (the driver also copies control-queue messages on purpose); the
  audit compares `received` with the EventRaised rows of the history and the raises.
* `eternal(spec)`: one `work` activity per generation, then `continue_as_new` until
  `spec["generations"]` generations have run; returns the sum of the activities' results
  (`expected_eternal`). The activity key of generation `g` is `work_key(instance_id, g)`.

Every `work` execution appends its key to the file named by `FAULT_APP_LOG` (see `fault_app`), and
every orchestrator registered here first appends `exec <instance id> <execution id> <generation>` to
the same file when an execution begins (not while replaying; `generation` counts continue-as-new
restarts). The execution id of generation 0 comes from the start message, so an instance that logs
two different ones was started twice: the driver sees such a re-run even if no poll caught the
instance finished in between.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Generator
from typing import Any

from durable_ext import DurableOrchestrationContext
from durable_ext.worker import FunctionRegistry
from tests.worker.fault_app import (
    LOG_ENV,
    chain,
    child,
    fan_out_parent,
    timer_chain,
    work,
    work_key,
    work_value,
)

__all__ = [
    "APPROVAL_EVENT",
    "RECEIVED",
    "EXECUTION_PREFIX",
    "parse_execution_line",
    "registry",
    "approval",
    "eternal",
    "expected_approval",
    "expected_eternal",
]

APPROVAL_EVENT = "approve"
RECEIVED = "received"
"""The key of an approval's output that lists every event value received, in order."""
EXECUTION_PREFIX = "exec "

Orchestration = Generator[Any, Any, Any]
Orchestrator = Callable[[DurableOrchestrationContext], Orchestration]


def parse_execution_line(line: str) -> tuple[str, str, int] | None:
    """(instance id, execution id, generation) of an `exec` line of the log; None for an activity
    key."""
    if not line.startswith(EXECUTION_PREFIX):
        return None
    _, instance_id, execution_id, generation = line.split(" ", 3)
    return instance_id, execution_id, int(generation)


def recorded(orchestrator: Orchestrator) -> Orchestrator:
    """The orchestrator, logging `exec <instance> <execution> <generation>` when an execution
    begins."""

    @functools.wraps(orchestrator)
    def wrapper(ctx: DurableOrchestrationContext) -> Orchestration:
        path = os.environ.get(LOG_ENV)
        if path and not ctx.is_replaying:
            spec = ctx.get_input()
            generation = int(spec.get("generation", 0)) if isinstance(spec, dict) else 0
            with open(path, "a", encoding="utf-8") as log:
                line = f"{EXECUTION_PREFIX}{ctx.instance_id} {ctx.execution_id} {generation}\n"
                log.write(line)
        return (yield from orchestrator(ctx))

    return wrapper


def _work_input(key: str, value: int, ms: int) -> dict[str, Any]:
    return {"key": key, "value": value, "ms": ms}


def approval(ctx: DurableOrchestrationContext) -> Orchestration:
    """Wait for `events` distinct approvals, then do one piece of work."""
    spec = ctx.get_input()
    ctx.set_custom_status("waiting")
    received: list[int] = []
    while len(set(received)) < spec["events"]:
        received.append(int((yield ctx.wait_for_external_event(APPROVAL_EVENT))))
    ctx.set_custom_status("approved")
    item = _work_input(work_key(ctx.instance_id, 0), work_value(0), spec.get("ms", 20))
    result = yield ctx.call_activity("work", item)
    return {"approvals": sorted(set(received)), "result": result, RECEIVED: received}


def expected_approval(events: int) -> dict[str, Any]:
    """The output of `approval({"events": events})` once every approval was raised, without its
    `received` log (which depends on the order of delivery)."""
    return {"approvals": list(range(events)), "result": work_value(0)}


def eternal(ctx: DurableOrchestrationContext) -> Orchestration:
    """One activity per generation, continuing as new until `generations` have run."""
    spec = ctx.get_input()
    generation = int(spec.get("generation", 0))
    item = _work_input(
        work_key(ctx.instance_id, generation), work_value(generation), spec.get("ms", 20)
    )
    value = yield ctx.call_activity("work", item)
    total = int(spec.get("total", 0)) + int(value)
    if generation + 1 < spec["generations"]:
        ctx.continue_as_new({**spec, "generation": generation + 1, "total": total})
        return None
    return total


def expected_eternal(generations: int) -> int:
    """The output of `eternal({"generations": generations})`."""
    return sum(work_value(g) for g in range(generations))


registry = FunctionRegistry()
registry.add_orchestrator("chain", recorded(chain))
registry.add_orchestrator("timer_chain", recorded(timer_chain))
registry.add_orchestrator("fan_out_parent", recorded(fan_out_parent))
registry.add_orchestrator("child", recorded(child))
registry.add_orchestrator("approval", recorded(approval))
registry.add_orchestrator("eternal", recorded(eternal))
registry.add_activity("work", work)
