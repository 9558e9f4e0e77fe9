"""The in-memory harness (`durable_ext.testing`) and the worker report a failure alike: the same
error type, message and reason for an activity that raises, an activity that does not exist, a
sub-orchestration that raises and one that does not exist."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import durable_ext as df
from durable_ext.runtime import Runtime
from durable_ext.testing import run_orchestration
from durable_ext.worker import FunctionRegistry

CALLS = [
    ("activity", "boom"),
    ("activity", "no_such_activity"),
    ("sub", "child_boom"),
    ("sub", "no_such_child"),
]


def boom(value: int) -> int:
    raise ValueError(f"boom {value}")


def child_boom(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    yield context.call_activity("boom", 2)


def every_failure(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    """Each call's failure as [reason, error type, error message, has a stack trace]."""
    seen = []
    for kind, name in CALLS:
        try:
            if kind == "activity":
                yield context.call_activity(name, 1)
            else:
                yield context.call_sub_orchestrator(name, 1)
        except df.TaskFailedError as error:
            details = error.failure_details
            seen.append(
                [error.reason, details.error_type, details.error_message, bool(details.stack_trace)]
            )
    return seen


async def test_the_harness_and_the_worker_report_the_same_failures(
    runtime: Callable[..., Runtime],
) -> None:
    in_memory = run_orchestration(
        every_failure, activities={"boom": boom}, sub_orchestrators={"child_boom": child_boom}
    )
    registry = FunctionRegistry()
    registry.add_orchestrator("every_failure", every_failure)
    registry.add_orchestrator("child_boom", child_boom)
    registry.add_activity("boom", boom)
    async with runtime(registry) as rt:
        instance_id = await rt.client.start_new("every_failure")
        status = await rt.client.wait_for_completion(instance_id, timeout=60)
    worker: Any = status.output
    assert in_memory.output == worker
    assert [row[1] for row in worker] == [
        "ValueError",
        "UnknownFunctionError",
        "TaskFailedError",
        "UnknownFunctionError",
    ]
    assert worker[1][2] == "Activity function 'no_such_activity' does not exist."
    assert worker[1][3] is False  # the engine's finding: no stack trace
    assert worker[0][3] is True
