"""The state of one execution under replay, in one object the executor owns.

Sequence ids, the tasks waiting for completions or events, the events no waiter took yet, the
suspension and the outcome. The transitions here are pure; the executor runs the orchestrator code
and calls them.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from .actions import SendEvent
from .history import EventRaised, FailureDetails, HistoryEvent, OrchestrationStatus
from .observations import Observation
from .runtime import ExecutionInfo
from .tasks import AtomicTask, EntityCallTask

__all__ = ["ReplayState"]


@dataclass(slots=True, eq=False)
class ReplayState:
    """Everything the executor knows about its execution besides the running code."""

    info: ExecutionInfo
    """What the context shows the code (identity, clock, replay flag) and the code's requests."""
    next_id: int = 0
    """The next sequence id (one counter per execution, as in DTFx)."""
    open: dict[int, AtomicTask] = field(default_factory=dict)
    """Scheduled tasks by sequence id, until their completion arrives."""
    pending: dict[int, AtomicTask] = field(default_factory=dict)
    """Scheduled tasks whose scheduling event is not in history yet (this episode's decisions)."""
    waiters: dict[str, list[AtomicTask]] = field(default_factory=dict)
    """Tasks waiting for an external event, oldest first, by event name."""
    entity_waiters: dict[str, EntityCallTask] = field(default_factory=dict)
    """Entity calls waiting for their response, by request id."""
    buffered: dict[str, deque[EventRaised]] = field(default_factory=dict)
    """External events that arrived before a live waiter, oldest first, by name."""
    status: OrchestrationStatus = OrchestrationStatus.Running
    output: str | None = None
    failure: FailureDetails | None = None
    finished: bool = False
    completion_reported: bool = False
    """Whether the final event (ExecutionCompleted, or the continue-as-new) is in history."""
    broken: bool = False
    """Replay failed non-deterministically: later events are not processed."""
    suspended: bool = False
    parked: list[tuple[HistoryEvent, bool]] = field(default_factory=list)
    """Events that arrived while suspended, with their replay flag, for the resume."""
    carried: list[EventRaised] = field(default_factory=list)
    """Events raised after the code asked to continue as new: they go to the next execution."""
    warnings: list[str] = field(default_factory=list)
    seen: list[Observation] = field(default_factory=list)
    """What happened since the last `take_decisions`, for the tracking events."""

    def take_id(self) -> int:
        """The next sequence id."""
        event_id = self.next_id
        self.next_id += 1
        return event_id

    def add_scheduled(self, task: AtomicTask) -> int:
        """Give a task the next sequence id; it is open until completed, pending until its
        scheduling event is in history."""
        event_id = self.next_id
        self.next_id = event_id + 1
        task.id = event_id
        self.open[event_id] = task
        self.pending[event_id] = task
        if isinstance(task, EntityCallTask):
            self.entity_waiters[task.request_id] = task
        return event_id

    def add_waiter(self, task: AtomicTask, name: str) -> None:
        """Queue a task waiting for the external event `name`."""
        self.waiters.setdefault(name, []).append(task)

    def take_live_waiter(self, name: str) -> AtomicTask | None:
        """Remove and return the oldest live waiter for `name`; dead ones stay queued.

        A dead waiter (every task_any/task_all it belongs to decided, not yielded itself since)
        keeps its place: the code may yield it again, and then it is live and served in turn.
        """
        waiters = self.waiters.get(name, [])
        for index, task in enumerate(waiters):
            if task._is_live():
                del waiters[index]
                return task
        return None

    def buffer(self, event: EventRaised) -> None:
        """Keep an external event for the next waiter of its name."""
        self.buffered.setdefault(event.name or "", deque()).append(event)

    def finish(
        self, status: OrchestrationStatus, output: str | None, failure: FailureDetails | None
    ) -> None:
        """The execution reached a final state (its ExecutionCompleted is still to be written)."""
        self.status = status
        self.output = output
        self.failure = failure
        self.finished = True

    def break_replay(self, output: str, failure: FailureDetails) -> None:
        """History and code disagree: fail, drop the decisions, process nothing more."""
        self.pending.clear()
        self.broken = True
        self.finish(OrchestrationStatus.Failed, output, failure)
        self.completion_reported = False

    @property
    def reported_status(self) -> OrchestrationStatus:
        """The status to store: the final one, else Suspended or Running."""
        if self.finished:
            return self.status
        return OrchestrationStatus.Suspended if self.suspended else OrchestrationStatus.Running

    def drops_decision(self, task: AtomicTask) -> bool:
        """Whether a pending decision is left out: a failed or terminated execution sends only
        its events, it starts no new work."""
        return (
            self.finished
            and self.status in (OrchestrationStatus.Failed, OrchestrationStatus.Terminated)
            and not isinstance(task.action, SendEvent)
        )

    def take_warnings(self) -> list[str]:
        warnings, self.warnings = self.warnings, []
        return warnings

    def take_seen(self) -> list[Observation]:
        seen, self.seen = self.seen, []
        return seen
