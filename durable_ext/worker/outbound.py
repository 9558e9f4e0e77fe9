"""Turn an episode's decisions into the messages DTFx would send (§3.3 of the storage spec)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..orchestration.episode import EpisodeOutcome
from ..orchestration.history import (
    EventRaised,
    EventSent,
    ExecutionCompleted,
    ExecutionStarted,
    FailureDetails,
    HistoryEvent,
    OrchestrationInstance,
    OrchestrationStatus,
    OrchestratorStarted,
    ParentInstance,
    SubOrchestrationInstanceCompleted,
    SubOrchestrationInstanceCreated,
    SubOrchestrationInstanceFailed,
    TaskScheduled,
    TimerCreated,
    TimerFired,
)
from ..storage.messages import MessageData

__all__ = ["Outbound", "outbound_messages", "episode_number"]

_CHILD_EXECUTION_NAMESPACE = uuid.UUID("0b3f51f4-6c2e-4a51-9b0e-2f1c7d3e8a90")


@dataclass(slots=True)
class Outbound:
    """A message and where it goes: the work-item queue or a control queue (by target instance)."""

    message: MessageData
    to_work_items: bool = False
    delay: timedelta | None = None


def episode_number(events: Iterable[HistoryEvent]) -> int:
    return sum(1 for e in events if isinstance(e, OrchestratorStarted))


def outbound_messages(
    outcome: EpisodeOutcome, now: datetime, past_episodes: int
) -> list[Outbound]:
    """Messages for every decision of the episode, plus the parent's notice on completion.

    `past_episodes`: the episodes of the execution before this one (0 for a new execution), so
    that the episode number is found from the new events alone.
    """
    started = outcome.started
    me = started.orchestration_instance or OrchestrationInstance("")
    episode = past_episodes + episode_number(outcome.events[outcome.first_new_index :])
    out: list[Outbound] = []
    trace_context = outcome.trace_context
    for item in outcome.decisions:
        decision = item.event
        sender = OrchestrationInstance(me.instance_id, item.execution_id)
        if isinstance(decision, TaskScheduled):
            decision.parent_trace_context = trace_context
            out.append(Outbound(MessageData(decision, sender, episode, sender), to_work_items=True))
        elif isinstance(decision, TimerCreated):
            fire_at = decision.fire_at or now
            fired = TimerFired(timestamp=now, timer_id=decision.event_id, fire_at=fire_at)
            out.append(Outbound(MessageData(fired, sender, episode, sender), delay=fire_at - now))
        elif isinstance(decision, SubOrchestrationInstanceCreated):
            child = OrchestrationInstance(
                decision.instance_id or "", _child_execution_id(sender, decision.event_id)
            )
            start = ExecutionStarted(
                timestamp=now,
                orchestration_instance=child,
                name=decision.name,
                version=decision.version,
                input=decision.input,
                parent_instance=ParentInstance(
                    started.name, started.version, sender, decision.event_id
                ),
                parent_trace_context=trace_context,
            )
            out.append(Outbound(MessageData(start, child, episode, sender)))
        elif isinstance(decision, EventSent):
            raised = EventRaised(
                timestamp=now,
                name=decision.name,
                input=decision.input,
                parent_trace_context=trace_context,
            )
            target = OrchestrationInstance(decision.instance_id or "")
            out.append(Outbound(MessageData(raised, target, episode, sender)))
    parent = started.parent_instance
    final = outcome.result
    if (
        parent is not None
        and outcome.executor.is_finished
        and final.status
        in (
            OrchestrationStatus.Completed,
            OrchestrationStatus.Failed,
            OrchestrationStatus.Terminated,
        )
        and any(isinstance(d.event, ExecutionCompleted) for d in outcome.decisions)
    ):
        out.append(Outbound(_parent_notice(parent, outcome, me, now, episode)))
    return out


def _child_execution_id(parent: OrchestrationInstance, event_id: int) -> str:
    """The same id every time the parent's episode (re)sends this start, so copies are duplicates."""
    seed = f"{parent.instance_id}/{parent.execution_id}/{event_id}"
    return uuid.uuid5(_CHILD_EXECUTION_NAMESPACE, seed).hex


def _parent_notice(
    parent: ParentInstance,
    outcome: EpisodeOutcome,
    me: OrchestrationInstance,
    now: datetime,
    episode: int,
) -> MessageData:
    result = outcome.result
    target = parent.orchestration_instance
    sender = OrchestrationInstance(me.instance_id, outcome.execution_id)
    if result.status is OrchestrationStatus.Completed:
        event: HistoryEvent = SubOrchestrationInstanceCompleted(
            timestamp=now, task_scheduled_id=parent.task_schedule_id, result=result.output
        )
    else:
        failure = result.failure or FailureDetails(
            "TerminatedError",
            f"Orchestrator function '{outcome.started.name}' was terminated: {result.output or ''}",
        )
        event = SubOrchestrationInstanceFailed(
            timestamp=now,
            task_scheduled_id=parent.task_schedule_id,
            reason=failure.error_message,
            failure_details=failure,
        )
    return MessageData(event, target, episode, sender)
