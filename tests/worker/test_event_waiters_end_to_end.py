"""The "approval or timeout, several attempts" loop on Azurite: each event goes to the live round.

A gate holds every orchestration episode at its start (stall point `episode-start`), so a test
raises its events at an exact place in the instance's history: while episode n is held (episode 0
applies the start, episode n the n-th timer firing), so the events come after everything episode n
applies. Rounds that must time out use a 1 s timer, rounds that must not use 30 s.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from durable_ext import DurableOrchestrationContext, OrchestrationRuntimeStatus
from durable_ext.client import InstanceGoneError
from durable_ext.fault_points import stalled
from durable_ext.orchestration.history import EventRaised, TimerFired
from durable_ext.runtime import Runtime
from durable_ext.worker import FunctionRegistry

COMPLETED = OrchestrationRuntimeStatus.Completed
DEADLINE = 30.0


def approval_rounds(ctx: DurableOrchestrationContext):
    """Round i waits for "Approval" or `timeouts[i]` seconds, until `needed` approvals came."""
    settings = ctx.get_input()
    approvals: list[Any] = []
    for attempt, seconds in enumerate(settings["timeouts"]):
        approval = ctx.wait_for_external_event("Approval")
        timeout = ctx.create_timer(ctx.current_utc_datetime + timedelta(seconds=seconds))
        winner = yield ctx.task_any([approval, timeout])
        if winner is approval:
            timeout.cancel()
            approvals.append([attempt, approval.result])
            if len(approvals) == settings["needed"]:
                return approvals
    return {"timed out": approvals}


class EpisodeGate:
    """The `episode-start` hook: holds each episode until the test lets it (or all) go."""

    def __init__(self) -> None:
        self.arrivals: asyncio.Queue[asyncio.Event] = asyncio.Queue()
        self.opened = False

    async def hook(self) -> None:
        if self.opened:
            return
        go = asyncio.Event()
        await self.arrivals.put(go)
        await go.wait()

    def open(self) -> None:
        """Let every held and later episode go."""
        self.opened = True
        while not self.arrivals.empty():
            self.arrivals.get_nowait().set()


async def start_and_raise(
    rt: Runtime, gate: EpisodeGate, settings: dict[str, Any], during: int, values: list[str]
) -> str:
    """Start `approval_rounds` and raise `values` while episode `during` waits at the gate."""
    instance_id = await rt.client.start_new("approval_rounds", client_input=settings)
    while True:
        go = await asyncio.wait_for(gate.arrivals.get(), DEADLINE)
        history = await rt.client.get_history(instance_id)
        episode = 1 + sum(isinstance(e, TimerFired) for e in history) if history else 0
        assert episode <= during, f"missed episode {during}: episode {episode} is held"
        if episode == during:
            for value in values:
                await rt.client.raise_event(instance_id, "Approval", value)
            gate.open()
            go.set()
            return instance_id
        go.set()


async def run_rounds(
    runtime: Any,
    settings: dict[str, Any],
    during: int,
    values: list[str],
    after: Callable[[Runtime, str], Awaitable[None]] | None = None,
) -> tuple[Any, list[Any]]:
    """Run `approval_rounds`, raising `values` during episode `during`, then await `after` (if
    any) with the runtime still up: (output, history)."""
    reg = FunctionRegistry()
    reg.add_orchestrator("approval_rounds", approval_rounds)
    gate = EpisodeGate()
    with stalled("episode-start", gate.hook):
        async with runtime(reg) as rt:
            instance_id = await start_and_raise(rt, gate, settings, during, values)
            status = await rt.client.wait_for_completion(instance_id, timeout=DEADLINE)
            if after is not None:
                await after(rt, instance_id)
            history = await rt.client.get_history(instance_id)
    assert status.runtime_status is COMPLETED
    return status.output, history


async def test_event_before_the_first_timeout_wins_round_one(runtime) -> None:
    settings = {"timeouts": [30, 30, 30], "needed": 1}
    output, _ = await run_rounds(runtime, settings, during=0, values=["a"])
    assert output == [[0, "a"]]


async def test_event_after_the_first_timeout_wins_round_two(runtime) -> None:
    settings = {"timeouts": [1, 30, 30], "needed": 1}
    output, _ = await run_rounds(runtime, settings, during=1, values=["b"])
    assert output == [[1, "b"]]


async def test_event_after_the_last_timeout_is_discarded(runtime, caplog) -> None:
    caplog.set_level(logging.INFO, logger="durable_ext.orchestrations")

    async def discarded(rt: Runtime, instance_id: str) -> None:
        notice = f"{instance_id} is finished; discarding EventRaised"
        deadline = asyncio.get_running_loop().time() + DEADLINE
        while not any(notice in record.getMessage() for record in caplog.records):
            assert asyncio.get_running_loop().time() < deadline, "the event was never handled"
            await asyncio.sleep(0.05)
        with pytest.raises(InstanceGoneError):
            await rt.client.raise_event(instance_id, "Approval", "too late")

    # the event is raised after the last timer fired, while the instance is still running
    settings = {"timeouts": [1, 1, 1], "needed": 1}
    output, history = await run_rounds(runtime, settings, 3, ["c"], after=discarded)
    assert output == {"timed out": []}
    assert not any(isinstance(e, EventRaised) for e in history)


async def test_two_events_raised_together_go_to_successive_rounds(runtime) -> None:
    settings = {"timeouts": [1, 30, 30, 30], "needed": 2}
    output, _ = await run_rounds(runtime, settings, during=1, values=["d1", "d2"])
    assert output == [[1, "d1"], [2, "d2"]]
