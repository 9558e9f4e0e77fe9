"""Clock jumps and skew must not stall timers or move an orchestration's clock backwards.

The worker reads the wall clock through `durable_ext/clock.py`, whose offset a test shifts in
process (`clock.shift`) and a worker process takes from `DURABLE_EXT_FAULT_CLOCK_OFFSET`. Whatever
the worker's clock does, `current_utc_datetime` never goes backwards, is at least a timer's fire
time once the timer has fired, and timers wait as long as they should (their queue delays are
measured on the orchestration's clock). A monitor loop `while ctx.current_utc_datetime < expiry`
would otherwise run on for as long as the clock jumped back.

The in-process tests jump this process's clock by an hour in either direction mid-run; the last
test hands a hub over from a worker process whose clock is 10 minutes fast to one 10 minutes slow.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from durable_ext import DurableOrchestrationContext, OrchestrationRuntimeStatus, clock
from durable_ext.clock import OFFSET_ENV, parse_offset
from durable_ext.runtime import Runtime
from durable_ext.worker import FunctionRegistry
from tests.azurite import REPO_ROOT, AzuriteInstance
from tests.faults.storage_view import HubView, wait_for
from tests.faults.worker_processes import WorkerCluster
from tests.reliability.chaos_audit import clock_violations
from tests.worker.conftest import fast_options
from tests.worker.fault_app import expected_chain, read_log
from tests.worker.fault_app import registry as fault_registry

COMPLETED = OrchestrationRuntimeStatus.Completed
JUMP = timedelta(hours=1)
STEP_DEADLINE = 30.0  # a few 1 s timers on a slow CI box; a stalled clock means an hour
SKEW_SECONDS = 600.0
STARTUP_DEADLINE = 60.0
HANDOVER_DEADLINE = 30.0
COMPLETION_DEADLINE = 60.0
CHAIN = {"steps": 6, "ms": 20, "timer_ms": 500}


@pytest.fixture(autouse=True)
def real_clock() -> Iterator[None]:
    """Each test starts and ends on the process's own clock: a shift never leaks into others."""
    clock.reset()
    yield
    clock.reset()


def _times(values: list[str]) -> list[datetime]:
    return [datetime.fromisoformat(v) for v in values]


def monitor(ctx: DurableOrchestrationContext) -> Any:
    """Short timers until `seconds` have passed on the orchestration's clock; every time it woke
    at and every fire time it asked for."""
    spec = ctx.get_input()
    expiry = ctx.current_utc_datetime + timedelta(seconds=spec["seconds"])
    woke = [ctx.current_utc_datetime.isoformat()]
    due: list[str] = []
    while ctx.current_utc_datetime < expiry:
        fire_at = ctx.current_utc_datetime + timedelta(milliseconds=spec["ms"])
        due.append(fire_at.isoformat())
        ctx.set_custom_status(len(due))
        yield ctx.create_timer(fire_at)
        woke.append(ctx.current_utc_datetime.isoformat())
    return {"woke": woke, "due": due}


def two_timers(ctx: DurableOrchestrationContext) -> Any:
    """A 1 s timer, an external event `go`, another 1 s timer; the clock at each step."""
    woke = [ctx.current_utc_datetime.isoformat()]
    first = ctx.current_utc_datetime + timedelta(seconds=1)
    ctx.set_custom_status("first timer")
    yield ctx.create_timer(first)
    woke.append(ctx.current_utc_datetime.isoformat())
    ctx.set_custom_status("waiting")
    yield ctx.wait_for_external_event("go")
    woke.append(ctx.current_utc_datetime.isoformat())
    second = ctx.current_utc_datetime + timedelta(seconds=1)
    ctx.set_custom_status("second timer")
    yield ctx.create_timer(second)
    woke.append(ctx.current_utc_datetime.isoformat())
    return {"woke": woke, "due": [first.isoformat(), second.isoformat()]}


def registry() -> FunctionRegistry:
    reg = FunctionRegistry()
    reg.add_orchestrator("monitor", monitor)
    reg.add_orchestrator("two_timers", two_timers)
    return reg


def runtime(azurite: AzuriteInstance, hub: str) -> Runtime:
    return Runtime(
        registry(), connection=azurite.connection_string, hub=hub, options=fast_options()
    )


async def custom_status(rt: Runtime, instance_id: str) -> Any:
    status = await rt.client.get_status(instance_id)
    return None if status is None else status.custom_status


