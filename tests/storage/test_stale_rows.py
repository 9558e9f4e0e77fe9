"""Rows of an older, longer execution stay in the History partition and no reader ever shows them.

A continue-as-new writes the new execution from RowKey 0; the old execution's rows past the new
one's end are never deleted (DTFx's layout: deleting them outside the fenced transaction could
erase a newer owner's rows). Every reader stops at the first row of another ExecutionId: loading,
the client's history and status (showHistory), and rewind, which must not rewrite the old
execution's failures.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from typing import Any

from durable_ext import DurableOrchestrationContext
from durable_ext.orchestration.errors import TaskFailedError
from durable_ext.orchestration.history import ExecutionStarted, GenericEvent, TaskFailed
from durable_ext.runtime import Runtime
from durable_ext.storage.keys import escape_key
from durable_ext.worker import FunctionRegistry
from tests.azurite import AzuriteInstance
from tests.storage.raw_state import RawStorage
from tests.worker.conftest import fast_options

DEADLINE = 30.0


def long_then_short(ctx: DurableOrchestrationContext) -> Any:
    """ "long": three activities, the last one failing (caught), then continue as new;
    "short": one activity that fails the first time it runs (the execution fails)."""
    if ctx.get_input() == "long":
        yield ctx.call_activity("echo", 1)
        yield ctx.call_activity("echo", 2)
        with contextlib.suppress(TaskFailedError):
            yield ctx.call_activity("fail", "long")
        for step in range(3, 8):
            yield ctx.call_activity("echo", step)
        ctx.continue_as_new("short")
        return None
    return (yield ctx.call_activity("fail", "short"))


def registry(calls: Counter[str]) -> FunctionRegistry:
    def fail(key: str) -> str:
        calls[key] += 1
        if key == "long" or calls[key] == 1:
            raise RuntimeError(f"{key} fails")
        return f"{key} ok"

    functions = FunctionRegistry()
    functions.add_orchestrator("long_then_short", long_then_short)
    functions.add_activity("echo", lambda n: n)
    functions.add_activity("fail", fail)
    return functions


async def test_readers_stop_at_the_rows_of_an_older_longer_execution(
    azurite: AzuriteInstance, raw: RawStorage, hub_name: str
) -> None:
    instance_id = "long^short"
    table = f"{hub_name}History"
    calls: Counter[str] = Counter()
    options = fast_options()
    connection = azurite.connection_string
    async with Runtime(registry(calls), connection=connection, hub=hub_name, options=options) as rt:
        await rt.client.start_new("long_then_short", instance_id, "long")
        failed = await rt.client.wait_for_completion(instance_id, timeout=DEADLINE)
        assert failed.runtime_status.value == "Failed", failed.to_json()

        rows = await raw.partition(table, escape_key(instance_id))
        sentinel = rows[-1]
        assert sentinel["RowKey"] == "sentinel"
        current = sentinel["ExecutionId"]
        events = [r for r in rows if r["RowKey"] != "sentinel"]
        short = [r for r in events if r["ExecutionId"] == current]
        stale = events[len(short) :]
        assert events[: len(short)] == short, "the current execution's rows come first"
        assert stale and all(r["ExecutionId"] != current for r in stale), "old rows stay"
        assert "TaskFailed" in {r["EventType"] for r in stale}, "an old failure lies past the end"

        loaded = await rt.hub.history.load(instance_id)
        assert (loaded.execution_id, len(loaded.events)) == (current, len(short))
        started = [e for e in loaded.events if isinstance(e, ExecutionStarted)]
        assert [e.input for e in started] == ['"short"']
        assert len(await rt.client.get_history(instance_id)) == len(short)
        status = await rt.client.get_status(instance_id, show_history=True)
        assert status.history is not None
        shown = [h["EventType"] for h in status.history]
        assert shown.count("ExecutionStarted") == 1 and shown.count("TaskFailed") == 1, shown

        await rt.client.rewind(instance_id, "again")
        done = await rt.client.wait_for_completion(instance_id, timeout=DEADLINE)
        history = await rt.client.get_history(instance_id)
        after = await raw.partition(table, escape_key(instance_id))

    assert (done.runtime_status.value, done.output) == ("Completed", "short ok"), done.to_json()
    assert any(isinstance(e, GenericEvent) for e in history), "the short failure was rewound"
    assert not any(isinstance(e, TaskFailed) for e in history)
    old_rows = {r["RowKey"]: r for r in stale}
    kept = [r for r in after if r.get("ExecutionId") not in (None, current)]
    assert kept, "some old rows lie past the rewound execution's end"
    for row in kept:
        assert row == old_rows[row["RowKey"]], f"rewind rewrote a row of the old execution: {row}"
