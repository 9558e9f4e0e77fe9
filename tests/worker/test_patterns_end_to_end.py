"""Every Durable Functions pattern end to end through the client, on Azurite."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from durable_ext import DurableOrchestrationContext, OrchestrationRuntimeStatus, RetryOptions
from durable_ext.worker import FunctionRegistry

COMPLETED = OrchestrationRuntimeStatus.Completed


def registry(**functions: Any) -> FunctionRegistry:
    reg = FunctionRegistry()
    for name, fn in functions.items():
        if name.startswith("o_"):
            reg.add_orchestrator(name[2:], fn)
        else:
            reg.add_activity(name, fn)
    return reg


def hello_sequence(ctx: DurableOrchestrationContext):
    results = []
    for city in ctx.get_input():
        results.append((yield ctx.call_activity("say_hello", city)))
    return results


async def test_function_chaining(runtime) -> None:
    reg = registry(o_chain=hello_sequence, say_hello=lambda city: f"Hello {city}!")
    async with runtime(reg) as rt:
        instance_id = await rt.client.start_new(
            "chain", client_input=["Tokyo", "Seattle", "London"]
        )
        status = await rt.client.wait_for_completion(instance_id, timeout=60)
    assert status.runtime_status is COMPLETED
    assert status.output == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]


def fan_out(ctx: DurableOrchestrationContext):
    count = ctx.get_input()
    results = yield ctx.task_all([ctx.call_activity("square", i) for i in range(count)])
    return sum(results)


async def test_fan_out_fan_in_of_500_activities(runtime) -> None:
    async def square(n: int) -> int:
        return n * n

    async with runtime(registry(o_fan=fan_out, square=square)) as rt:
        instance_id = await rt.client.start_new("fan", client_input=500)
        status = await rt.client.wait_for_completion(instance_id, timeout=180)
    assert status.output == sum(i * i for i in range(500))


def approval(ctx: DurableOrchestrationContext):
    timeout = ctx.create_timer(ctx.current_utc_datetime + timedelta(seconds=ctx.get_input()))
    decision = ctx.wait_for_external_event("Approval")
    winner = yield ctx.task_any([decision, timeout])
    if winner is decision:
        timeout.cancel()
        return f"approved={decision.result}"
    return (yield ctx.call_activity("escalate", "boss"))


async def test_human_interaction_event_wins(runtime) -> None:
    reg = registry(o_approval=approval, escalate=lambda who: f"escalated to {who}")
    async with runtime(reg) as rt:
        instance_id = await rt.client.start_new("approval", client_input=600)
        await rt.client.raise_event(instance_id, "Approval", True)
        status = await rt.client.wait_for_completion(instance_id, timeout=60)
    assert status.output == "approved=True"


async def test_human_interaction_timer_wins(runtime) -> None:
    reg = registry(o_approval=approval, escalate=lambda who: f"escalated to {who}")
    async with runtime(reg) as rt:
        instance_id = await rt.client.start_new("approval", client_input=2)
        status = await rt.client.wait_for_completion(instance_id, timeout=60)
    assert status.output == "escalated to boss"


def monitor(ctx: DurableOrchestrationContext):
    checks = 0
    while True:
        state = yield ctx.call_activity("check", checks)
        checks += 1
        ctx.set_custom_status({"checks": checks, "state": state})
        if state == "done":
            return checks
        yield ctx.create_timer(ctx.current_utc_datetime + timedelta(milliseconds=500))


async def test_monitor_with_custom_status(runtime) -> None:
    reg = registry(o_monitor=monitor, check=lambda n: "done" if n >= 2 else "waiting")
    async with runtime(reg) as rt:
        instance_id = await rt.client.start_new("monitor")
        status = await rt.client.wait_for_completion(instance_id, timeout=60)
    assert status.output == 3
    assert status.custom_status == {"checks": 3, "state": "done"}


def eternal(ctx: DurableOrchestrationContext):
    generation = ctx.get_input()
    yield ctx.call_activity("cleanup", generation)
    if generation >= 3:
        return {"generations": generation, "execution": ctx.execution_id}
    ctx.continue_as_new(generation + 1)


async def test_eternal_orchestration_gets_a_new_execution_each_generation(runtime) -> None:
    seen: list[int] = []
    reg = registry(o_eternal=eternal, cleanup=seen.append)
    async with runtime(reg) as rt:
        instance_id = await rt.client.start_new("eternal", client_input=0)
        status = await rt.client.wait_for_completion(instance_id, timeout=60)
        history = await rt.client.get_history(instance_id)
    assert status.output["generations"] == 3
    assert sorted(set(seen)) == [0, 1, 2, 3]
    starts = [e for e in history if type(e).__name__ == "ExecutionStarted"]
    assert len(starts) == 1 and starts[0].input == "3"
    assert starts[0].orchestration_instance.execution_id == status.output["execution"]


def parent(ctx: DurableOrchestrationContext):
    results = yield ctx.task_all(
        [
            ctx.call_sub_orchestrator("chain", ["a", "b"]),
            ctx.call_sub_orchestrator("chain", ["c"], instance_id=f"{ctx.instance_id}-child"),
        ]
    )
    return results


async def test_sub_orchestrations(runtime) -> None:
    reg = registry(o_parent=parent, o_chain=hello_sequence, say_hello=lambda c: c.upper())
    async with runtime(reg) as rt:
        instance_id = await rt.client.start_new("parent", instance_id="family")
        status = await rt.client.wait_for_completion(instance_id, timeout=60)
        child = await rt.client.get_status("family-child")
    assert status.output == [["A", "B"], ["C"]]
    assert child.runtime_status is COMPLETED and child.output == ["C"]


def retrying(ctx: DurableOrchestrationContext):
    return (
        yield ctx.call_activity_with_retry(
            "flaky", RetryOptions(200, 5, backoff_coefficient=1.5), "x"
        )
    )


async def test_retries_until_success(runtime) -> None:
    attempts: list[str] = []

    def flaky(value: str) -> str:
        attempts.append(value)
        if len(attempts) < 3:
            raise RuntimeError(f"attempt {len(attempts)} failed")
        return f"ok after {len(attempts)}"

    async with runtime(registry(o_retrying=retrying, flaky=flaky)) as rt:
        status = await rt.client.wait_for_completion(
            await rt.client.start_new("retrying"), timeout=60
        )
    assert status.output == "ok after 3"


def compensating(ctx: DurableOrchestrationContext):
    try:
        yield ctx.call_activity("charge", 100)
    except Exception as error:  # noqa: BLE001 - the pattern under test
        refund = yield ctx.call_activity("refund", str(error).split("\n")[0])
        return {"compensated": refund}
    return "charged"


def charge(amount: int) -> None:
    raise ValueError(f"card declined for {amount}")


async def test_activity_failure_is_caught_and_compensated(runtime) -> None:
    reg = registry(
        o_compensating=compensating, charge=charge, refund=lambda why: f"refunded: {why}"
    )
    async with runtime(reg) as rt:
        status = await rt.client.wait_for_completion(
            await rt.client.start_new("compensating"), timeout=60
        )
    assert status.output == {
        "compensated": "refunded: Activity function 'charge' failed: card declined for 100 "
    }


def uncaught(ctx: DurableOrchestrationContext):
    yield ctx.call_activity("charge", 5)


async def test_uncaught_activity_failure_fails_the_instance_with_details(runtime) -> None:
    async with runtime(registry(o_uncaught=uncaught, charge=charge)) as rt:
        instance_id = await rt.client.start_new("uncaught")
        status = await rt.client.wait_for_completion(instance_id, timeout=60)
        history = await rt.client.get_history(instance_id)
    assert status.runtime_status is OrchestrationRuntimeStatus.Failed
    assert status.output == (
        "Orchestrator function 'uncaught' failed: Activity function 'charge' failed: card declined for 5"
    )
    completed = history[-2]
    assert completed.failure_details.inner_failure.error_type == "ValueError"
    assert "card declined" in (completed.failure_details.inner_failure.stack_trace or "")


def waits_forever(ctx: DurableOrchestrationContext):
    value = yield ctx.wait_for_external_event("Go")
    return (yield ctx.call_activity("say_hello", value))


async def test_terminate(runtime) -> None:
    async with runtime(registry(o_waits=waits_forever, say_hello=str.upper)) as rt:
        instance_id = await rt.client.start_new("waits")
        await _wait_for_status(rt.client, instance_id, OrchestrationRuntimeStatus.Running)
        await rt.client.terminate(instance_id, "no longer needed")
        status = await rt.client.wait_for_completion(instance_id, timeout=60)
    assert status.runtime_status is OrchestrationRuntimeStatus.Terminated
    assert status.output == "no longer needed"


async def test_suspend_and_resume(runtime) -> None:
    async with runtime(registry(o_waits=waits_forever, say_hello=str.upper)) as rt:
        client = rt.client
        instance_id = await client.start_new("waits")
        await _wait_for_status(client, instance_id, OrchestrationRuntimeStatus.Running)
        await client.suspend(instance_id, "hold on")
        await _wait_for_status(client, instance_id, OrchestrationRuntimeStatus.Suspended)
        await client.raise_event(instance_id, "Go", "later")
        await client.resume(instance_id, "carry on")
        status = await client.wait_for_completion(instance_id, timeout=60)
    assert status.output == "LATER"


async def test_purge_removes_history_and_status(runtime) -> None:
    reg = registry(o_chain=hello_sequence, say_hello=str.upper)
    async with runtime(reg) as rt:
        instance_id = await rt.client.start_new("chain", client_input=["x"])
        await rt.client.wait_for_completion(instance_id, timeout=60)
        result = await rt.client.purge_instance_history(instance_id)
        assert result.instances_deleted == 1
        assert not await rt.client.get_status(instance_id)
        assert await rt.client.get_history(instance_id) == []


def big_payloads(ctx: DurableOrchestrationContext):
    blob = yield ctx.call_activity("make_blob", ctx.get_input())
    echoed = yield ctx.call_activity("echo", blob)
    return {"size": len(echoed), "same": echoed == blob}


async def test_one_megabyte_payloads_round_trip(runtime) -> None:
    reg = registry(o_big=big_payloads, make_blob=lambda n: "x" * n, echo=lambda s: s)
    async with runtime(reg) as rt:
        instance_id = await rt.client.start_new("big", client_input=1_000_000)
        status = await rt.client.wait_for_completion(instance_id, timeout=60)
    assert status.output == {"size": 1_000_000, "same": True}


def long_timer(ctx: DurableOrchestrationContext):
    yield ctx.create_timer(ctx.current_utc_datetime + timedelta(seconds=3))
    return "woke"


async def test_timer_longer_than_the_cap_is_chained(runtime) -> None:
    from durable_ext.orchestration.executor import ReplayOptions

    replay = ReplayOptions(
        maximum_timer_duration=timedelta(seconds=1), long_timer_interval=timedelta(seconds=1)
    )
    async with runtime(registry(o_long=long_timer), replay=replay) as rt:
        instance_id = await rt.client.start_new("long")
        status = await rt.client.wait_for_completion(instance_id, timeout=60)
        history = await rt.client.get_history(instance_id)
    assert status.output == "woke"
    assert sum(1 for e in history if type(e).__name__ == "TimerCreated") == 3


async def _wait_for_status(client, instance_id: str, wanted: OrchestrationRuntimeStatus) -> None:
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while loop.time() < deadline:
        status = await client.get_status(instance_id)
        if status and status.runtime_status is wanted:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{instance_id} never reached {wanted}")
