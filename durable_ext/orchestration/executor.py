"""The replay executor: runs orchestrator code over its history with DTFx semantics.

Feed it the past events (replayed, `is_replaying` true) and the new events of an episode; it returns
the episode's decisions as new history events (TaskScheduled, TimerCreated,
SubOrchestrationInstanceCreated, EventSent, then ExecutionCompleted when the code finished) and the
instance's status. No I/O: the worker turns decisions into messages and rows.

Rules, as in DTFx: one sequence-id counter per execution; a scheduling event in history must meet an
action the code produced under the same id, of the same kind and name, or the orchestration fails as
non-deterministic; completions find their task by TaskScheduledId / TimerId and duplicates are
ignored; OrchestratorStarted drives `current_utc_datetime`. An EventRaised goes to the oldest live
waiter of its name (`TaskBase._is_live`), otherwise it is buffered for the next waiter to become live.
"""

from __future__ import annotations

import inspect
import uuid
from collections import deque
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from . import codec
from .actions import (
    CreateSubOrchestration,
    SendEvent,
    WaitForEvent,
    describe_scheduling_event,
)
from .context import DurableOrchestrationContext
from .errors import NonDeterministicOrchestrationError, OrchestratorUsageError, TaskFailedError
from .failures import orchestration_failure, orchestration_failure_text
from .history import (
    ContinueAsNew,
    EventRaised,
    EventSent,
    ExecutionCompleted,
    ExecutionResumed,
    ExecutionStarted,
    ExecutionSuspended,
    ExecutionTerminated,
    FailureDetails,
    HistoryEvent,
    OrchestrationStatus,
    OrchestratorStarted,
    SubOrchestrationInstanceCompleted,
    SubOrchestrationInstanceCreated,
    SubOrchestrationInstanceFailed,
    TaskCompleted,
    TaskFailed,
    TaskScheduled,
    TimerCreated,
    TimerFired,
)
from .tasks import AtomicTask, CompoundTask, TaskBase, TaskState

__all__ = ["OrchestrationExecutor", "ExecutionResult", "ReplayOptions"]

_SUB_ORCHESTRATION_NAMESPACE = uuid.UUID("5d9f4a0c-2a4e-4f0b-9a57-8d1d3c1b6e21")


@dataclass(slots=True)
class ReplayOptions:
    """Engine settings that shape decisions."""

    maximum_timer_duration: timedelta = timedelta(days=6)
    long_timer_interval: timedelta = timedelta(days=3)
    input_type: type | None = None


@dataclass(slots=True)
class ExecutionResult:
    """What one episode decided."""

    decisions: list[HistoryEvent]
    status: OrchestrationStatus
    output: str | None = None
    failure: FailureDetails | None = None
    custom_status: str | None = None
    continue_as_new_input: str | None = None
    carried_events: list[EventRaised] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class _Done(Exception):
    """Internal: the orchestration reached a final state in this episode."""


