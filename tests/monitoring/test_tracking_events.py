"""Durable Functions' tracking events from real runs on Azurite: the sequences, fields and levels."""

from __future__ import annotations

import logging

from durable_ext import (
    DurableOrchestrationContext,
    EntityId,
    EntityOperationFailedError,
    OrchestrationRuntimeStatus,
    RetryOptions,
)
from durable_ext.orchestration.runtime import ReplayOptions
from tests.wait import wait_for
from tests.worker.test_patterns_end_to_end import registry

from .conftest import TrackingRecords

ORCH, ACT = "Orchestrator", "Activity"


def chain(ctx: DurableOrchestrationContext):
    first = yield ctx.call_activity("echo", "a")
    second = yield ctx.call_activity("echo", "b")
    return first + second


async def test_a_chain_logs_the_extensions_sequence(runtime, tracked: TrackingRecords) -> None:
    async with runtime(registry(o_chain=chain, echo=lambda s: s)) as rt:
        instance_id = await rt.client.start_new("chain", client_input={"secret": "x"})
        status = await rt.client.wait_for_completion(instance_id, timeout=60)
    assert status.runtime_status is OrchestrationRuntimeStatus.Completed
    assert tracked.steps(instance_id) == [
        ("chain", ORCH, "Scheduled"),
        ("chain", ORCH, "Started"),
        ("echo", ACT, "Scheduled"),
        ("chain", ORCH, "Awaited"),
        ("echo", ACT, "Started"),
        ("echo", ACT, "Completed"),
        ("echo", ACT, "Scheduled"),
        ("chain", ORCH, "Awaited"),
        ("echo", ACT, "Started"),
        ("echo", ACT, "Completed"),
        ("chain", ORCH, "Completed"),
    ]
    records = tracked.of(instance_id)
    assert all(r.prop__isReplay == "False" for r in records if hasattr(r, "prop__isReplay"))
    first = records[0]
    assert first.getMessage() == (
        f"{instance_id}: Function 'chain (Orchestrator)' scheduled. Reason: NewInstance. "
        "IsReplay: False. State: Scheduled. RuntimeStatus: Pending. "
        f"HubName: {rt.hub.names.hub}. AppName: . SlotName: . "
        f"ExtensionVersion: {first.prop__extensionVersion}. "
        f"SequenceNumber: {first.prop__sequenceNumber}."
    )
    assert first.Category == "Host.Triggers.DurableTask"
    assert first.LogLevel == "Information"
    assert getattr(first, "prop__{OriginalFormat}").startswith(
        "{instanceId}: Function '{functionName} ({functionType})' scheduled."
    )
    numbers = [int(r.prop__sequenceNumber) for r in records]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
    activity_events = [
        r for r in records if r.prop__functionType == ACT and r.prop__state != "Scheduled"
    ]
    assert [r.prop__taskEventId for r in activity_events] == ["0", "0", "1", "1"]
    # Inputs and outputs are redacted by default: their length only.
    started = records[1]
    assert started.prop__input == "(Redacted 14 characters)"  # {"secret":"x"}
    assert "secret" not in " ".join(r.getMessage() for r in records)
    assert records[-1].prop__output == "(Redacted 4 characters)"


def fan_out(ctx: DurableOrchestrationContext):
    results = yield ctx.task_all([ctx.call_activity("echo", i) for i in range(5)])
    return sum(results)


async def test_a_fan_out_schedules_every_branch_in_one_episode(runtime, tracked) -> None:
    async with runtime(registry(o_fan=fan_out, echo=lambda n: n)) as rt:
        instance_id = await rt.client.start_new("fan")
        await rt.client.wait_for_completion(instance_id, timeout=60)
    steps = tracked.steps(instance_id)
    assert steps[:8] == [
        ("fan", ORCH, "Scheduled"),
        ("fan", ORCH, "Started"),
        *[("echo", ACT, "Scheduled")] * 5,
        ("fan", ORCH, "Awaited"),
    ]
    assert steps.count(("echo", ACT, "Started")) == 5
    assert steps.count(("echo", ACT, "Completed")) == 5
    assert steps[-1] == ("fan", ORCH, "Completed")
    task_ids = sorted(
        int(r.prop__taskEventId)
        for r in tracked.of(instance_id)
        if r.prop__state == "Completed" and r.prop__functionType == ACT
    )
    assert task_ids == [0, 1, 2, 3, 4]


