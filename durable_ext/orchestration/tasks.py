"""Tasks that orchestrator code yields: atomic ones (activity, timer, event, sub-orchestration) and
compound ones (`task_all`, `task_any`, retries, long timers).

A task is scheduled when it is first yielded (alone or inside a compound), never when it is created:
a task that is never yielded does nothing, as in `azure-functions-durable`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any

from .actions import Action, CreateTimer

if TYPE_CHECKING:
    from .retry import RetryOptions
    from .runtime import OrchestrationRuntime

__all__ = [
    "TaskState",
    "TaskBase",
    "AtomicTask",
    "TimerTask",
    "EntityCallTask",
    "CompoundTask",
    "WhenAllTask",
    "WhenAnyTask",
    "RetryAbleTask",
    "LongTimerTask",
    "new_timer",
]


class TaskState(Enum):
    RUNNING = 0
    SUCCEEDED = 1
    FAILED = 2


class TaskBase:
    """A unit of work the orchestrator waits on.

    `result` holds the value, or the exception for a failed task (reading it never raises; yielding
    a failed task raises it).
    """

    def __init__(self, id_: int | str, actions: Action | list[Action] | None) -> None:
        self.id: int | str = id_
        self.state = TaskState.RUNNING
        self.result: Any = None
        self.is_played = False
        self.parent: CompoundTask | None = None
        self.actions = actions
        self._parents: list[CompoundTask] = []
        self._is_scheduled = False
        self._yielded = False

    @property
    def is_completed(self) -> bool:
        """True once the task succeeded or failed."""
        return self.state is not TaskState.RUNNING

    def _is_live(self) -> bool:
        """Whether the code may still wait for this task (delivery of external events asks).

        A task is live while it is running and either the code yielded it itself, or it belongs to
        no task_all/task_any, or one of the compounds it belongs to is live. So a task is dead once
        every compound it belongs to is decided (or itself dead) and the code has not yielded it
        since; yielding it again brings it back to life.
        """
        if self.is_completed:
            return False
        if self._yielded or not self._parents:
            return True
        return any(parent._is_live() for parent in self._parents)

    def change_state(self, state: TaskState) -> None:
        self.state = state

    def set_is_played(self, is_played: bool) -> None:
        self.is_played = is_played

    def set_value(self, is_error: bool, value: Any) -> None:
        """Complete the task (first completion wins) and tell the compounds that contain it."""
        if self.is_completed:
            return
        self.result = value
        self.state = TaskState.FAILED if is_error else TaskState.SUCCEEDED
        self.propagate()

    def propagate(self) -> None:
        for parent in self._parents:
            parent.handle_completion(self)

    def _add_parent(self, parent: CompoundTask) -> None:
        self._parents.append(parent)
        if self.parent is None:
            self.parent = parent


class AtomicTask(TaskBase):
    """One scheduled action: an activity, a sub-orchestration, an event wait, a sent event."""

    def __init__(
        self, id_: int | str, actions: Action | list[Action], expected_type: type | None = None
    ) -> None:
        super().__init__(id_, actions)
        self.expected_type = expected_type

    @property
    def action(self) -> Action:
        assert isinstance(self.actions, Action)
        return self.actions


class TimerTask(AtomicTask):
    """A durable timer; `cancel()` lets the orchestration finish without waiting for it."""

    def __init__(self, id_: int | str, action: CreateTimer) -> None:
        super().__init__(id_, action)
        self._is_cancelled = False

    @property
    def is_cancelled(self) -> bool:
        return self._is_cancelled

    @property
    def fire_at(self) -> datetime:
        action = self.action
        assert isinstance(action, CreateTimer)
        return action.fire_at

    def cancel(self) -> None:
        if self.is_completed:
            raise ValueError("Cannot cancel a completed task.")
        self._is_cancelled = True


class EntityCallTask(AtomicTask):
    """`call_entity`: the request sent to the entity; the response is the EventRaised named
    `request_id`."""

    def __init__(self, action: Action, request_id: str, expected_type: type | None = None) -> None:
        super().__init__(-1, action, expected_type)
        self.request_id = request_id

    def accept_response(self, payload: str | None) -> None:
        """Complete with the entity's ResponseMessage (JSON text)."""
        raise NotImplementedError


def new_timer(runtime: OrchestrationRuntime, fire_at: datetime) -> TimerTask | LongTimerTask:
    """A timer task for `fire_at` (aware UTC): one durable timer, or a chain of legs when it is
    further away than the longest single timer."""
    if fire_at - runtime.info.current_utc_datetime > runtime.options.maximum_timer_duration:
        return LongTimerTask(-1, CreateTimer(fire_at), runtime)
    return TimerTask(-1, CreateTimer(fire_at))


