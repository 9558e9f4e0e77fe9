"""Every public member of the SDK's orchestration API exists here with a compatible signature.

Compatible = same parameter names, kinds and order, same defaults (a parameter the SDK requires may
have a default here); we may add trailing optional parameters (RetryOptions' backoff settings).
"""

from __future__ import annotations

import inspect
from typing import Any

import azure.durable_functions as sdk
import azure.durable_functions.models.Task as sdk_tasks  # noqa: N813 - the SDK's module is Task
import pytest

import durable_ext as df
from durable_ext.orchestration import tasks

PAIRS = [
    (sdk.DurableOrchestrationContext, df.DurableOrchestrationContext),
    (sdk.RetryOptions, df.RetryOptions),
    (sdk.EntityId, df.EntityId),
    (sdk.DurableEntityContext, df.DurableEntityContext),
    (sdk.Entity, df.Entity),
    (sdk_tasks.TaskBase, tasks.TaskBase),
    (sdk_tasks.AtomicTask, tasks.AtomicTask),
    (sdk_tasks.TimerTask, tasks.TimerTask),
    (sdk_tasks.CompoundTask, tasks.CompoundTask),
    (sdk_tasks.WhenAllTask, tasks.WhenAllTask),
    (sdk_tasks.WhenAnyTask, tasks.WhenAnyTask),
    (sdk_tasks.RetryAbleTask, tasks.RetryAbleTask),
    (sdk_tasks.LongTimerTask, tasks.LongTimerTask),
]


def public_members(cls: type) -> list[str]:
    return [name for name in dir(cls) if not name.startswith("_")] + ["__init__"]


def assert_compatible(theirs: inspect.Signature, ours: inspect.Signature, where: str) -> None:
    their_params = list(theirs.parameters.values())
    our_params = list(ours.parameters.values())
    for index, expected in enumerate(their_params):
        if expected.kind is inspect.Parameter.VAR_KEYWORD:
            assert any(p.kind is inspect.Parameter.VAR_KEYWORD for p in our_params), where
            continue
        assert index < len(our_params), f"{where}: missing parameter {expected.name}"
        actual = our_params[index]
        assert (actual.name, actual.kind) == (expected.name, expected.kind), where
        assert actual.default == expected.default or expected.default is inspect.Parameter.empty, (
            f"{where}: default of {expected.name}"
        )
    for extra in our_params[len(their_params) :]:
        assert extra.default is not inspect.Parameter.empty or extra.kind in (
            inspect.Parameter.VAR_KEYWORD,
            inspect.Parameter.VAR_POSITIONAL,
        ), f"{where}: extra required parameter {extra.name}"


@pytest.mark.parametrize(("theirs", "ours"), PAIRS, ids=lambda c: c.__name__)
def test_public_members_match(theirs: type, ours: type) -> None:
    for name in public_members(theirs):
        where = f"{ours.__name__}.{name}"
        assert hasattr(ours, name), f"{where} is missing"
        their_member = inspect.getattr_static(theirs, name)
        our_member = inspect.getattr_static(ours, name)
        if isinstance(their_member, property):
            assert isinstance(our_member, property), f"{where} should be a property"
            continue
        if isinstance(their_member, staticmethod | classmethod):
            assert type(our_member) is type(their_member), (
                f"{where} should be a {type(their_member).__name__}"
            )
        if callable(getattr(theirs, name)):
            assert_compatible(
                inspect.signature(getattr(theirs, name)),
                inspect.signature(getattr(ours, name)),
                where,
            )


def test_runtime_status_values_match() -> None:
    assert {s.name: s.value for s in sdk.OrchestrationRuntimeStatus} == {
        s.name: s.value for s in df.OrchestrationRuntimeStatus
    }


def test_task_state_values_match() -> None:
    assert {s.name: s.value for s in sdk_tasks.TaskState} == {
        s.name: s.value for s in tasks.TaskState
    }


def test_task_instance_attributes_match() -> None:
    ctx = df.DurableOrchestrationContext()
    ours: Any = ctx.task_all([ctx.call_activity("A"), ctx.call_activity("B")])
    for name in (
        "id",
        "state",
        "result",
        "is_played",
        "is_completed",
        "parent",
        "children",
        "pending_tasks",
        "completed_tasks",
    ):
        assert hasattr(ours, name), name
