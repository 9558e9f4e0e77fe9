"""Bad input gets a clear error or round-trips exactly, and a rejected call changes nothing."""

from __future__ import annotations

import base64
import os

import pytest

from durable_ext import DurableOrchestrationContext, OrchestrationRuntimeStatus
from durable_ext.orchestration.codec import PayloadError
from durable_ext.worker import FunctionRegistry


def echo_orchestrator(ctx: DurableOrchestrationContext):
    value = ctx.get_input()
    echoed = yield ctx.call_activity("echo", value)
    return echoed


def waits_for(ctx: DurableOrchestrationContext):
    return (yield ctx.wait_for_external_event(ctx.get_input()))


def returns_object(ctx: DurableOrchestrationContext):
    yield ctx.call_activity("echo", 1)
    return object()


def registry() -> FunctionRegistry:
    reg = FunctionRegistry()
    reg.add_orchestrator("echo_orchestrator", echo_orchestrator)
    reg.add_orchestrator("waits_for", waits_for)
    reg.add_orchestrator("returns_object", returns_object)
    reg.add_activity("echo", lambda value: value)
    reg.add_activity("unserializable", lambda value: {1, 2})
    return reg


async def _empty(rt) -> bool:
    return [await q.count() for q in rt.hub.control_queues] == [0] * len(rt.hub.control_queues)


async def test_non_serializable_input_is_rejected_before_anything_is_written(runtime) -> None:
    async with runtime(registry()) as rt:
        for bad in ({1, 2}, object(), b"\xff\xfe", float("nan")):
            with pytest.raises(PayloadError):
                await rt.client.start_new(
                    "echo_orchestrator", instance_id="bad-input", client_input=bad
                )
        assert not await rt.client.get_status("bad-input")
        assert await _empty(rt)


async def test_deeply_nested_input_is_a_clear_error_and_moderate_nesting_round_trips(
    runtime,
) -> None:
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    nested: list = []
    for _ in range(200):
        nested = [nested]
    async with runtime(registry()) as rt:
        with pytest.raises(PayloadError, match="nested too deeply"):
            await rt.client.start_new("echo_orchestrator", client_input=deep)
        instance_id = await rt.client.start_new("echo_orchestrator", client_input=nested)
        status = await rt.client.wait_for_completion(instance_id, timeout=60)
    assert status.output == nested


async def test_ten_megabyte_payload_round_trips(runtime) -> None:
    payload = base64.b64encode(os.urandom(7_500_000)).decode()
    async with runtime(registry()) as rt:
        instance_id = await rt.client.start_new("echo_orchestrator", client_input=payload)
        status = await rt.client.wait_for_completion(instance_id, timeout=120)
        full = await rt.client.get_status(instance_id, show_input=True)
    assert status.runtime_status is OrchestrationRuntimeStatus.Completed
    assert status.output == payload
    assert full.input_ == payload


async def test_unicode_and_escapes_round_trip_exactly(runtime) -> None:
    value = {
        "text": "naïve ☃ 𝄞 \u0000 \u2028 \\ \" ' <>&",
        "lone": "\ud800",
        "keys": {"ü": [1.5, -0, None, True]},
    }
    async with runtime(registry()) as rt:
        instance_id = await rt.client.start_new("echo_orchestrator", client_input=value)
        status = await rt.client.wait_for_completion(instance_id, timeout=60)
    assert status.output == value


@pytest.mark.parametrize(
    "instance_id",
    [
        "a/b",
        "a\\b",
        "a#b",
        "a?b",
        "tab\there",
        "nul\x00",
        "del\x7f",
        "@entity",
        "x" * 257,
        "",
        "bad\ud800",
    ],
)
async def test_invalid_instance_ids_are_rejected_with_a_reason(runtime, instance_id: str) -> None:
    async with runtime(
        registry(),
    ) as rt:
        with pytest.raises(ValueError, match="[Ii]nstance ID"):
            await rt.client.start_new("echo_orchestrator", instance_id=instance_id, client_input=1)
        assert await _empty(rt)


@pytest.mark.parametrize(
    "instance_id", ["caret^id", "spaces and ünïcode ☃", "x" * 256, "mail@example", "quote'd\"id"]
)
async def test_unusual_but_valid_instance_ids_work_end_to_end(runtime, instance_id: str) -> None:
    async with runtime(registry()) as rt:
        await rt.client.start_new("echo_orchestrator", instance_id=instance_id, client_input="v")
        status = await rt.client.wait_for_completion(instance_id, timeout=60)
        listed = await rt.client.get_status_by(instance_id_prefix=instance_id[:5])
    assert status.output == "v" and status.instance_id == instance_id
    assert [s.instance_id for s in listed] == [instance_id]


@pytest.mark.parametrize("event_name", ["Approval Event", "ünï☃", "a/b#c?d", "quote'\"", "x" * 300])
async def test_event_names_with_odd_characters_round_trip(runtime, event_name: str) -> None:
    async with runtime(registry()) as rt:
        instance_id = await rt.client.start_new("waits_for", client_input=event_name)
        await rt.client.raise_event(instance_id, event_name, {"ok": event_name})
        status = await rt.client.wait_for_completion(instance_id, timeout=60)
    assert status.output == {"ok": event_name}


async def test_empty_event_name_is_rejected(runtime) -> None:
    async with runtime(registry()) as rt:
        instance_id = await rt.client.start_new("waits_for", client_input="go")
        with pytest.raises(ValueError):
            await rt.client.raise_event(instance_id, "", 1)


async def test_non_serializable_orchestration_output_fails_the_instance_clearly(runtime) -> None:
    async with runtime(registry()) as rt:
        instance_id = await rt.client.start_new("returns_object")
        status = await rt.client.wait_for_completion(instance_id, timeout=60)
    assert status.runtime_status is OrchestrationRuntimeStatus.Failed
    assert "not JSON serializable" in status.output
