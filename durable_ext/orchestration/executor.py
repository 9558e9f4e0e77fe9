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

The executor is the `OrchestrationRuntime` behind the context it makes (`runtime.py`, the one contract
between them); what it knows of the execution lives in one `ReplayState` (`replay_state.py`).
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from typing import Any

from . import codec
from .actions import CreateSubOrchestration, CreateTimer, WaitForEvent, describe_scheduling_event
from .context import DurableOrchestrationContext, context_for
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
    OrchestratorCompleted,
    OrchestratorStarted,
    SubOrchestrationInstanceCompleted,
    SubOrchestrationInstanceCreated,
    SubOrchestrationInstanceFailed,
    TaskCompleted,
    TaskFailed,
    TaskScheduled,
    TimerCreated,
    TimerFired,
    format_time,
)
from .observations import Observation, Seen
from .replay_state import ReplayState
from .runtime import ExecutionInfo, ReplayOptions
from .tasks import AtomicTask, CompoundTask, EntityCallTask, TaskBase, TaskState

__all__ = ["OrchestrationExecutor", "ExecutionResult", "ReplayOptions"]

_SUB_ORCHESTRATION_NAMESPACE = uuid.UUID("5d9f4a0c-2a4e-4f0b-9a57-8d1d3c1b6e21")


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
    seen: list[Observation] = field(default_factory=list)


