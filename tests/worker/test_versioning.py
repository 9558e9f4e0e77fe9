"""Orchestration versioning end to end: `defaultVersion` stamps new instances and
sub-orchestrations (`context.version`), and each `versionMatchStrategy` / `versionFailureStrategy`
decides which instances a worker runs, refuses for another worker, or fails."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from durable_ext import DurableOrchestrationContext, OrchestrationRuntimeStatus
from durable_ext.orchestration.executor import ReplayOptions
from durable_ext.orchestration.versioning import VersioningPolicy, compare_versions
from durable_ext.settings import load_durable_task_settings
from durable_ext.worker import FunctionRegistry, WorkerOptions
from tests.wait import wait_for

COMPLETED = OrchestrationRuntimeStatus.Completed


def versions(ctx: DurableOrchestrationContext):
    child = yield ctx.call_sub_orchestrator("child")
    return {"mine": ctx.version, "child": child}


def child(ctx: DurableOrchestrationContext) -> Any:
    return ctx.version


def registry() -> FunctionRegistry:
    reg = FunctionRegistry()
    reg.add_orchestrator("versions", versions)
    reg.add_orchestrator("child", child)
    return reg


def worker(version: str, match: str = "CurrentOrOlder", failure: str = "Reject") -> dict[str, Any]:
    """Runtime options of a worker of `version` (as host.json would set them)."""
    return {
        "versioning": VersioningPolicy.of(version, match, failure),
        "replay": ReplayOptions(version=version),
    }


async def test_default_version_stamps_new_instances_and_sub_orchestrations(runtime) -> None:
    async with runtime(registry(), **worker("2.0")) as rt:
        stamped = await rt.client.start_new("versions")
        explicit = await rt.client.start_new("versions", version="1.5")
        done = [await rt.client.wait_for_completion(i, timeout=60) for i in (stamped, explicit)]
    assert done[0].output == {"mine": "2.0", "child": "2.0"}
    assert done[1].output == {"mine": "1.5", "child": "2.0"}


async def test_without_default_version_every_instance_runs(runtime) -> None:
    async with runtime(registry(), **worker("", "Strict", "Fail")) as rt:
        newer = await rt.client.start_new("versions", version="3.0")
        plain = await rt.client.start_new("versions")
        done = [await rt.client.wait_for_completion(i, timeout=60) for i in (newer, plain)]
    assert done[0].output == {"mine": "3.0", "child": ""}
    assert done[1].output == {"mine": "", "child": ""}


@pytest.mark.parametrize(
    ("match", "runs", "refused"),
    [
        ("None", ["", "1.0", "3.0"], []),
        ("Strict", ["2.0"], ["1.0", "3.0"]),
        ("CurrentOrOlder", ["", "1.0", "2.0", "1.10"], ["3.0", "10.0"]),
    ],
)
async def test_match_strategy_with_fail(runtime, match: str, runs: list, refused: list) -> None:
    async with runtime(registry(), **worker("2.0", match, "Fail")) as rt:
        started = {v: await rt.client.start_new("child", version=v) for v in runs + refused}
        ended = {v: await rt.client.wait_for_completion(i, timeout=60) for v, i in started.items()}
    for version in runs:
        assert ended[version].runtime_status is COMPLETED, ended[version].output
        assert ended[version].output == (version or "2.0")
    for version in refused:
        assert ended[version].runtime_status is OrchestrationRuntimeStatus.Failed
        assert "Orchestration version did not comply with Worker Versioning" in str(
            ended[version].output
        )


async def test_reject_leaves_the_instance_for_a_compatible_worker(
    runtime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="durable_ext.orchestrations")
    async with runtime(registry(), **worker("1.0", "Strict")) as old:
        instance_id = await old.client.start_new("child", version="2.0")
        await wait_for(lambda: "left for another" in caplog.text, timeout=30)
        status = await old.client.get_status(instance_id)
        assert status.runtime_status is OrchestrationRuntimeStatus.Pending
    async with runtime(registry(), **worker("2.0", "Strict")) as new:
        done = await new.client.wait_for_completion(instance_id, timeout=60)
    assert done.runtime_status is COMPLETED and done.output == "2.0"


def test_versions_compare_as_durable_functions_compares_them() -> None:
    assert compare_versions(None, "") == 0
    assert compare_versions("", "1.0") < 0 < compare_versions("1.0", None)
    assert compare_versions("1.10", "1.9") > 0  # numbers, not text
    assert compare_versions("1.0", "1.0.0") < 0  # System.Version: a missing part is lower
    assert compare_versions("Beta", "alpha") > 0 and compare_versions("V1", "v1") == 0


def test_host_json_sets_the_policy() -> None:
    durable = {
        "defaultVersion": "3.1",
        "versionMatchStrategy": "strict",
        "versionFailureStrategy": "Fail",
        "httpSettings": {"defaultAsyncRequestSleepTimeMilliseconds": 1500},
    }
    settings = load_durable_task_settings({"extensions": {"durableTask": durable}})
    options = WorkerOptions.from_settings(settings)
    assert options.versioning == VersioningPolicy.of("3.1", "Strict", "Fail")
    assert options.replay.version == "3.1"
    assert options.replay.http_async_sleep.total_seconds() == 1.5
    assert WorkerOptions.from_settings(load_durable_task_settings({})).versioning == (
        VersioningPolicy.of("", "CurrentOrOlder", "Reject")
    )
