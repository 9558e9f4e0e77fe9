"""Client behaviour the SDK has: suspend/resume of a finished instance is no error,
`overridableExistingInstanceStates`, and the `task_hub_name`/`connection_name` arguments."""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest

from durable_ext import DurableOrchestrationContext, OrchestrationRuntimeStatus
from durable_ext.client import DurableOrchestrationClient, InstanceAlreadyExistsError
from durable_ext.runtime import Runtime
from durable_ext.worker import FunctionRegistry
from tests.wait import wait_for
from tests.worker.conftest import fast_options

COMPLETED = OrchestrationRuntimeStatus.Completed


def waits(ctx: DurableOrchestrationContext):
    return {"input": ctx.get_input(), "event": (yield ctx.wait_for_external_event("Go"))}


def registry() -> FunctionRegistry:
    reg = FunctionRegistry()
    reg.add_orchestrator("waits", waits)
    return reg


async def test_suspend_and_resume_of_a_finished_instance_do_nothing(runtime) -> None:
    async with runtime(registry()) as rt:
        await rt.client.start_new("waits", "done-1", 1)
        await rt.client.raise_event("done-1", "Go", "now")
        done = await rt.client.wait_for_completion("done-1", timeout=30)
        await rt.client.suspend("done-1", "late")
        await rt.client.resume("done-1", "late")
        after = await rt.client.get_status("done-1")
    assert done.runtime_status is COMPLETED
    assert after.runtime_status is COMPLETED and after.last_updated_time == done.last_updated_time


@pytest.mark.parametrize("any_state", [False, True])
async def test_start_new_on_a_running_instance(runtime, any_state: bool) -> None:
    async with runtime(registry(), replace_running_instances=any_state) as rt:
        await rt.client.start_new("waits", "busy-1", "first")
        first = await _running(rt, "busy-1")
        if not any_state:
            with pytest.raises(InstanceAlreadyExistsError, match="already exists"):
                await rt.client.start_new("waits", "busy-1", "second")
            return
        await rt.client.start_new("waits", "busy-1", "second")
        second = await _running(rt, "busy-1", other_than=first)
        await rt.client.raise_event("busy-1", "Go", "now")
        done = await rt.client.wait_for_completion("busy-1", timeout=30)
    assert second != first
    assert done.output == {"input": "second", "event": "now"}


async def _running(rt: Any, instance_id: str, other_than: str | None = None) -> str:
    """Wait until the instance runs an execution other than `other_than`; its execution id."""

    async def execution() -> str | None:
        row = await rt.hub.instances.get(instance_id, fetch_payloads=False)
        running = row is not None and row.runtime_status is OrchestrationRuntimeStatus.Running
        return row.execution_id if running and row.execution_id != other_than else None

    return await wait_for(execution, timeout=30)


async def test_client_arguments_name_another_task_hub(
    runtime, azurite, hub_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    other_hub = "Other" + secrets.token_hex(4)
    monkeypatch.setenv("OTHER_HUB_NAME", other_hub)
    other = Runtime(
        registry(),
        connection=azurite.connection_string,
        hub=other_hub,
        options=fast_options(partition_count=2),
    )
    async with other, runtime(registry()) as rt:
        lone = DurableOrchestrationClient(rt.hub)
        with pytest.raises(ValueError, match="cannot reach"):
            await lone.raise_event("far-1", "Go", 1, task_hub_name=other_hub)
        assert await rt.hub_clients.get(hub_name.upper(), "AzureWebJobsStorage") is rt.client
        far = await rt.hub_clients.get("%OTHER_HUB_NAME%", None)
        assert far.task_hub_name == other_hub
        await far.start_new("waits", "far-1", 5)  # routed by the hub's own 2 partitions
        await rt.client.raise_event("far-1", "Go", 6, task_hub_name=other_hub)
        done = await other.client.wait_for_completion("far-1", timeout=30)
    assert done.output == {"input": 5, "event": 6}


async def test_the_sdk_constructor_takes_a_durable_client_bindings_json(
    runtime, azurite, hub_name: str, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AzureWebJobsStorage", azurite.connection_string)
    monkeypatch.setenv("AzureWebJobsScriptRoot", str(tmp_path))
    (tmp_path / "host.json").write_text(
        json.dumps({"extensions": {"durableTask": {"storageProvider": {"partitionCount": 2}}}})
    )
    binding = {
        "taskHubName": hub_name,
        "requiredQueryStringParameters": f"taskHub={hub_name}&connection=Storage&code=x",
        "rpcBaseUrl": "http://127.0.0.1:17071/durabletask/",
    }
    client = DurableOrchestrationClient(json.dumps(binding), "invocation-1")
    try:
        assert client.task_hub_name == hub_name and client.function_invocation_id == "invocation-1"
        async with runtime(registry(), partition_count=2) as rt:
            await client.start_new("waits", "bound-1", 7)
            await client.raise_event("bound-1", "Go", 8)
            done = await rt.client.wait_for_completion("bound-1", timeout=30)
    finally:
        await client.close()
    assert done.output == {"input": 7, "event": 8}
    with pytest.raises(ValueError, match="binding"):
        DurableOrchestrationClient("not json")