def flaky_chain(ctx: DurableOrchestrationContext):
    retry = RetryOptions(first_retry_interval_in_milliseconds=100, max_number_of_attempts=2)
    return (yield ctx.call_activity_with_retry("flaky", retry, "x"))


async def test_a_failure_with_retry_logs_each_failed_attempt_as_an_error(runtime, tracked) -> None:
    def flaky(value: str) -> str:
        raise RuntimeError(f"flaky failed on {value} with a secret")

    async with runtime(registry(o_flaky_chain=flaky_chain, flaky=flaky)) as rt:
        instance_id = await rt.client.start_new("flaky_chain")
        status = await rt.client.wait_for_completion(instance_id, timeout=60)
    assert status.runtime_status is OrchestrationRuntimeStatus.Failed
    steps = tracked.steps(instance_id)
    assert steps.count(("flaky", ACT, "Failed")) == 2
    assert steps[-1] == ("flaky_chain", ORCH, "Failed")
    failures = [r for r in tracked.of(instance_id) if r.prop__state == "Failed"]
    assert all(r.levelno == logging.ERROR and r.LogLevel == "Error" for r in failures)
    # The retry's timer: a Listening (CreateTimer) and a TimerExpired between the attempts.
    states = [s for _, _, s in steps]
    assert states.index("Listening") < states.index("TimerExpired")
    # Redacted: the error type and where it came from, never the message (it may carry data).
    activity_failure = failures[0]
    assert activity_failure.prop__reason.startswith("RuntimeError")
    assert "secret" not in activity_failure.getMessage()
    assert "secret" not in failures[-1].getMessage()


def waits_for_ever(ctx: DurableOrchestrationContext):
    yield ctx.wait_for_external_event("never")


async def test_terminate_is_a_warning_with_its_reason_redacted(runtime, tracked) -> None:
    async with runtime(registry(o_waits=waits_for_ever)) as rt:
        instance_id = await rt.client.start_new("waits")
        await wait_for(lambda: ("waits", ORCH, "Listening") in tracked.steps(instance_id), 30)
        await rt.client.terminate(instance_id, "operator said so")
        status = await rt.client.wait_for_completion(instance_id, timeout=60)
    assert status.runtime_status is OrchestrationRuntimeStatus.Terminated
    records = tracked.of(instance_id)
    terminated = [r for r in records if r.prop__state == "Terminated"]
    assert len(terminated) == 1
    assert terminated[0].levelno == logging.WARNING
    assert terminated[0].prop__reason == "(Redacted 16 characters)"
    assert ("waits", ORCH, "Listening") in tracked.steps(instance_id)
    listening = next(r for r in records if r.prop__state == "Listening")
    assert listening.prop__reason == "WaitForExternalEvent:never"


def counter(ctx: DurableOrchestrationContext):
    count = ctx.get_input()
    if count < 2:
        ctx.continue_as_new(count + 1)
        return None
    yield ctx.call_activity("echo", count)
    return count


async def test_continue_as_new_completes_with_the_flag_and_starts_again(runtime, tracked) -> None:
    async with runtime(registry(o_counter=counter, echo=lambda n: n)) as rt:
        instance_id = await rt.client.start_new("counter", client_input=0)
        status = await rt.client.wait_for_completion(instance_id, timeout=60)
    assert status.output == 2
    records = tracked.of(instance_id)
    completions = [
        r for r in records if r.prop__functionType == ORCH and r.prop__state == "Completed"
    ]
    assert [r.prop__continuedAsNew for r in completions] == ["True", "True", "False"]
    starts = [r for r in records if r.prop__functionType == ORCH and r.prop__state == "Started"]
    assert len(starts) == 3


