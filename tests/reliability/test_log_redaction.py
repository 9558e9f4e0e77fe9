"""Inputs and outputs never reach the logs (Durable Functions' traceInputsAndOutputs=false default)."""

from __future__ import annotations

import contextlib
import logging

import pytest

from durable_ext import DurableOrchestrationContext
from durable_ext.worker import FunctionRegistry

SECRET = "s3cr3t-4c3ss-t0k3n-0f-the-user"


def uses_secret(ctx: DurableOrchestrationContext):
    token = ctx.get_input()
    result = yield ctx.call_activity("login", token)
    with contextlib.suppress(Exception):  # the failure path must not log the input either
        yield ctx.call_activity("fails", token)
    event = yield ctx.wait_for_external_event("more")
    return [result, event]


async def test_a_secret_input_appears_in_no_log_record(
    runtime, caplog: pytest.LogCaptureFixture
) -> None:
    reg = FunctionRegistry()
    reg.add_orchestrator("uses_secret", uses_secret)
    reg.add_activity("login", lambda token: f"session for {token}")

    def fails(token: str) -> None:
        raise RuntimeError("login rejected")

    reg.add_activity("fails", fails)
    caplog.set_level(logging.DEBUG)
    async with runtime(reg) as rt:
        instance_id = await rt.client.start_new("uses_secret", client_input=SECRET)
        await rt.client.raise_event(instance_id, "more", SECRET)
        status = await rt.client.wait_for_completion(instance_id, timeout=60)
    assert status.output == [f"session for {SECRET}", SECRET]
    assert len(caplog.records) > 10  # the run did log (storage calls, leases...)
    leaked = [r.getMessage() for r in caplog.records if SECRET in r.getMessage()]
    assert leaked == []
