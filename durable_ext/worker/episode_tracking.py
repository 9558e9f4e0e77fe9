"""An orchestration episode's tracking events, from what its executor saw (`orchestration/observations.py`).

Emitted after the episode runs and before its checkpoint, as the extension logs them while the
orchestrator runs: `Started` (a replay event from the second episode on), what the code did in
order (scheduled, waiting, events received or saved, timers fired), then `Completed`/`Failed`, or
`Awaited` when the orchestration waits for more.
"""

from __future__ import annotations

from ..orchestration.episode import EpisodeOutcome
from ..orchestration.history import FailureDetails, OrchestrationStatus
from ..orchestration.observations import Observation, Seen
from ..tracking import FunctionType, TrackingLog

__all__ = ["track_episode"]


def track_episode(
    tracking: TrackingLog, instance_id: str, outcome: EpisodeOutcome, new_execution: bool
) -> None:
    """Log the episode's tracking events (`new_execution`: it began with ExecutionStarted)."""
    name = outcome.started.name or ""
    tracking.started(
        instance_id, name, FunctionType.Orchestrator, outcome.started.input, not new_execution
    )
    for seen in outcome.seen:
        _track(tracking, instance_id, name, seen)
    result = outcome.result
    if result.status is OrchestrationStatus.Completed:
        tracking.completed(instance_id, name, FunctionType.Orchestrator, result.output)
    elif result.status is OrchestrationStatus.Failed:
        reason = _failure_reason(tracking, result.failure, result.output)
        tracking.failed(instance_id, name, FunctionType.Orchestrator, reason)
    elif not result.status.runtime_status.is_terminal:
        tracking.awaited(instance_id, name)


def _failure_reason(
    tracking: TrackingLog, failure: FailureDetails | None, output: str | None
) -> str:
    if failure is None:
        return tracking.payload(output)
    return tracking.error(failure.error_type, failure.error_message, failure.stack_trace)


def _track(tracking: TrackingLog, instance_id: str, name: str, seen: Observation) -> None:
    replay = seen.is_replay
    kind = FunctionType(seen.function_type)
    match seen.kind:
        case Seen.SCHEDULED:
            tracking.scheduled(instance_id, seen.name, kind, name, replay)
        case Seen.LISTENING:
            tracking.listening(instance_id, name, seen.detail or "", replay)
        case Seen.EVENT_RAISED:
            tracking.event_raised(instance_id, name, seen.name, replay)
        case Seen.EVENT_SAVED:
            tracking.event_saved(instance_id, name, seen.name, replay)
        case Seen.TIMER_FIRED:
            tracking.timer_expired(instance_id, name, seen.detail or "", replay)
        case Seen.TASK_COMPLETED:
            tracking.completed(
                instance_id,
                seen.name,
                kind,
                None,
                is_replay=True,
                task_event_id=seen.task_id,
                replayed_output=True,
            )
        case Seen.TASK_FAILED:
            reason = tracking.payload(seen.detail)
            tracking.failed(
                instance_id, seen.name, kind, reason, is_replay=True, task_event_id=seen.task_id
            )
        case Seen.ENTITY_RESPONSE:
            tracking.entity_response(instance_id, name, seen.detail or "", replay)
        case Seen.CONTINUED_AS_NEW:
            tracking.completed(
                instance_id, name, FunctionType.Orchestrator, seen.detail, continued_as_new=True
            )
            tracking.started(instance_id, name, FunctionType.Orchestrator, seen.detail)
