"""Critical sections on the orchestration side: sorted lock requests, the locking rules, release on
leaving the section and when the orchestration ends or fails."""

from __future__ import annotations

import json
from typing import Any

import pytest

import durable_ext as df
from durable_ext.orchestration import OrchestrationExecutor
from durable_ext.orchestration.entity_messages import LOCK_GRANTED
from durable_ext.orchestration.history import EventSent, HistoryEvent, OrchestrationStatus

from .history_builder import HistoryBuilder

A, B = df.EntityId("Account", "b"), df.EntityId("Account", "a")


def sent(decisions: list[HistoryEvent]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (e.instance_id or "", e.name or "", json.loads(e.input or "null"))
        for e in decisions
        if isinstance(e, EventSent)
    ]


def run_granted(orchestrator: Any) -> tuple[Any, list[tuple[str, str, dict[str, Any]]]]:
    """Run until the lock request, grant it, run on; (final result, messages of both runs)."""
    first = OrchestrationExecutor(orchestrator, instance_id="o").execute(*HistoryBuilder().split())
    ((target, name, request),) = sent(first.decisions)
    history = HistoryBuilder()
    history.events.extend(first.decisions)
    granted = history.episode().raised(request["id"], {"result": LOCK_GRANTED})
    result = OrchestrationExecutor(orchestrator, instance_id="o").execute(*granted.split())
    return result, sent(first.decisions) + sent(result.decisions)


def locks_and_signals(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    with (yield context.lock([A, B, A])):
        context.signal_entity(df.EntityId("Account", "c"), "deposit", 1)
    return "done"


def test_one_sorted_request_travels_the_lock_set_and_leaving_releases_every_entity() -> None:
    result, messages = run_granted(locks_and_signals)
    assert result.status is OrchestrationStatus.Completed
    target, name, request = messages[0]
    assert (target, name) == ("@account@a", "op")
    assert request["lockset"] == [{"name": "account", "key": "a"}, {"name": "account", "key": "b"}]
    assert "op" not in request and request["parent"] == "inst"
    releases = [(t, m["id"]) for t, n, m in messages if n == "release"]
    assert releases == [("@account@a", request["id"]), ("@account@b", request["id"])]


def forgets_to_release(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    yield context.lock([A])
    raise ValueError("failed inside the critical section")


def test_an_orchestration_that_fails_inside_a_section_releases_its_locks() -> None:
    result, messages = run_granted(forgets_to_release)
    assert result.status is OrchestrationStatus.Failed
    assert [t for t, n, _ in messages if n == "release"] == ["@account@b"]


def breaks_a_rule(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    section = yield context.lock([A])
    errors = []
    for attempt in (
        lambda: context.lock([B]),
        lambda: context.call_entity(B, "get"),
        lambda: context.signal_entity(A, "deposit", 1),
    ):
        try:
            attempt()
        except df.LockingRulesViolationError as exc:
            errors.append(str(exc))
    section.release()
    return errors


def test_the_locking_rules() -> None:
    result, _ = run_granted(breaks_a_rule)
    errors = json.loads(result.output or "[]")
    assert len(errors) == 3
    assert "another critical section" in errors[0]


def test_a_class_based_entity_runs_its_methods_with_rollback() -> None:
    class Account(df.DurableEntity):
        def __init__(self) -> None:
            self.balance = 0

        def deposit(self, amount: int) -> int:
            self.balance += amount
            return self.balance

        def withdraw(self, amount: int) -> None:
            self.balance -= amount
            if self.balance < 0:
                raise ValueError("overdrawn")

    from durable_ext.orchestration.entity_class import class_entity_function

    handle = df.Entity.create(class_entity_function(Account))
    batch = [
        {"name": "Deposit", "input": "5"},
        {"name": "withdraw", "input": "9"},
        {"name": "nope", "input": None},
        {"name": "delete", "input": None},
        {"name": "deposit", "input": "1"},
    ]
    body = json.dumps(
        {"self": {"name": "account", "key": "k"}, "exists": False, "state": None, "batch": batch}
    )
    response = json.loads(handle(body))
    assert [(r["isError"], json.loads(r["result"])) for r in response["results"]] == [
        (False, 5),
        (True, "overdrawn"),
        (True, "Entity 'account' has no operation 'nope'"),
        (False, None),
        (False, 1),
    ]
    assert json.loads(response["entityState"]) == {"balance": 1}
    with pytest.raises(TypeError, match="DurableEntity"):
        class_entity_function(dict)  # type: ignore[arg-type]