class CompoundTask(TaskBase):
    """A task made of child tasks."""

    def __init__(self, tasks: Sequence[TaskBase], compound_action_constructor: Any = None) -> None:
        super().__init__(-1, None)
        self.children: list[TaskBase] = list(tasks)
        self.pending_tasks: set[TaskBase] = set(self.children)
        self.completed_tasks: list[TaskBase] = []
        for child in self.children:
            child._add_parent(self)
        for child in self.children:
            if child.is_completed:
                self.handle_completion(child)
        if not self.children:
            self._complete_empty()

    def _complete_empty(self) -> None:
        raise NotImplementedError

    def handle_completion(self, child: TaskBase) -> None:
        if child in self.pending_tasks:
            self.pending_tasks.discard(child)
            self.completed_tasks.append(child)
        if not self.is_completed:
            self.is_played = child.is_played
            self.try_set_value(child)

    def try_set_value(self, child: TaskBase) -> None:
        raise NotImplementedError

    def _append_scheduled(self, child: TaskBase, runtime: OrchestrationRuntime) -> None:
        """Add a child made after the code yielded this task (a retry, a timer leg), scheduled now."""
        self.children.append(child)
        self.pending_tasks.add(child)
        child._add_parent(self)
        runtime.schedule(child)


class WhenAllTask(CompoundTask):
    """`task_all`: the list of results in input order; fails fast with the first failure."""

    def __init__(self, task: Sequence[TaskBase], replay_schema: Any = None) -> None:
        super().__init__(task)

    def _complete_empty(self) -> None:
        self.set_value(False, [])

    def try_set_value(self, child: TaskBase) -> None:
        if child.state is TaskState.FAILED:
            self.set_value(True, child.result)
        elif not self.pending_tasks and all(c.state is TaskState.SUCCEEDED for c in self.children):
            self.set_value(False, [c.result for c in self.children])


class WhenAnyTask(CompoundTask):
    """`task_any`: the first child to complete (the Task object itself, succeeded or failed)."""

    def __init__(self, task: Sequence[TaskBase], replay_schema: Any = None) -> None:
        super().__init__(task)

    def _complete_empty(self) -> None:
        self.set_value(False, None)

    def try_set_value(self, child: TaskBase) -> None:
        self.set_value(False, child)


class RetryAbleTask(WhenAllTask):
    """An activity or sub-orchestration retried per `RetryOptions`, each wait a durable timer.

    `context` is the runtime of the orchestration (the SDK's name for the parameter kept): it
    gives the time and schedules each new timer and attempt.
    """

    def __init__(
        self, child: TaskBase, retry_options: RetryOptions, context: OrchestrationRuntime
    ) -> None:
        self._retry_options = retry_options
        self._runtime = context
        self._failed_attempts = 0
        self._first_attempt_at: datetime = context.info.current_utc_datetime
        super().__init__([child])

    @property
    def id_(self) -> int | str:
        return self.children[-1].id

    def try_set_value(self, child: TaskBase) -> None:
        if isinstance(child, (TimerTask, LongTimerTask)):
            first = self.children[0]
            assert isinstance(first, AtomicTask)
            self._add_child(AtomicTask(-1, first.action, first.expected_type))
            return
        if child.state is TaskState.SUCCEEDED:
            self.set_value(False, child.result)
            return
        self._failed_attempts += 1
        now = self._runtime.info.current_utc_datetime
        delay = self._retry_options.next_delay(self._failed_attempts, self._first_attempt_at, now)
        if delay is None:
            self.set_value(True, child.result)
        else:
            self._add_child(new_timer(self._runtime, now + delay))

    def _add_child(self, child: TaskBase) -> None:
        self._append_scheduled(child, self._runtime)


class LongTimerTask(WhenAllTask):
    """A timer beyond the longest single timer: a chain of shorter legs, each a durable timer.

    `orchestration_context` is the runtime of the orchestration (the SDK's parameter name kept).
    """

    def __init__(
        self, id_: int | str, action: CreateTimer, orchestration_context: OrchestrationRuntime
    ) -> None:
        self._final_fire_at = action.fire_at
        self._runtime = orchestration_context
        self._is_cancelled = False
        now = orchestration_context.info.current_utc_datetime
        first = self.get_next_timer_task(action.fire_at, now)
        super().__init__([first])
        self.actions = action

    @property
    def fire_at(self) -> datetime:
        return self._final_fire_at

    def get_next_timer_task(self, final_fire_time: datetime, current_time: datetime) -> TimerTask:
        leg_end = min(current_time + self._runtime.options.long_timer_interval, final_fire_time)
        return TimerTask(-1, CreateTimer(leg_end))

    def add_new_child(self, child_timer: TimerTask) -> None:
        self._append_scheduled(child_timer, self._runtime)

    def try_set_value(self, child: TaskBase) -> None:
        assert isinstance(child, TimerTask)
        now = self._runtime.info.current_utc_datetime
        if now >= self._final_fire_at or child.fire_at >= self._final_fire_at:
            self.set_value(False, None)
        else:
            self.add_new_child(self.get_next_timer_task(self._final_fire_at, now))

    def cancel(self) -> None:
        if self.is_completed:
            raise ValueError("Cannot cancel a completed task.")
        self._is_cancelled = True

    def is_canceled(self) -> bool:
        return self._is_cancelled

    @property
    def is_cancelled(self) -> bool:
        return self._is_cancelled