# -- the clock itself --------------------------------------------------------------------------


def test_offset_parses_seconds_and_names_the_variable_when_bad() -> None:
    assert parse_offset(None) == parse_offset(" ") == timedelta(0)
    assert parse_offset("-600") == timedelta(minutes=-10)
    assert parse_offset("1.5") == timedelta(seconds=1.5)
    for bad in ("ten", "nan", "1e400"):
        with pytest.raises(ValueError, match=OFFSET_ENV):
            parse_offset(bad)


def test_shift_moves_utc_now_and_reset_undoes_it() -> None:
    initial = clock.offset()  # zero unless the environment sets one
    clock.shift(-JUMP)
    clock.shift(timedelta(minutes=10))
    assert clock.offset() == initial - timedelta(minutes=50)
    behind = datetime.now(UTC) + initial - clock.utc_now()
    assert timedelta(minutes=49) < behind < timedelta(minutes=51)
    assert clock.utc_now().tzinfo is UTC
    clock.reset()
    assert clock.offset() == initial
    assert abs(datetime.now(UTC) + initial - clock.utc_now()) < timedelta(seconds=5)


@pytest.mark.parametrize(("value", "seconds"), [("-1.5", "-1.5"), ("", "0.0")])
def test_a_process_takes_its_offset_from_the_environment(value: str, seconds: str) -> None:
    script = "from durable_ext import clock; print(clock.offset().total_seconds())"
    env = {**os.environ, OFFSET_ENV: value, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == seconds


def test_a_bad_offset_stops_the_process_naming_the_variable() -> None:
    env = {**os.environ, OFFSET_ENV: "ten minutes", "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", "import durable_ext.clock"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert f"ValueError: {OFFSET_ENV}" in done.stderr


# -- jumps in one worker -------------------------------------------------------------------------


async def test_a_backward_jump_does_not_hold_up_a_monitor_loop(
    azurite: AzuriteInstance, hub_name: str
) -> None:
    """The worker's clock jumps back an hour while a monitor waits on 0.4 s timers until 2 s have
    passed: it still finishes within seconds, its clock never goes back, no timer wakes it early."""
    async with runtime(azurite, hub_name) as rt:
        instance_id = await rt.client.start_new("monitor", client_input={"seconds": 2, "ms": 400})
        timers_before, _ = await wait_for(
            lambda: custom_status(rt, instance_id),
            lambda timers: (timers or 0) >= 1,
            STEP_DEADLINE,
            "the monitor sets its first timer",
            poll=0.05,
        )
        clock.shift(-JUMP)
        status = await rt.client.wait_for_completion(instance_id, timeout=STEP_DEADLINE)
        worker_now = clock.utc_now()

    assert status.runtime_status is COMPLETED, status.output
    woke, due = _times(status.output["woke"]), _times(status.output["due"])
    print(f"{len(due)} timers, {timers_before} set before the jump; woke at {woke}")
    assert len(due) - timers_before >= 2, "the jump must land before most of the timers"
    assert woke == sorted(woke), "the orchestration clock went backwards"
    late = [(w, d) for w, d in zip(woke[1:], due, strict=True) if w < d]
    assert not late, f"timers woke the orchestration before their fire time: {late}"
    assert woke[-1] >= woke[0] + timedelta(seconds=2)
    assert woke[-1] > worker_now + JUMP - timedelta(minutes=5), "the jump never reached the worker"


async def test_a_forward_jump_and_back_keeps_timers_firing_and_time_monotonic(
    azurite: AzuriteInstance, hub_name: str
) -> None:
    """A 1 s timer set before the clock jumps an hour ahead still fires; after the clock jumps
    back, a new 1 s timer fires as promptly, and the orchestration's clock never goes back."""
    async with runtime(azurite, hub_name) as rt:
        instance_id = await rt.client.start_new("two_timers")
        await wait_for(
            lambda: custom_status(rt, instance_id),
            lambda phase: phase == "first timer",
            STEP_DEADLINE,
            "the first timer is set",
            poll=0.05,
        )
        clock.shift(JUMP)
        _, took = await wait_for(
            lambda: custom_status(rt, instance_id),
            lambda phase: phase == "waiting",
            STEP_DEADLINE,
            "the timer set before the forward jump fires",
            poll=0.05,
        )
        print(f"first timer fired {took:.1f} s after the forward jump")
        clock.reset()
        raised = time.monotonic()
        await rt.client.raise_event(instance_id, "go", True)
        status = await rt.client.wait_for_completion(instance_id, timeout=STEP_DEADLINE)
        print(f"second timer done {time.monotonic() - raised:.1f} s after the jump back")

    assert status.runtime_status is COMPLETED, status.output
    woke, due = _times(status.output["woke"]), _times(status.output["due"])
    assert woke == sorted(woke), f"the orchestration clock went backwards: {woke}"
    assert woke[1] >= due[0] and woke[3] >= due[1], f"a timer woke it early: {woke} vs {due}"
    assert woke[1] - woke[0] > JUMP - timedelta(minutes=5), "the forward jump never showed"
    assert woke[3] - woke[2] < timedelta(minutes=1), "the second timer took the jump back with it"


# -- workers with skewed clocks ---------------------------------------------------------------------


async def test_a_hub_handed_from_a_fast_clock_to_a_slow_one_keeps_its_timers(
    azurite: AzuriteInstance, hub_name: str, tmp_path: Path
) -> None:
    """Timer chains start on a worker process whose clock is 10 minutes fast, which then stops and
    leaves them to one 10 minutes slow: every chain completes in seconds, and in every history the
    clock (OrchestratorStarted) never goes back and no TimerFired is delivered before its FireAt."""
    activity_log = tmp_path / "activities.log"
    connection = azurite.connection_string
    instance_ids = [f"skew{n}" for n in range(4)]
    total = len(instance_ids) * CHAIN["steps"]
    began = datetime.now(UTC)
    with WorkerCluster(connection, hub_name, tmp_path, activity_log) as cluster:
        cluster.start("fast", {OFFSET_ENV: f"{SKEW_SECONDS:g}"})
        async with (
            HubView(connection, hub_name) as view,
            Runtime(
                fault_registry,
                connection=connection,
                hub=hub_name,
                options=fast_options(),
                run_worker=False,
            ) as rt,
        ):
            await wait_for(
                view.lease_owners,
                lambda owners: set(owners.values()) == {"fast"},
                STARTUP_DEADLINE,
                "the fast worker owns every partition",
            )
            for instance_id in instance_ids:
                await rt.client.start_new("timer_chain", instance_id, CHAIN)
            await wait_for(
                lambda: asyncio.to_thread(read_log, activity_log),
                lambda lines: len(lines) >= total // 3,
                COMPLETION_DEADLINE,
                "a third of the activities ran on the fast clock",
                poll=0.05,
            )
            cluster.start("slow", {OFFSET_ENV: f"{-SKEW_SECONDS:g}"})
            cluster["fast"].send(signal.SIGTERM)
            await wait_for(
                view.lease_owners,
                lambda owners: set(owners.values()) == {"slow"},
                HANDOVER_DEADLINE,
                "the slow worker takes over every partition",
                poll=0.1,
            )
            ran_at_handover = len(read_log(activity_log))
            assert ran_at_handover < total, "the handover must land while the chains run"
            statuses = await asyncio.gather(
                *(
                    rt.client.wait_for_completion(i, timeout=COMPLETION_DEADLINE, poll_interval=0.2)
                    for i in instance_ids
                )
            )
            histories = {i: await view.history_rows(i) for i in instance_ids}

    wrong = {s.instance_id: (s.runtime_status, s.output) for s in statuses}
    assert all(s.runtime_status is COMPLETED for s in statuses), wrong
    assert all(s.output == expected_chain(CHAIN["steps"]) for s in statuses), wrong
    print(f"handed over after {ran_at_handover} of {total} activities")
    for instance_id, rows in histories.items():
        events = sorted((r for r in rows if r["RowKey"] != "sentinel"), key=lambda r: r["RowKey"])
        started = [r["_Timestamp"] for r in events if r["EventType"] == "OrchestratorStarted"]
        fired = [r["FireAt"] for r in events if r["EventType"] == "TimerFired"]
        assert all(isinstance(t, datetime) for t in [*started, *fired]), events
        assert len(fired) == CHAIN["steps"], events
        assert max(started) > began + timedelta(seconds=SKEW_SECONDS / 2), (
            f"{instance_id}: the fast clock never showed: {started}"
        )
        assert not clock_violations(events), (instance_id, clock_violations(events))