class OrchestrationExecutor:
    """Replays one execution of an orchestrator function; the `OrchestrationRuntime` of its
    context."""

    def __init__(
        self,
        orchestrator: Callable[[DurableOrchestrationContext], Any],
        *,
        instance_id: str,
        options: ReplayOptions | None = None,
    ) -> None:
        self._fn = orchestrator
        self._options = options or ReplayOptions()
        self._state = ReplayState(ExecutionInfo(instance_id=instance_id))
        self.history: list[HistoryEvent] = []
        """The execution's history as `context.histories` shows it (the caller keeps it whole:
        `execute` and the episode functions append every event, decisions included)."""
        self.context = context_for(self, self.history)
        self._generator: Generator[Any, Any, Any] | None = None
        self._awaited: TaskBase | None = None

    # -- public -----------------------------------------------------------------------------
    def execute(
        self, past_events: Iterable[HistoryEvent], new_events: Iterable[HistoryEvent]
    ) -> ExecutionResult:
        """Replay `past_events`, apply `new_events`, and return this episode's decisions."""
        past, new = list(past_events), list(new_events)
        self.history += past
        self.history += new
        self.apply(past, replaying=True)
        self.apply(new, replaying=False)
        result = self.take_decisions()
        self.history += result.decisions
        return result

    def apply(self, events: Iterable[HistoryEvent], *, replaying: bool) -> None:
        """Process events in order (stops early once the code failed non-deterministically)."""
        state = self._state
        state.info.is_replaying = replaying
        for event in events:
            if state.broken:
                return
            self._process(event, replaying)

    def take_decisions(self) -> ExecutionResult:
        """Decisions not yet in history, in sequence order; marks them as written."""
        state = self._state
        info = state.info
        decisions: list[HistoryEvent] = []
        now = info.current_utc_datetime
        if not state.suspended or state.finished:
            pending = state.pending
            for event_id in sorted(pending):
                task = pending[event_id]
                if not state.drops_decision(task):
                    event = task.action.to_event(event_id, now)
                    decisions.append(event)
                    self._note_scheduling(event, False)
            pending.clear()
        if state.finished and not state.completion_reported:
            state.completion_reported = True
            if state.status is not OrchestrationStatus.ContinuedAsNew:
                decisions.append(
                    ExecutionCompleted(
                        event_id=state.take_id(),
                        timestamp=now,
                        orchestration_status=state.status,
                        result=state.output,
                        failure_details=state.failure,
                    )
                )
        status = state.reported_status
        return ExecutionResult(
            decisions=decisions,
            status=status,
            output=state.output,
            failure=state.failure,
            custom_status=info.custom_status_json,
            continue_as_new_input=info.continue_as_new_input
            if status is OrchestrationStatus.ContinuedAsNew
            else None,
            carried_events=list(state.carried),
            warnings=state.take_warnings(),
            seen=state.take_seen(),
        )

    def refuse(self, name: str | None, error: BaseException) -> None:
        """End the execution Failed with `error` without running its code: no event is replayed
        and the episode's one decision is the ExecutionCompleted (a refused version)."""
        details = orchestration_failure(name, error)
        self._state.break_replay(codec.encode(details.error_message), details)

    @property
    def is_finished(self) -> bool:
        return self._state.finished

    # -- OrchestrationRuntime (called by the context and compound tasks) ----------------------
    @property
    def info(self) -> ExecutionInfo:
        return self._state.info

    @property
    def options(self) -> ReplayOptions:
        return self._options

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
        state = self._state
        if isinstance(action, WaitForEvent):
            state.add_waiter(task, action.name)
            if action.name not in state.buffered:
                reason = f"WaitForExternalEvent:{action.name}"
                self._note(Seen.LISTENING, state.info.is_replaying, detail=reason)
            return
        event_id = state.add_scheduled(task)
        if isinstance(action, CreateSubOrchestration) and not action.instance_id:
            action.instance_id = self._default_child_id(event_id)

    def _default_child_id(self, event_id: int) -> str:
        info = self._state.info
        seed = f"{info.instance_id}/{info.execution_id}/{event_id}"
        return uuid.uuid5(_SUB_ORCHESTRATION_NAMESPACE, seed).hex

    def _feed_buffered(self) -> None:
        """Hand buffered events, oldest first, to waiters the last yield made live."""
        state = self._state
        buffered = state.buffered
        for name in list(buffered):
            events = buffered[name]
            while events and (task := state.take_live_waiter(name)) is not None:
                event = events.popleft()
                self._deliver(task, event.input, event.is_played)
            if not events:
                del buffered[name]

    # -- event processing --------------------------------------------------------------------
    def _process(self, event: HistoryEvent, replaying: bool) -> None:
        state = self._state
        event.is_played = replaying or event.is_played
        if state.suspended and not isinstance(event, ExecutionResumed | ExecutionTerminated):
            state.parked.append((event, replaying))
            return
        # Each case tried costs a type check: the events of every step come first.
        match event:
            case TaskCompleted():
                self._complete(event.task_scheduled_id, event.result, None, replaying)
            case TaskScheduled():
                self._match(event)
            case OrchestratorStarted():
                if event.timestamp > state.info.current_utc_datetime:
                    state.info.current_utc_datetime = event.timestamp
            case OrchestratorCompleted():
                pass  # the end of an episode: nothing to replay
            case TimerCreated() | SubOrchestrationInstanceCreated() | EventSent():
                self._match(event)
            case SubOrchestrationInstanceCompleted():
                self._complete(event.task_scheduled_id, event.result, None, replaying)
            case TaskFailed() | SubOrchestrationInstanceFailed():
                self._complete(event.task_scheduled_id, None, event, replaying)
            case TimerFired():
                self._complete(event.timer_id, None, None, replaying)
            case EventRaised():
                self._on_event_raised(event)
            case ExecutionStarted():
                self._start(event)
            case ExecutionTerminated():
                if not state.finished:
                    self._finish(OrchestrationStatus.Terminated, event.input, None)
            case ExecutionSuspended():
                if not state.finished:
                    state.suspended = True
            case ExecutionResumed():
                state.suspended = False
                parked, state.parked = state.parked, []
                for parked_event, parked_replaying in parked:
                    state.info.is_replaying = parked_replaying
                    self._process(parked_event, parked_replaying)
                state.info.is_replaying = replaying
            case ExecutionCompleted() | ContinueAsNew():
                state.completion_reported = True

    def _match(self, event: HistoryEvent) -> None:
        state = self._state
        task = state.pending.pop(event.event_id, None)
        if task is not None and task.action.matches(event):
            self._note_scheduling(event, True)
            return
        history = f"{describe_scheduling_event(event)} at #{event.event_id}"
        if task is not None:
            code = f"the code now schedules {task.action.describe()} there"
        elif state.finished:
            code = "the code now completes the orchestration before reaching it"
        elif state.pending:
            first = min(state.pending)
            code = (
                f"the code now schedules nothing at #{event.event_id} "
                f"(its next action is {state.pending[first].action.describe()} at #{first})"
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
        output = codec.encode(orchestration_failure_text(self._state.info.name, str(error)))
        self._state.break_replay(output, FailureDetails(type(error).__name__, str(error)))
        self._generator = None

    def _complete(
        self,
        task_id: int,
        result: str | None,
        failure: TaskFailed | SubOrchestrationInstanceFailed | None,
        replaying: bool,
    ) -> None:
        task = self._state.open.pop(task_id, None)
        if task is None or task.is_completed:
            self._state.warnings.append(
                f"Ignored a duplicate or unknown completion for task #{task_id}"
            )
            return
        task.is_played = replaying
        self._note_completion(task, task_id, failure, replaying)
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
    def _task_error(
        task: AtomicTask, event: TaskFailed | SubOrchestrationInstanceFailed
    ) -> TaskFailedError:
        details = event.failure_details
        reason = event.reason
        if details is None:
            details = FailureDetails("Exception", reason or "unknown error", event.details)
        kind = "Orchestrator" if isinstance(event, SubOrchestrationInstanceFailed) else "Activity"
        name = getattr(task.action, "name", "?")
        message = (
            reason
            if reason and reason.startswith(f"{kind} function")
            else (f"{kind} function '{name}' failed: {details.error_message}")
        )
        return TaskFailedError(message, details)

    def _on_event_raised(self, event: EventRaised) -> None:
        state = self._state
        if state.info.will_continue_as_new:
            state.carried.append(event)
            return
        name = event.name or ""
        entity_task = state.entity_waiters.pop(name, None)
        if entity_task is not None:
            self._deliver_entity_response(entity_task, event)
            return
        task = state.take_live_waiter(name)
        if task is not None:
            self._note(Seen.EVENT_RAISED, state.info.is_replaying, name=name)
            self._deliver(task, event.input, event.is_played)
        else:
            self._note(Seen.EVENT_SAVED, state.info.is_replaying, name=name)
            state.buffer(event)

    def _deliver(self, task: AtomicTask, payload: str | None, played: bool) -> None:
        task.is_played = played
        try:
            value = codec.decode(payload, task.expected_type)
        except Exception as exc:  # noqa: BLE001 - surfaced to the orchestrator code
            task.set_value(True, exc)
        else:
            task.set_value(False, value)
        self._drive()

    def _deliver_entity_response(self, task: EntityCallTask, event: EventRaised) -> None:
        task.is_played = event.is_played
        self._note(Seen.ENTITY_RESPONSE, self._state.info.is_replaying, detail=event.name)
        task.accept_response(event.input)
        assert isinstance(task.id, int)
        self._state.open.pop(task.id, None)
        self._drive()

    # -- notes for the tracking events --------------------------------------------------------
    def _note(self, kind: Seen, replaying: bool, **details: Any) -> None:
        if replaying and not self._options.observe_replay:
            return
        self._state.seen.append(Observation(kind, replaying, **details))

    def _note_scheduling(self, event: HistoryEvent, replaying: bool) -> None:
        match event:
            case TaskScheduled():
                self._note(Seen.SCHEDULED, replaying, name=event.name or "", task_id=event.event_id)
            case SubOrchestrationInstanceCreated():
                self._note(
                    Seen.SCHEDULED,
                    replaying,
                    name=event.name or "",
                    function_type="Orchestrator",
                    task_id=event.event_id,
                )
            case EventSent() if (event.instance_id or "").startswith("@"):
                entity = (event.instance_id or "@").split("@")[1]
                self._note(Seen.SCHEDULED, replaying, name=entity, function_type="Entity")
            case TimerCreated() if event.fire_at is not None:
                reason = f"CreateTimer:{format_time(event.fire_at)}"
                self._note(Seen.LISTENING, replaying, detail=reason, task_id=event.event_id)

    def _note_completion(
        self,
        task: AtomicTask,
        task_id: int,
        failure: TaskFailed | SubOrchestrationInstanceFailed | None,
        replaying: bool,
    ) -> None:
        action = task.action
        if isinstance(action, CreateTimer):
            fire_at = format_time(action.fire_at) if action.fire_at else ""
            self._note(Seen.TIMER_FIRED, replaying, detail=fire_at, task_id=task_id)
        elif replaying and hasattr(action, "name"):
            self._note(
                Seen.TASK_FAILED if failure is not None else Seen.TASK_COMPLETED,
                True,
                name=action.name,
                function_type="Orchestrator"
                if isinstance(action, CreateSubOrchestration)
                else "Activity",
                task_id=task_id,
                detail=failure.reason if failure is not None else None,
            )

    # -- running user code -------------------------------------------------------------------
    def _start(self, event: ExecutionStarted) -> None:
        state = self._state
        if self._generator is not None or state.finished:
            state.warnings.append("Ignored a second ExecutionStarted event")
            return
        info = state.info
        instance = event.orchestration_instance
        if instance is not None:
            info.instance_id = instance.instance_id or info.instance_id
            info.execution_id = instance.execution_id
        if event.parent_instance is not None:
            info.parent_instance_id = event.parent_instance.orchestration_instance.instance_id
        info.name = event.name
        info.version = event.version
        info.input = event.input
        ctx = self.context
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
        elif info.will_continue_as_new:
            self._finish(OrchestrationStatus.ContinuedAsNew, None, None)
        else:
            self._complete_with(result)

    def _drive(self) -> None:
        state = self._state
        while not state.finished and self._awaited is not None and self._awaited.is_completed:
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
            if self._state.info.will_continue_as_new:
                self._finish(OrchestrationStatus.ContinuedAsNew, None, None)
            else:
                self._complete_with(stop.value)
            return
        except Exception as exc:  # noqa: BLE001 - the orchestrator's own failure
            self._fail(exc)
            return
        if self._state.info.will_continue_as_new:
            self._finish(OrchestrationStatus.ContinuedAsNew, None, None)
            return
        if not isinstance(yielded, TaskBase):
            self._fail(OrchestratorUsageError(self._bad_yield_message(yielded)))
            return
        yielded._yielded = True
        self.schedule(yielded)
        if self._state.buffered:
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
        details = orchestration_failure(self._state.info.name, exc)
        self._finish(OrchestrationStatus.Failed, codec.encode(details.error_message), details)

    def _finish(
        self, status: OrchestrationStatus, output: str | None, failure: FailureDetails | None
    ) -> None:
        self.context._entities.release_all()  # critical sections end with the orchestration
        self._state.finish(status, output, failure)
        self._generator = None
        self._awaited = None
