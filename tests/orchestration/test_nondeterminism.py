"""Non-determinism detection: each mismatch fails the orchestration with a message that says where."""

from __future__ import annotations

from datetime import timedelta

import pytest

from durable_ext.orchestration import DurableOrchestrationContext, OrchestrationExecutor
from durable_ext.orchestration.history import OrchestrationStatus

from .history_builder import START, HistoryBuilder


def failure_message(fn, history: HistoryBuilder) -> str:
    result = OrchestrationExecutor(fn, instance_id="inst").execute(*history.split())
    assert result.status is OrchestrationStatus.Failed
    assert result.failure is not None
    assert result.failure.error_type == "NonDeterministicOrchestrationError"
    assert [type(d).__name__ for d in result.decisions] == ["ExecutionCompleted"]
    return result.failure.error_message


def calls(*names: str):
    def orch(ctx: DurableOrchestrationContext):
        for name in names:
            yield ctx.call_activity(name)
        return None

    return orch


def test_activity_renamed() -> None:
    h = HistoryBuilder().scheduled(0, "A").episode().completed(0, 1).scheduled(1, "B").episode()
    message = failure_message(calls("A", "C"), h)
    assert "history has activity 'B' at #1, the code now schedules activity 'C' there" in message
    assert message.startswith("Non-deterministic workflow detected")


def test_activity_replaced_by_a_timer() -> None:
    def orch(ctx: DurableOrchestrationContext):
        yield ctx.call_activity("A")
        yield ctx.create_timer(START + timedelta(hours=1))
        return None

    h = HistoryBuilder().scheduled(0, "A").episode().completed(0, 1).scheduled(1, "B").episode()
    message = failure_message(orch, h)
    assert (
        "history has activity 'B' at #1, the code now schedules a timer (fires 2024-01-01T01:00:00+00:00) there"
        in message
    )


def test_timer_replaced_by_an_activity() -> None:
    h = HistoryBuilder().timer(0, START + timedelta(minutes=1)).episode()
    message = failure_message(calls("A"), h)
    assert (
        "history has a timer (fires 2024-01-01T00:01:00+00:00) at #0, the code now schedules activity 'A' there"
        in message
    )


def test_code_no_longer_schedules_the_activity() -> None:
    def orch(ctx: DurableOrchestrationContext):
        yield ctx.wait_for_external_event("Go")
        return None

    h = HistoryBuilder().scheduled(0, "A").episode()
    message = failure_message(orch, h)
    assert (
        "history has activity 'A' at #0, the code now schedules nothing at #0 (it waits for a wait for event 'Go')"
        in message
    )


def test_code_completes_before_what_history_did() -> None:
    h = HistoryBuilder().scheduled(0, "A").episode().completed(0, 1).scheduled(1, "B").episode()
    message = failure_message(calls("A"), h)
    assert (
        "history has activity 'B' at #1, the code now completes the orchestration before reaching it"
        in message
    )


def test_sub_orchestration_renamed() -> None:
    def orch(ctx: DurableOrchestrationContext):
        yield ctx.call_sub_orchestrator("NewChild", instance_id="c1")
        return None

    h = HistoryBuilder().sub_created(0, "OldChild", "c1").episode()
    message = failure_message(orch, h)
    assert (
        "history has sub-orchestration 'OldChild' at #0, the code now schedules sub-orchestration 'NewChild' there"
        in message
    )


def test_actions_reordered_in_a_fan_out() -> None:
    def orch(ctx: DurableOrchestrationContext):
        yield ctx.task_all([ctx.call_activity("B"), ctx.call_activity("A")])
        return None

    h = HistoryBuilder().scheduled(0, "A").scheduled(1, "B").episode()
    message = failure_message(orch, h)
    assert "history has activity 'A' at #0, the code now schedules activity 'B' there" in message


def test_extra_action_appears_after_history_ends_is_not_an_error() -> None:
    h = HistoryBuilder().scheduled(0, "A").episode().completed(0, 1)
    result = OrchestrationExecutor(calls("A", "B"), instance_id="inst").execute(*h.split())
    assert result.status is OrchestrationStatus.Running


@pytest.mark.parametrize("name", ["a", "A"])
def test_activity_names_compare_case_insensitively(name: str) -> None:
    h = HistoryBuilder().scheduled(0, "A").episode().completed(0, 1)
    result = OrchestrationExecutor(calls(name), instance_id="inst").execute(*h.split())
    assert result.status is OrchestrationStatus.Completed
