"""The chaos driver's invariants, checked instance by instance on the raw History and Instances
rows (read with the Azure SDK by the DTFx layout, not through `durable_ext`), the activity log and
what the driver observed while the run went on.

`audit_instance` returns the violations of one instance by invariant, and how many times each of
its activity tasks ran and each of its external events was recorded and applied; `invariants()`
lists the invariants in report order; `KNOWN_BUGS` are the durable_ext defects this driver found, by
the violations they caused (the report names them if they ever come back).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tests.reliability.chaos_app import APPROVAL_EVENT, RECEIVED

if TYPE_CHECKING:
    from tests.reliability.chaos import Planned

__all__ = [
    "KNOWN_BUGS",
    "InvariantResult",
    "InstanceAudit",
    "invariants",
    "explain",
    "audit_instance",
    "clock_violations",
    "raised_event",
]

KNOWN_BUGS: dict[str, str] = {
    "stale-start-restarts": (
        "A finished instance was started over by a stale ExecutionStarted message: the dispatcher "
        "took any ExecutionStarted for another execution of a finished instance as a new start. "
        "Two ordinary paths produce one: a sub-orchestration's start message got a fresh random "
        "execution id each time its parent's episode sent it, so a retried parent checkpoint (a "
        "crash after the outbound send, a zombie fenced by the sentinel) re-ran finished children; "
        "and the first ExecutionStarted of a continue-as-new instance, redelivered after a crash "
        "before the inbound delete, restarted the completed instance from generation 0. Fixed by "
        "deterministic child execution ids (`outbound._child_execution_id`) and by vetting starts of "
        "finished instances against the Instances row (`triage.decide_restarts`); "
        "regression tests in tests/reliability/test_stale_starts.py."
    ),
    "pending-row-after-crash": (
        "An instance's Instances row stayed Pending while it ran: a worker that died between the "
        "history write and the Instances merge of the first checkpoint left it Pending, and the "
        "redelivered ExecutionStarted was dropped as a duplicate without repairing the row, so an "
        "orchestration waiting for an external event reported Pending until the event came. Fixed "
        "by `instance_repair.repair_started_row`; regression test in "
        "tests/reliability/test_stale_starts.py."
    ),
}
"""Defects in durable_ext that this driver found. A violation they would explain is still reported
with the id (so a regression is recognised at once), but it counts as a violation all the same."""

_SPECS = (
    (
        "terminal",
        "Every instance reached its expected terminal state (Completed) with the expected output "
        "(Instances row).",
    ),
    (
        "one-completion",
        "Exactly one ExecutionCompleted in the instance's current execution, with status Completed "
        "and the expected result.",
    ),
    (
        "history-whole",
        "History has one sentinel (checkpoint complete), RowKeys 0..n-1 without gap or duplicate, "
        "the sentinel's execution from RowKey 0 (rows after it only of older executions, which "
        "readers never reach), one ExecutionStarted.",
    ),
    (
        "decisions-once",
        "No TaskScheduled, SubOrchestrationInstanceCreated or TimerCreated recorded twice; every "
        "response answers a decision; every decision is answered; no failure.",
    ),
    (
        "activities-ran",
        "Every activity the history shows completed ran at least once (the activity log), and so "
        "did every activity of a completed instance's earlier generations (continue-as-new).",
    ),
    (
        "activities-once",
        "Every activity task of the workload ran exactly once (the activity log): no fault, so a "
        "held work item must never become visible again while its activity waits, runs or its "
        "result waits for the orchestration.",
    ),
    (
        "events-once",
        "Every external event the driver raised is in the instance's history exactly once and was "
        "received by the orchestration exactly once (its output lists what it received), and "
        "nothing else was; an event whose control-queue message the driver copied on purpose (or "
        "whose raise it retried) may appear once per copy.",
    ),
    (
        "instances-agree",
        "The Instances row agrees with History: execution id, status, output.",
    ),
    (
        "no-rerun",
        "Nothing ran again after it finished: each instance ran under one start message (the "
        "orchestrators log the execution id they begin under), and its Instances row keeps the "
        "execution id and completion time first observed.",
    ),
    (
        "status-current",
        "While an instance runs, its Instances row leaves Pending once its History has started, "
        "within a partition takeover (lease, visibility timeout and 15 s) of the driver seeing "
        "the History started: a worker frozen or killed between its history write and its "
        "Instances merge leaves the row to the next owner (checked on the approvals, which wait "
        "for the driver with nothing in flight).",
    ),
    (
        "clock-monotonic",
        "The orchestration clock never went backwards (OrchestratorStarted timestamps, in history "
        "order) and no timer woke its orchestration before its FireAt, although the workers' "
        "clocks disagree by up to 20 minutes and jump when a partition moves.",
    ),
    (
        "queues-drained",
        "No message is left in any queue at the end except the poison message.",
    ),
    (
        "poison-isolated",
        "The poison message did not block its partition: every instance on it completed.",
    ),
)


@dataclass(slots=True)
class InvariantResult:
    """One invariant: on how many instances (or queues) it was checked, and what violated it."""

    name: str
    description: str
    checked: int = 0
    violations: list[str] = field(default_factory=list)
    known_bug: str | None = None
    """Set when every violation is explained by an entry of KNOWN_BUGS."""

    @property
    def held(self) -> bool:
        return not self.violations


NO_FAULT_ONLY = frozenset({"activities-once"})
"""Invariants checked only in the no-fault phase (with faults, activities are at-least-once)."""


def invariants(no_fault: bool = False, poison: bool = True) -> dict[str, InvariantResult]:
    """A fresh result for every invariant of a phase, by name, in report order: `activities-once`
    only without faults, `poison-isolated` only with a poison message."""
    return {
        name: InvariantResult(name, description)
        for name, description in _SPECS
        if (no_fault or name not in NO_FAULT_ONLY) and (poison or name != "poison-isolated")
    }


def explain(invariant: InvariantResult, kinds: Mapping[str, str]) -> None:
    """Attribute the violations to a known bug when that bug explains every one of them.

    `kinds` maps instance ids to their workload kind. Re-runs of continue-as-new instances and of
    sub-orchestrations are `stale-start-restarts`; re-runs of anything else are not explained.
    A row found Pending while History runs is `pending-row-after-crash`."""
    if invariant.held:
        return
    if invariant.name == "status-current":
        invariant.known_bug = "pending-row-after-crash"
    if invariant.name == "no-rerun":
        ids = [v.split(":", 1)[0] for v in invariant.violations]
        if all(kinds.get(i) in ("eternal", "fan-child") for i in ids):
            invariant.known_bug = "stale-start-restarts"


@dataclass(slots=True)
class InstanceAudit:
    """What `audit_instance` found for one instance."""

    violations: dict[str, list[str]] = field(default_factory=dict)
    checked: dict[str, int] = field(default_factory=dict)
    """On how many items an invariant was checked, where that is not this one instance."""
    duplicate_responses: int = 0
    duplicate_events: int = 0
    activity_runs: Counter[int] = field(default_factory=Counter)
    """Executions per activity task of the workload → number of such tasks."""
    events_recorded: Counter[int] = field(default_factory=Counter)
    """EventRaised rows per raised event → number of such events."""
    events_applied: Counter[int] = field(default_factory=Counter)
    """Deliveries to the orchestration per raised event → number of such events."""

    def fail(self, invariant: str, instance_id: str, detail: str) -> None:
        self.violations.setdefault(invariant, []).append(f"{instance_id}: {detail}")


def _json(text: Any) -> Any:
    try:
        return json.loads(text) if isinstance(text, str) else text
    except ValueError:
        return text


def _outcome(output: Any) -> Any:
    """An output as the workload plans it: an approval's `received` log is checked on its own
    (`events-once`), since its order depends on delivery."""
    if isinstance(output, dict) and RECEIVED in output:
        return {key: value for key, value in output.items() if key != RECEIVED}
    return output


def audit_instance(
    planned: Planned,
    rows: list[dict[str, Any]],
    instance: dict[str, Any] | None,
    runs: Counter[str],
    executions: set[str],
    first_seen: tuple[str | None, datetime | None] | None,
    event_copies: Mapping[int, int] | None = None,
    no_fault: bool = False,
) -> InstanceAudit:
    """Check one instance.

    `rows` are its History rows, `instance` its Instances row, `runs` the activity executions by
    key, `executions` the execution ids its orchestrator logged beginning generation 0 under (the
    ids of the start messages it ran), `first_seen` the (execution id, CompletedTime) of its
    Instances row when the driver first saw it finished, `event_copies` how many extra copies of
    each of its external events (by value) the driver may have sent (copied messages, retried
    raises), and `no_fault` says the instance ran without faults (`activities-once`)."""
    audit = InstanceAudit()
    audit.checked["events-once"] = planned.events
    iid = planned.instance_id
    expected = planned.expected

    if len(executions) != 1:
        audit.fail("no-rerun", iid, f"began under {len(executions)} start messages")
    if instance is None:
        audit.fail("terminal", iid, "no Instances row")
        audit.fail("instances-agree", iid, "no Instances row")
    else:
        status = instance.get("RuntimeStatus")
        output = _json(instance.get("Output"))
        completed = instance.get("CompletedTime")
        if status != "Completed" or _outcome(output) != expected:
            audit.fail(
                "terminal", iid, f"status {status}, output {output!r}, expected {expected!r}"
            )
        if first_seen is not None and first_seen != (instance.get("ExecutionId"), completed):
            audit.fail(
                "no-rerun",
                iid,
                f"finished as execution {first_seen[0]} at {first_seen[1]}, later as "
                f"{instance.get('ExecutionId')} at {completed}",
            )

    _audit_activities(audit, planned, runs, rows, no_fault)
    sentinels = [r for r in rows if r["RowKey"] == "sentinel"]
    if len(sentinels) != 1:
        audit.fail("history-whole", iid, f"{len(sentinels)} sentinel rows")
        return audit
    sentinel = sentinels[0]
    execution_id = sentinel.get("ExecutionId")
    if sentinel.get("IsCheckpointComplete") is not True:
        audit.fail("history-whole", iid, "sentinel: checkpoint not complete")
    ordered = sorted((r for r in rows if r["RowKey"] != "sentinel"), key=lambda r: r["RowKey"])
    keys = [r["RowKey"] for r in ordered]
    if keys != [f"{i:016X}" for i in range(len(ordered))]:
        audit.fail("history-whole", iid, f"RowKeys are not 0..{len(ordered) - 1}: {keys}")
    events = [r for r in ordered if r.get("ExecutionId") == execution_id]
    if ordered[: len(events)] != events:
        stale = [
            r["RowKey"] for r in ordered[: len(events)] if r.get("ExecutionId") != execution_id
        ]
        audit.fail("history-whole", iid, f"rows of another execution among its own: {stale}")

    def of_type(name: str) -> list[dict[str, Any]]:
        return [r for r in events if r.get("EventType") == name]

    if len(of_type("ExecutionStarted")) != 1:
        audit.fail("history-whole", iid, f"{len(of_type('ExecutionStarted'))} ExecutionStarted")
    completions = of_type("ExecutionCompleted")
    if len(completions) != 1:
        rows_at = [r["RowKey"] for r in completions]
        audit.fail("one-completion", iid, f"{len(completions)} ExecutionCompleted rows {rows_at}")
    elif (
        completions[0].get("OrchestrationStatus") != "Completed"
        or _outcome(_json(completions[0].get("Result"))) != expected
    ):
        last = completions[0]
        audit.fail(
            "one-completion",
            iid,
            f"{last.get('OrchestrationStatus')} with {last.get('Result')!r}",
        )
    if instance is not None:
        last_completion = completions[-1] if completions else {}
        if (
            instance.get("ExecutionId") != execution_id
            or instance.get("RuntimeStatus") != last_completion.get("OrchestrationStatus")
            or _json(instance.get("Output")) != _json(last_completion.get("Result"))
        ):
            audit.fail(
                "instances-agree",
                iid,
                f"Instances {instance.get('ExecutionId')}/{instance.get('RuntimeStatus')} vs "
                f"History {execution_id}/{last_completion.get('OrchestrationStatus')}",
            )

    def decisions(kind: str) -> dict[int, dict[str, Any]]:
        by_id: dict[int, dict[str, Any]] = {}
        for row in of_type(kind):
            event_id = int(row["EventId"])
            if event_id in by_id:
                audit.fail("decisions-once", iid, f"{kind} #{event_id} recorded twice")
            by_id[event_id] = row
        return by_id

    answers = (
        ("TaskCompleted", decisions("TaskScheduled"), "TaskScheduledId"),
        (
            "SubOrchestrationInstanceCompleted",
            decisions("SubOrchestrationInstanceCreated"),
            "TaskScheduledId",
        ),
        ("TimerFired", decisions("TimerCreated"), "TimerId"),
    )
    for response, scheduled, column in answers:
        answered: set[int] = set()
        for row in of_type(response):
            target = int(row[column])
            if target not in scheduled:
                audit.fail("decisions-once", iid, f"{response} for unknown #{target}")
                continue
            if target in answered:
                audit.duplicate_responses += 1
            answered.add(target)
        if answered != set(scheduled):
            missing = sorted(set(scheduled) - answered)
            audit.fail("decisions-once", iid, f"no {response} for {missing}")
    for failed in ("TaskFailed", "SubOrchestrationInstanceFailed"):
        if of_type(failed):
            audit.fail("decisions-once", iid, f"{len(of_type(failed))} {failed}")
    if planned.events:
        audit.duplicate_events += max(len(of_type("EventRaised")) - planned.events, 0)
        result = _json(completions[0].get("Result")) if len(completions) == 1 else None
        received = result.get(RECEIVED) if isinstance(result, dict) else None
        _audit_events(audit, planned, of_type("EventRaised"), received, event_copies or {})
    for violation in clock_violations(events):
        audit.fail("clock-monotonic", iid, violation)
    return audit


def _audit_activities(
    audit: InstanceAudit,
    planned: Planned,
    runs: Counter[str],
    rows: list[dict[str, Any]],
    no_fault: bool,
) -> None:
    """Count the executions of each of the instance's planned activity tasks: exactly one each
    without faults (`activities-once`), at least one once the instance has completed
    (`activities-ran`, which also covers the generations continue-as-new dropped from history)."""
    iid = planned.instance_id
    keys = {
        int(r["EventId"]): (_json(r.get("Input")) or {}).get("key")
        for r in rows
        if r.get("EventType") == "TaskScheduled"
    }
    done = {
        keys.get(int(r["TaskScheduledId"])) for r in rows if r.get("EventType") == "TaskCompleted"
    }
    if any(r.get("EventType") == "ExecutionCompleted" for r in rows):
        done |= planned.activity_keys
    for key in sorted(k for k in done if k is not None and runs[k] == 0):
        audit.fail("activities-ran", iid, f"{key} completed but never ran")
    if no_fault:
        audit.checked["activities-once"] = len(planned.activity_keys)
    for key in sorted(planned.activity_keys):
        count = runs[key]
        audit.activity_runs[count] += 1
        if no_fault and count != 1:
            audit.fail("activities-once", iid, f"activity {key} ran {count} times")


def _audit_events(
    audit: InstanceAudit,
    planned: Planned,
    raised_rows: list[dict[str, Any]],
    received: list[Any] | None,
    copies: Mapping[int, int],
) -> None:
    """Each event value `0..planned.events-1` was raised once (plus `copies[value]` extra copies
    at most): it must be in history and received by the orchestration once, or at most once per
    copy; a value never raised must not be there at all. `received` is None while the instance has
    no completion (then `terminal` says so)."""
    iid = planned.instance_id
    recorded = Counter(
        _json(r.get("Input")) for r in raised_rows if r.get("Name") == APPROVAL_EVENT
    )
    applied = Counter(received or [])
    for value in range(planned.events):
        extra = copies.get(value, 0)
        in_history = recorded.pop(value, 0)
        audit.events_recorded[in_history] += 1
        why = f" ({extra} extra copies sent)" if extra else ""
        if not 1 <= in_history <= 1 + extra:
            audit.fail("events-once", iid, f"event {value} is in history {in_history} times{why}")
        if received is None:
            continue
        delivered = applied.pop(value, 0)
        audit.events_applied[delivered] += 1
        if not 1 <= delivered <= min(in_history, 1 + extra):
            audit.fail(
                "events-once",
                iid,
                f"event {value} received {delivered} times, in history {in_history} times{why}",
            )
    others = sorted(recorded.elements(), key=repr) + sorted(applied.elements(), key=repr)
    if others:
        audit.fail("events-once", iid, f"events never raised in history or output: {others}")
    unnamed = [r["RowKey"] for r in raised_rows if r.get("Name") != APPROVAL_EVENT]
    if unnamed:
        audit.fail("events-once", iid, f"EventRaised rows of another name: {unnamed}")


def raised_event(body: str, name: str) -> tuple[str, Any] | None:
    """(instance id, value) when a control-queue message body (DTFx JSON) raises the event `name`;
    None for anything else (another event, a large-message wrapper, a body that is not JSON)."""
    message = _json(body)
    task = message.get("TaskMessage") if isinstance(message, dict) else None
    if not isinstance(task, dict):
        return None
    event = task.get("Event")
    if not isinstance(event, dict) or event.get("Name") != name:
        return None
    if not str(event.get("$type", "")).endswith(".EventRaisedEvent"):
        return None
    target = task.get("OrchestrationInstance") or {}
    return str(target.get("InstanceId")), _json(event.get("Input"))


def clock_violations(rows: list[dict[str, Any]]) -> list[str]:
    """Where the orchestration clock of these History rows (one execution, in RowKey order) went
    backwards or showed a timer firing early: `current_utc_datetime` is the `_Timestamp` of the
    episode's OrchestratorStarted, and the TimerFired rows of that episode must not be due later.
    Rows without the columns (hand-built histories) are skipped."""
    found: list[str] = []
    clock: datetime | None = None
    for row in rows:
        kind = row.get("EventType")
        at = row.get("_Timestamp")
        if kind == "OrchestratorStarted" and isinstance(at, datetime):
            if clock is not None and at < clock:
                found.append(f"row {row['RowKey']}: clock went back from {clock} to {at}")
            clock = at
        elif kind == "TimerFired" and clock is not None:
            fire_at = row.get("FireAt")
            if isinstance(fire_at, datetime) and clock < fire_at:
                found.append(
                    f"row {row['RowKey']}: timer #{row.get('TimerId')} due at {fire_at} woke the "
                    f"orchestration at {clock}"
                )
    return found
