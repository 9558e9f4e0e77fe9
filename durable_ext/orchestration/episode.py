"""One orchestration episode: new messages in, the history to store and the decisions out.

Continue-as-new is handled here, inside the same episode as DTFx does: the finished execution is
replaced by a fresh one (new ExecutionId, the carried-over events right after its ExecutionStarted),
which runs at once. Only the newest execution's history is kept.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from .context import DurableOrchestrationContext
from .executor import ExecutionResult, OrchestrationExecutor, ReplayOptions
from .history import (
    ExecutionStarted,
    HistoryEvent,
    OrchestrationInstance,
    OrchestrationStatus,
    OrchestratorCompleted,
    OrchestratorStarted,
)
from .observations import Observation, Seen

__all__ = [
    "Decision",
    "EpisodeOutcome",
    "run_episode",
    "continue_episode",
    "MAX_GENERATIONS_PER_EPISODE",
]

MAX_GENERATIONS_PER_EPISODE = 1000


@dataclass(frozen=True, slots=True)
class Decision:
    """A decision and the execution that made it."""

    execution_id: str
    event: HistoryEvent


@dataclass(slots=True)
class EpisodeOutcome:
    """The result of an episode."""

    execution_id: str
    events: list[HistoryEvent]
    """The whole history of the current execution after the episode."""
    first_new_index: int
    """`events[first_new_index:]` are new (0 when the episode started a new execution)."""
    result: ExecutionResult
    """Status, output and custom status of the current execution."""
    decisions: list[Decision]
    """Every decision of the episode, earlier executions' included, to turn into messages."""
    started: ExecutionStarted
    executor: OrchestrationExecutor
    seen: list[Observation]
    """What the executors saw, in order, every execution of the episode included."""
    trace_context: dict[str, Any] | None = None
    """The episode's span as DTFx's `ParentTraceContext`, for the messages it sends (tracing on)."""


def _started_event(events: Sequence[HistoryEvent]) -> ExecutionStarted | None:
    for event in events:
        if isinstance(event, ExecutionStarted):
            return event
    return None


def _execution_id(started: ExecutionStarted) -> str:
    instance = started.orchestration_instance
    return (instance.execution_id or "") if instance else ""


def _played(episode: list[HistoryEvent]) -> list[HistoryEvent]:
    """The episode's inbound events as history records them once processed: `IsPlayed` true on
    all but OrchestratorStarted (DTFx `TaskOrchestrationExecutor`). Copies, so a message's event
    handed in is not changed (if the episode is abandoned, it is processed afresh)."""
    return [
        e if isinstance(e, OrchestratorStarted) else replace(e, is_played=True) for e in episode
    ]


def run_episode(
    orchestrator: Callable[[DurableOrchestrationContext], Any],
    *,
    instance_id: str,
    past_events: Sequence[HistoryEvent],
    new_events: Sequence[HistoryEvent],
    now: datetime,
    options: ReplayOptions | None = None,
    new_execution_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    refuse: tuple[str | None, BaseException] | None = None,
) -> EpisodeOutcome:
    """Replay `past_events`, apply `new_events` (ExecutionStarted first if any) at time `now`.
    With `refuse` (orchestrator name, error) the execution fails with it and no code runs."""
    executor = OrchestrationExecutor(orchestrator, instance_id=instance_id, options=options)
    if refuse is not None:
        executor.refuse(*refuse)
    executor.history += past_events
    executor.apply(past_events, replaying=True)
    return continue_episode(
        executor,
        orchestrator,
        instance_id=instance_id,
        past_events=list(past_events),
        new_events=new_events,
        now=now,
        options=options,
        new_execution_id=new_execution_id,
    )


def continue_episode(
    executor: OrchestrationExecutor,
    orchestrator: Callable[[DurableOrchestrationContext], Any],
    *,
    instance_id: str,
    past_events: list[HistoryEvent],
    new_events: Sequence[HistoryEvent],
    now: datetime,
    options: ReplayOptions | None = None,
    new_execution_id: Callable[[], str] = lambda: uuid.uuid4().hex,
) -> EpisodeOutcome:
    """Apply `new_events` to an executor that has already processed `past_events`.

    This is how the instance cache resumes an orchestration without replaying it: the executor
    kept in memory is exactly the one a full replay of `past_events` would rebuild. The episode's
    events are appended to `past_events` in place (it becomes the outcome's `events`), so an
    episode costs its new events, not a copy of the whole history.
    """
    episode = [OrchestratorStarted(timestamp=now), *new_events]
    executor.history += episode
    executor.apply(episode, replaying=False)
    result = executor.take_decisions()
    completed = OrchestratorCompleted(timestamp=now)
    executor.history += [*result.decisions, completed]
    events = past_events
    first_new = len(events)
    events += _played(episode)
    events += result.decisions
    events.append(completed)
    started = _started_event(events)
    if started is None:
        raise ValueError(f"instance {instance_id!r} has no ExecutionStarted event")
    decisions = [Decision(_execution_id(started), e) for e in result.decisions]
    seen = result.seen
    generations = 0
    while result.status is OrchestrationStatus.ContinuedAsNew:
        generations += 1
        if generations > MAX_GENERATIONS_PER_EPISODE:
            raise RuntimeError(
                f"instance {instance_id!r} called continue_as_new {MAX_GENERATIONS_PER_EPISODE} "
                "times in one episode without waiting for anything"
            )
        previous = started.orchestration_instance or OrchestrationInstance(instance_id)
        started = replace(
            started,
            event_id=-1,
            timestamp=now,
            is_played=False,
            orchestration_instance=OrchestrationInstance(previous.instance_id, new_execution_id()),
            input=result.continue_as_new_input,
        )
        seen.append(Observation(Seen.CONTINUED_AS_NEW, False, detail=result.continue_as_new_input))
        carried = [replace(e, is_played=False) for e in result.carried_events]
        episode = [OrchestratorStarted(timestamp=now), started, *carried]
        executor = OrchestrationExecutor(orchestrator, instance_id=instance_id, options=options)
        result = executor.execute([], episode)
        completed = OrchestratorCompleted(timestamp=now)
        executor.history.append(completed)
        events = [*_played(episode), *result.decisions, completed]
        first_new = 0
        decisions.extend(Decision(_execution_id(started), e) for e in result.decisions)
        seen += result.seen
    return EpisodeOutcome(
        execution_id=_execution_id(started),
        events=events,
        first_new_index=first_new,
        result=result,
        decisions=decisions,
        started=started,
        executor=executor,
        seen=seen,
    )
