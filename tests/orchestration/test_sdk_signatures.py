"""Every public name of `azure.durable_functions` exists here with a compatible signature, but
the documented unsupported ones (docs/api.md, "Not supported").

Compatible = same parameter names, kinds and order, same defaults (a parameter the SDK requires may
have a default here); we may add trailing optional parameters (RetryOptions' backoff settings).
"""

from __future__ import annotations

import inspect
from typing import Any

import azure.durable_functions as sdk
import azure.durable_functions.models.Task as sdk_tasks  # noqa: N813 - the SDK's module is Task
import pytest
from azure.durable_functions.models.DurableHttpRequest import DurableHttpRequest as SdkHttpRequest
from azure.durable_functions.models.DurableOrchestrationStatus import (
    DurableOrchestrationStatus as SdkStatus,
)
from azure.durable_functions.models.PurgeHistoryResult import PurgeHistoryResult as SdkPurge

import durable_ext as df
from durable_ext.orchestration import tasks

UNSUPPORTED = {"openai_agents"}
"""Public names docs/api.md lists as not supported (the OpenAI Agents integration; `Orchestrator`,
the v1 model's, exists and raises with what to use instead)."""
PENDING: set[str] = set()
"""SDK names not there yet (none: the entity names landed with issue 15)."""
PENDING_MEMBERS: set[str] = set()
UNCOMPARED_DEFAULTS = {
    "DFApp.durable_openai_agent_orchestrator",
    "Blueprint.durable_openai_agent_orchestrator",
}
"""Unsupported members that only need to exist (and raise)."""


def sdk_public_names() -> set[str]:
    names = set(sdk.__all__)
    if hasattr(sdk, "openai_agents"):
        names.add("openai_agents")
    return names


def test_every_public_name_exists_but_the_documented_unsupported_ones() -> None:
    missing = {name for name in sdk_public_names() if not hasattr(df, name)}
    assert missing <= UNSUPPORTED | PENDING, missing


def top_level_pairs() -> list[tuple[type, type]]:
    return [
        (getattr(sdk, name), getattr(df, name))
        for name in sorted(sdk_public_names() - UNSUPPORTED)
        if isinstance(getattr(sdk, name), type) and hasattr(df, name)
    ]


PAIRS = [
    *top_level_pairs(),
    (SdkStatus, df.DurableOrchestrationStatus),
    (SdkPurge, df.PurgeHistoryResult),
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
    """Its public names, and `__init__` (an exception's are BaseException's, compared by
    `issubclass` instead)."""
    if issubclass(cls, BaseException):
        return []
    return [name for name in dir(cls) if not name.startswith("_")] + ["__init__"]


def assert_compatible(
    theirs: inspect.Signature, ours: inspect.Signature, where: str, defaults: bool = True
) -> None:
    their_params = list(theirs.parameters.values())
    our_params = list(ours.parameters.values())
    for index, expected in enumerate(their_params):
        if expected.kind is inspect.Parameter.VAR_KEYWORD:
            assert any(p.kind is inspect.Parameter.VAR_KEYWORD for p in our_params), where
            continue
        assert index < len(our_params), f"{where}: missing parameter {expected.name}"
        actual = our_params[index]
        assert (actual.name, actual.kind) == (expected.name, expected.kind), where
        assert (
            not defaults
            or actual.default == expected.default
            or expected.default is inspect.Parameter.empty
        ), f"{where}: default of {expected.name}"
    for extra in our_params[len(their_params) :]:
        assert extra.default is not inspect.Parameter.empty or extra.kind in (
            inspect.Parameter.VAR_KEYWORD,
            inspect.Parameter.VAR_POSITIONAL,
        ), f"{where}: extra required parameter {extra.name}"


@pytest.mark.parametrize(("theirs", "ours"), PAIRS, ids=lambda c: c.__name__)
def test_public_members_match(theirs: type, ours: type) -> None:
    for base in theirs.__mro__[1:]:
        if base.__module__ == "builtins" and base is not object:
            assert issubclass(ours, base), f"{ours.__name__} should be a {base.__name__}"
    for name in public_members(theirs):
        where = f"{ours.__name__}.{name}"
        if where in PENDING_MEMBERS and not hasattr(ours, name):
            continue
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
                defaults=where not in UNCOMPARED_DEFAULTS,
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


def test_durable_http_request_and_token_source_serialise_as_the_sdks() -> None:
    source = df.ManagedIdentityTokenSource("https://management.core.windows.net/")
    sdk_source = sdk.ManagedIdentityTokenSource("https://management.core.windows.net/")
    assert source.to_json() == sdk_source.to_json() and source.resource == sdk_source.resource
    args = ("POST", "https://example.invalid/x", '{"a": 1}', {"X-A": "b"})
    assert (
        df.DurableHttpRequest(*args, source).to_json()
        == SdkHttpRequest(*args, sdk_source).to_json()
    )
    assert df.DurableHttpRequest("GET", "u").to_json() == SdkHttpRequest("GET", "u").to_json()