class OrchestrationExecutor:
    """Replays one execution of an orchestrator function."""

    def __init__(
        self,
        orchestrator: Callable[[DurableOrchestrationContext], Any],
        *,
        instance_id: str,
        options: ReplayOptions | None = None,
    ) -> None:
        self._fn = orchestrator
        self._options = options or ReplayOptions()
        ctx = DurableOrchestrationContext(instanceId=instance_id)
        ctx._executor = self
        ctx._input_type = self._options.input_type
        ctx._max_short_timer = self._options.maximum_timer_duration
        ctx._long_timer_interval = self._options.long_timer_interval
        self.context = ctx
        self._next_id = 0
        self._open: dict[int, AtomicTask] = {}
        self._pending: dict[int, AtomicTask] = {}
        self._waiters: dict[str, list[AtomicTask]] = {}
        self._entity_waiters: dict[str, AtomicTask] = {}
        self._buffered: dict[str, deque[EventRaised]] = {}
        self._generator: Generator[Any, Any, Any] | None = None
        self._awaited: TaskBase | None = None
        self._status = OrchestrationStatus.Running
        self._output: str | None = None
        self._failure: FailureDetails | None = None
        self._finished = False
        self._completion_reported = False
        self._suspended = False
        self._parked: list[tuple[HistoryEvent, bool]] = []
        self._carried: list[EventRaised] = []
        self._warnings: list[str] = []
        self._broken = False

    # -- public -----------------------------------------------------------------------------
    def execute(
        self, past_events: Iterable[HistoryEvent], new_events: Iterable[HistoryEvent]
    ) -> ExecutionResult:
        """Replay `past_events`, apply `new_events`, and return this episode's decisions."""
        self.apply(past_events, replaying=True)
        self.apply(new_events, replaying=False)
        return self.take_decisions()

    def apply(self, events: Iterable[HistoryEvent], *, replaying: bool) -> None:
        """Process events in order (stops early once the code failed non-deterministically)."""
        for event in events:
            if self._broken:
                return
            self._process(event, replaying)

    def take_decisions(self) -> ExecutionResult:
        """Decisions not yet in history, in sequence order; marks them as written."""
        decisions: list[HistoryEvent] = []
        now = self.context.current_utc_datetime
        if not self._suspended or self._finished:
            for event_id in sorted(self._pending):
                task = self._pending[event_id]
                if (
                    self._finished
                    and self._status in (OrchestrationStatus.Failed, OrchestrationStatus.Terminated)
                    and not isinstance(task.action, SendEvent)
                ):
                    continue
                decisions.append(task.action.to_event(event_id, now))
            self._pending.clear()
        if self._finished and not self._completion_reported:
            self._completion_reported = True
            if self._status is not OrchestrationStatus.ContinuedAsNew:
                decisions.append(
                    ExecutionCompleted(
                        event_id=self._take_id(),
                        timestamp=now,
                        orchestration_status=self._status,
                        result=self._output,
                        failure_details=self._failure,
                    )
                )
        status = self._status
        if not self._finished:
            status = (
                OrchestrationStatus.Suspended if self._suspended else OrchestrationStatus.Running
            )
        warnings, self._warnings = self._warnings, []
        return ExecutionResult(
            decisions=decisions,
            status=status,
            output=self._output,
            failure=self._failure,
            custom_status=self.context._custom_status_json,
            continue_as_new_input=self.context._continue_as_new_input
            if status is OrchestrationStatus.ContinuedAsNew
            else None,
            carried_events=list(self._carried),
            warnings=warnings,
        )

    @property
    def is_finished(self) -> bool:
        return self._finished

    # -- scheduling (called by the context and compound tasks) ---------------------------------
    def schedule(self, task: TaskBase) -> None:
        """Assign sequence ids to a newly yielded task (children of compounds in list order)."""
        if task._is_scheduled:
            return
        task._is_scheduled = True
        if isinstance(task, CompoundTask):
            for child in list(task.children):
                self.schedule(child)
            return
        assert isinstance(task, AtomicTask)
        action = task.action
        if isinstance(action, WaitForEvent):
            self._register_waiter(task, action.name)
            return
        event_id = self._take_id()
        task.id = event_id
        if isinstance(action, CreateSubOrchestration) and not action.instance_id:
            action.instance_id = self._default_child_id(event_id)
        self._open[event_id] = task
        self._pending[event_id] = task
        request_id = getattr(task, "_entity_request_id", None)
        if request_id is not None:
            self._entity_waiters[request_id] = task

    def _take_id(self) -> int:
        event_id = self._next_id
        self._next_id += 1
        return event_id

    def _default_child_id(self, event_id: int) -> str:
        seed = f"{self.context.instance_id}/{self.context.execution_id}/{event_id}"
        return uuid.uuid5(_SUB_ORCHESTRATION_NAMESPACE, seed).hex

    def _register_waiter(self, task: AtomicTask, name: str) -> None:
        """Queue a new waiter; `_step` hands it a buffered event once the yield is scheduled."""
        self._waiters.setdefault(name, []).append(task)

    def _take_live_waiter(self, name: str) -> AtomicTask | None:
        """Remove and return the oldest live waiter for `name`; dead ones stay queued.

        A dead waiter (every task_any/task_all it belongs to decided, not yielded itself since)
        keeps its place: the code may yield it again, and then it is live and served in turn.
        """
        waiters = self._waiters.get(name, [])
        for index, task in enumerate(waiters):
            if task._is_live():
                del waiters[index]
                return task
        return None

    def _feed_buffered(self) -> None:
        """Hand buffered events, oldest first, to waiters the last yield made live."""
        for name in list(self._buffered):
            events = self._buffered[name]
            while events and (task := self._take_live_waiter(name)) is not None:
                event = events.popleft()
                self._deliver(task, event.input, event.is_played)
            if not events:
                del self._buffered[name]

    # -- event processing --------------------------------------------------------------------
    def _process(self, event: HistoryEvent, replaying: bool) -> None:
        ctx = self.context
        ctx._is_replaying = replaying
        event.is_played = replaying or event.is_played
        if self._suspended and not isinstance(event, ExecutionResumed | ExecutionTerminated):
            self._parked.append((event, replaying))
            return
        kind = type(event)
        if kind is OrchestratorStarted:
            if event.timestamp > ctx._current_utc_datetime:
                ctx._current_utc_datetime = event.timestamp
        elif (
            kind is TaskScheduled
            or kind is TimerCreated
            or kind is SubOrchestrationInstanceCreated
            or kind is EventSent
        ):
            self._match(event)
        elif kind is TaskCompleted or kind is SubOrchestrationInstanceCompleted:
            self._complete(event.task_scheduled_id, event.result, None, replaying)  # type: ignore[attr-defined]
        elif kind is TaskFailed or kind is SubOrchestrationInstanceFailed:
            self._complete(event.task_scheduled_id, None, event, replaying)  # type: ignore[attr-defined]
        elif kind is TimerFired:
            self._complete(event.timer_id, None, None, replaying)  # type: ignore[attr-defined]
        elif kind is EventRaised:
            self._on_event_raised(event)  # type: ignore[arg-type]
        elif kind is ExecutionStarted:
            self._start(event)  # type: ignore[arg-type]
        elif kind is ExecutionTerminated:
            if not self._finished:
                self._finish(OrchestrationStatus.Terminated, event.input, None)  # type: ignore[attr-defined]
        elif kind is ExecutionSuspended:
            if not self._finished:
                self._suspended = True
        elif kind is ExecutionResumed:
            self._suspended = False
            parked, self._parked = self._parked, []
            for parked_event, parked_replaying in parked:
                self._process(parked_event, parked_replaying)
        elif kind is ExecutionCompleted or kind is ContinueAsNew:
            self._completion_reported = True

    def _match(self, event: HistoryEvent) -> None:
        task = self._pending.pop(event.event_id, None)
        if task is not None and task.action.matches(event):
            return
        history = f"{describe_scheduling_event(event)} at #{event.event_id}"
        if task is not None:
            code = f"the code now schedules {task.action.describe()} there"
        elif self._finished:
            code = "the code now completes the orchestration before reaching it"
        elif self._pending:
            first = min(self._pending)
            code = (
                f"the code now schedules nothing at #{event.event_id} "
                f"(its next action is {self._pending[first].action.describe()} at #{first})"
            )
        else:
            code = f"the code now schedules nothing at #{event.event_id} ({self._waiting_on()})"
        self._fail_nondeterministic(f"history has {history}, {code}.")

    def _waiting_on(self) -> str:
        awaited = self._awaited
        if isinstance(awaited, AtomicTask):
            return f"it waits for {awaited.action.describe()}"
        if awaited is not None:
            return "it waits for a task_all/task_any"
        return "it is not waiting for anything"

    def _fail_nondeterministic(self, message: str) -> None:
        error = NonDeterministicOrchestrationError(
            f"Non-deterministic workflow detected: {message} Was a change made to the orchestrator "
            "code after this instance had already started running?"
        )
        self._pending.clear()
        self._broken = True
        self._status = OrchestrationStatus.Failed
        self._output = codec.encode(orchestration_failure_text(self.context.name, str(error)))
        self._failure = FailureDetails(type(error).__name__, str(error))
        self._finished = True
        self._completion_reported = False
        self._generator = None

    def _complete(
        self, task_id: int, result: str | None, failure: HistoryEvent | None, replaying: bool
    ) -> None:
        task = self._open.pop(task_id, None)
        if task is None or task.is_completed:
            self._warnings.append(f"Ignored a duplicate or unknown completion for task #{task_id}")
            return
        task.is_played = replaying
        if failure is not None:
            task.set_value(True, self._task_error(task, failure))
        else:
            try:
                value = codec.decode(result, task.expected_type)
            except Exception as exc:  # noqa: BLE001 - surfaced to the orchestrator code
                task.set_value(True, exc)
            else:
                task.set_value(False, value)
        self._drive()

    @staticmethod
    def _task_error(task: AtomicTask, event: HistoryEvent) -> TaskFailedError:
        details: FailureDetails | None = getattr(event, "failure_details", None)
        reason: str | None = getattr(event, "reason", None)
        if details is None:
            details = FailureDetails(
                "Exception", reason or "unknown error", getattr(event, "details", None)
            )
        kind = "Orchestrator" if isinstance(event, SubOrchestrationInstanceFailed) else "Activity"
        name = getattr(task.action, "name", "?")
        message = (
            reason
            if reason and reason.startswith(f"{kind} function")
            else (f"{kind} function '{name}' failed: {details.error_message}")
        )
        return TaskFailedError(message, details)

    def _on_event_raised(self, event: EventRaised) -> None:
        if self.context.will_continue_as_new:
            self._carried.append(event)
            return
        name = event.name or ""
        entity_task = self._entity_waiters.pop(name, None)
        if entity_task is not None:
            self._deliver_entity_response(entity_task, event)
            return
        task = self._take_live_waiter(name)
        if task is not None:
            self._deliver(task, event.input, event.is_played)
        else:
            self._buffered.setdefault(name, deque()).append(event)

    def _deliver(self, task: AtomicTask, payload: str | None, played: bool) -> None:
        task.is_played = played
        try:
            value = codec.decode(payload, task.expected_type)
        except Exception as exc:  # noqa: BLE001 - surfaced to the orchestrator code
            task.set_value(True, exc)
        else:
            task.set_value(False, value)
        self._drive()

    def _deliver_entity_response(self, task: AtomicTask, event: EventRaised) -> None:
        response = codec.decode(event.input) or {}
        task.is_played = event.is_played
        if response.get("exceptionType"):
            task.set_value(
                True, Exception(codec.decode(response.get("result")) or response["exceptionType"])
            )
        else:
            task.set_value(False, codec.decode(response.get("result"), task.expected_type))
        self._open.pop(task.id, None)  # type: ignore[arg-type]
        self._drive()

    # -- running user code -------------------------------------------------------------------
    def _start(self, event: ExecutionStarted) -> None:
        ctx = self.context
        if self._generator is not None or self._finished:
            self._warnings.append("Ignored a second ExecutionStarted event")
            return
        instance = event.orchestration_instance
        if instance is not None:
            ctx._instance_id = instance.instance_id or ctx._instance_id
            ctx._execution_id = instance.execution_id
        if event.parent_instance is not None:
            ctx._parent_instance_id = event.parent_instance.orchestration_instance.instance_id
        ctx._name = event.name
        ctx._version = event.version
        ctx._input = event.input
        try:
            result = self._fn(ctx)
        except Exception as exc:  # noqa: BLE001 - the orchestrator's own failure
            self._fail(exc)
            return
        if inspect.isgenerator(result):
            self._generator = result
            self._step(None, None)
            self._drive()
        elif inspect.iscoroutine(result) or inspect.isasyncgen(result):
            if inspect.iscoroutine(result):
                result.close()
            self._fail(
                OrchestratorUsageError(
                    "Orchestrator functions must be generator functions (def with yield), not async def."
                )
            )
        elif ctx.will_continue_as_new:
            self._finish(OrchestrationStatus.ContinuedAsNew, None, None)
        else:
            self._complete_with(result)

    def _drive(self) -> None:
        while not self._finished and self._awaited is not None and self._awaited.is_completed:
            task = self._awaited
            if task.state is TaskState.FAILED:
                self._step(None, task.result)
            else:
                self._step(task.result, None)

    def _step(self, value: Any, error: BaseException | None) -> None:
        generator = self._generator
        assert generator is not None
        self._awaited = None
        try:
            yielded = generator.send(value) if error is None else generator.throw(error)
        except StopIteration as stop:
            if self.context.will_continue_as_new:
                self._finish(OrchestrationStatus.ContinuedAsNew, None, None)
            else:
                self._complete_with(stop.value)
            return
        except Exception as exc:  # noqa: BLE001 - the orchestrator's own failure
            self._fail(exc)
            return
        if self.context.will_continue_as_new:
            self._finish(OrchestrationStatus.ContinuedAsNew, None, None)
            return
        if not isinstance(yielded, TaskBase):
            self._fail(OrchestratorUsageError(self._bad_yield_message(yielded)))
            return
        yielded._yielded = True
        self.schedule(yielded)
        if self._buffered:
            self._feed_buffered()
        self._awaited = yielded

    @staticmethod
    def _bad_yield_message(value: Any) -> str:
        if inspect.isgenerator(value):
            return (
                "The orchestrator yielded a generator: call helper generators with "
                "`yield from helper(context)`, not `yield helper(context)`."
            )
        return (
            f"The orchestrator yielded {type(value).__name__} {value!r:.80}; yield only tasks "
            "returned by the context (call_activity, create_timer, task_all, ...)."
        )

    def _complete_with(self, value: Any) -> None:
        try:
            output = codec.encode(value)
        except codec.PayloadError as exc:
            self._fail(exc)
            return
        self._finish(OrchestrationStatus.Completed, output, None)

    def _fail(self, exc: BaseException) -> None:
        details = orchestration_failure(self.context.name, exc)
        self._finish(OrchestrationStatus.Failed, codec.encode(details.error_message), details)

    def _finish(
        self, status: OrchestrationStatus, output: str | None, failure: FailureDetails | None
    ) -> None:
        self._status = status
        self._output = output
        self._failure = failure
        self._finished = True
        self._generator = None
        self._awaited = None