async def test_replay_events_are_logged_only_with_trace_replay_events(runtime, tracked) -> None:
    """Without the instance cache every episode replays; the replayed steps are logged, marked
    IsReplay True, only when the setting is on."""
    reg = registry(o_chain=chain, echo=lambda s: s)
    ids = {}
    for trace_replay in (False, True):
        options = {"instance_cache_size": 0, "trace_replay_events": trace_replay}
        options["replay"] = ReplayOptions(observe_replay=trace_replay)
        async with runtime(reg, **options) as rt:
            ids[trace_replay] = await rt.client.start_new("chain")
            await rt.client.wait_for_completion(ids[trace_replay], timeout=60)
    quiet = tracked.of(ids[False])
    assert [r for r in quiet if getattr(r, "prop__isReplay", "False") == "True"] == []
    replayed = [
        (r.prop__functionName, r.prop__state)
        for r in tracked.of(ids[True])
        if getattr(r, "prop__isReplay", None) == "True"
    ]
    # Episode 2 replays the start and the first call; episode 3 also its result and the second.
    assert replayed == [
        ("chain", "Started"),
        ("echo", "Scheduled"),
        ("chain", "Started"),
        ("echo", "Scheduled"),
        ("echo", "Completed"),
        ("echo", "Scheduled"),
    ]
    live = [r for r in tracked.of(ids[True]) if getattr(r, "prop__isReplay", "False") == "False"]
    assert len(live) == len(quiet)
    replayed_output = [
        r.prop__output
        for r in tracked.of(ids[True])
        if r.prop__state == "Completed" and r.prop__isReplay == "True"
    ]
    assert set(replayed_output) == {"(replayed)"}


async def test_trace_inputs_and_outputs_shows_the_payloads(runtime, tracked) -> None:
    async with runtime(
        registry(o_chain=chain, echo=lambda s: s), trace_inputs_and_outputs=True
    ) as rt:
        instance_id = await rt.client.start_new("chain", client_input={"city": "Oslo"})
        await rt.client.wait_for_completion(instance_id, timeout=60)
    records = tracked.of(instance_id)
    assert records[1].prop__input == '{"city":"Oslo"}'
    assert records[-1].prop__output == '"ab"'


def counter_entity(context) -> None:
    current = context.get_state(lambda: 0)
    if context.operation_name == "add":
        amount = context.get_input()
        if amount < 0:
            raise ValueError("no negative amounts")
        context.set_state(current + amount)
    context.set_result(context.get_state(lambda: 0))


def uses_counter(ctx: DurableOrchestrationContext):
    entity = EntityId("counter", "k")
    ctx.signal_entity(entity, "add", 2)
    total = yield ctx.call_entity(entity, "get")
    try:
        yield ctx.call_entity(entity, "add", -1)
    except EntityOperationFailedError as error:
        return total if error.operation_name == "add" else None
    return None


async def test_entity_operations_log_like_the_extension(runtime, tracked) -> None:
    reg = registry(o_uses_counter=uses_counter)
    reg.add_entity("counter", counter_entity)
    async with runtime(reg) as rt:
        await rt.client.signal_entity(EntityId("counter", "k"), "add", 1)
        instance_id = await rt.client.start_new("uses_counter")
        status = await rt.client.wait_for_completion(instance_id, timeout=60)
    assert status.output == 3
    entity_steps = tracked.steps("@counter@k")
    assert entity_steps[0] == ("counter", "Entity", "Scheduled")  # the client's signal
    operations = [r for r in tracked.of("@counter@k") if getattr(r, "prop__operationName", None)]
    assert [(r.prop__operationName, r.levelno) for r in operations] == [
        ("add", logging.INFO),
        ("add", logging.INFO),
        ("get", logging.INFO),
        ("add", logging.ERROR),
    ]
    assert all(r.prop__operationId for r in operations)
    assert operations[-1].prop__exception.startswith("ValueError")
    assert "negative" not in operations[-1].getMessage()
    caller = tracked.steps(instance_id)
    assert caller.count(("counter", "Entity", "Scheduled")) == 3  # one signal, two calls
    responses = [r for r in tracked.of(instance_id) if "entity response" in r.getMessage()]
    assert len(responses) == 2
