"""Run an orchestrator in memory for unit tests: fake activities, virtual time, no storage.

Every episode replays the orchestrator from the start of its history, exactly as the worker does, so
non-deterministic code fails here the way it would in production.

    result = run_orchestration(hello_sequence, input="x",
                               activities={"SayHello": lambda name: f"Hello {name}!"})
    assert result.status is OrchestrationRuntimeStatus.Completed
"""

from __future__ import annotations

import asyncio
import heapq
import inspect
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from .orchestration import codec
from .orchestration.episode import run_episode
from .orchestration.executor import ReplayOptions
from .orchestration.failures import activity_failed, missing_function, orchestration_failure
from .orchestration.history import (
    EventRaised,
    EventSent,
    ExecutionResumed,
    ExecutionStarted,
    ExecutionSuspended,
    ExecutionTerminated,
    FailureDetails,
    HistoryEvent,
    OrchestrationInstance,
    OrchestrationStatus,
    ParentInstance,
    SubOrchestrationInstanceCompleted,
    SubOrchestrationInstanceCreated,
    SubOrchestrationInstanceFailed,
    TaskCompleted,
    TaskScheduled,
    TimerCreated,
    TimerFired,
)
from .orchestration.status import OrchestrationRuntimeStatus

__all__ = [
    "ExternalEvent",
    "Terminate",
    "Suspend",
    "Resume",
    "OrchestrationResult",
    "run_orchestration",
]

DEFAULT_START = datetime(2024, 1, 1, tzinfo=UTC)
_REPLAY = ReplayOptions()


@dataclass(frozen=True)
class ExternalEvent:
    """Raise event `name` with `data` at `at` after the start (virtual time)."""

    name: str
    data: Any = None
    at: timedelta = timedelta(0)


@dataclass(frozen=True)
class Terminate:
    """Terminate the instance at `at` after the start."""

    reason: str = ""
    at: timedelta = timedelta(0)


@dataclass(frozen=True)
class Suspend:
    """Suspend the instance at `at` after the start."""

    reason: str = ""
    at: timedelta = timedelta(0)


@dataclass(frozen=True)
class Resume:
    """Resume the instance at `at` after the start."""

    reason: str = ""
    at: timedelta = timedelta(0)


ClientAction = ExternalEvent | Terminate | Suspend | Resume


@dataclass
class OrchestrationResult:
    """How an in-memory run ended."""

    instance_id: str
    status: OrchestrationRuntimeStatus
    output: Any
    custom_status: Any
    failure_details: FailureDetails | None
    history: list[HistoryEvent]
    """History of the last execution, as storage would hold it."""
    activity_calls: list[tuple[str, Any]] = field(default_factory=list)
    """(name, input) of every activity run, in order, retries included."""
    sent_events: list[EventSent] = field(default_factory=list)
    episodes: int = 0
    executions: int = 1
    finished_at: datetime = DEFAULT_START
    warnings: list[str] = field(default_factory=list)


def _user_function(fn: Callable[..., Any]) -> Callable[..., Any]:
    registered = getattr(fn, "__durable_function__", None)
    return registered[2] if registered is not None else fn


def _call_fake(fn: Callable[..., Any], value: Any) -> Any:
    result = fn(value)
    if inspect.iscoroutine(result):
        return asyncio.run(result)
    return result


def _child_failed(
    task_id: int, name: str, exc: BaseException, clock: datetime
) -> SubOrchestrationInstanceFailed:
    """What child orchestration `name` that failed with `exc` reports to its parent (as the
    worker's outbound does)."""
    details = orchestration_failure(name, exc)
    return SubOrchestrationInstanceFailed(
        timestamp=clock,
        task_scheduled_id=task_id,
        reason=details.error_message,
        failure_details=details,
    )


class _Simulation:
    def __init__(
        self,
        activities: Mapping[str, Callable[..., Any]],
        orchestrators: Mapping[str, Callable[..., Any]],
        options: ReplayOptions,
        max_episodes: int,
    ) -> None:
        self.activities = {k.lower(): v for k, v in activities.items()}
        self.orchestrators = {k.lower(): v for k, v in orchestrators.items()}
        self.options = options
        self.max_episodes = max_episodes
        self.calls: list[tuple[str, Any]] = []
        self._ids = itertools.count(1)

    def run(
        self,
        orchestrator: Callable[..., Any],
        name: str,
        instance_id: str,
        input_json: str | None,
        start: datetime,
        client_actions: Sequence[ClientAction],
        parent: ParentInstance | None = None,
    ) -> OrchestrationResult:
        fn = _user_function(orchestrator)
        seq = itertools.count()
        queue: list[tuple[datetime, int, HistoryEvent]] = []

        def push(at: datetime, event: HistoryEvent) -> None:
            heapq.heappush(queue, (at, next(seq), event))

        execution = f"exec{next(self._ids)}"
        push(
            start,
            ExecutionStarted(
                timestamp=start,
                name=name,
                input=input_json,
                parent_instance=parent,
                orchestration_instance=OrchestrationInstance(instance_id, execution),
            ),
        )
        for action in client_actions:
            push(start + action.at, self._client_event(action, start + action.at))
        history: list[HistoryEvent] = []
        clock = start
        episodes = 0
        executions = 1
        sent: list[EventSent] = []
        warnings: list[str] = []
        outcome = None
        while queue:
            at, _, first = heapq.heappop(queue)
            clock = max(clock, at)
            batch = [first]
            while queue and queue[0][0] <= clock:
                batch.append(heapq.heappop(queue)[2])
            batch.sort(key=lambda e: not isinstance(e, ExecutionStarted))
            episodes += 1
            if episodes > self.max_episodes:
                raise RuntimeError(f"{name} ran more than {self.max_episodes} episodes")
            outcome = run_episode(
                fn,
                instance_id=instance_id,
                past_events=history,
                new_events=batch,
                now=clock,
                options=self.options,
                new_execution_id=lambda: f"exec{next(self._ids)}",
            )
            if outcome.first_new_index == 0 and history:
                executions += 1
            history = outcome.events
            warnings.extend(outcome.result.warnings)
            for decision in outcome.decisions:
                reply = self._act(decision.event, instance_id, decision.execution_id, clock, sent)
                if reply is not None:
                    push(*reply)
            if (
                outcome.executor.is_finished
                and outcome.result.status is not OrchestrationStatus.ContinuedAsNew
            ):
                break
        return self._result(
            instance_id, outcome, history, sent, episodes, executions, clock, warnings
        )

    @staticmethod
    def _client_event(action: ClientAction, at: datetime) -> HistoryEvent:
        if isinstance(action, ExternalEvent):
            return EventRaised(timestamp=at, name=action.name, input=codec.encode(action.data))
        if isinstance(action, Terminate):
            return ExecutionTerminated(timestamp=at, input=action.reason)
        if isinstance(action, Suspend):
            return ExecutionSuspended(timestamp=at, reason=action.reason)
        return ExecutionResumed(timestamp=at, reason=action.reason)

    def _act(
        self,
        decision: HistoryEvent,
        instance_id: str,
        execution_id: str,
        clock: datetime,
        sent: list[EventSent],
    ) -> tuple[datetime, HistoryEvent] | None:
        if isinstance(decision, TaskScheduled):
            return clock, self._run_activity(decision, clock)
        if isinstance(decision, TimerCreated):
            fire_at = decision.fire_at or clock
            return fire_at, TimerFired(
                timestamp=fire_at, timer_id=decision.event_id, fire_at=fire_at
            )
        if isinstance(decision, SubOrchestrationInstanceCreated):
            return self._run_child(decision, instance_id, execution_id, clock)
        if isinstance(decision, EventSent):
            sent.append(decision)
        return None

    def _run_activity(self, decision: TaskScheduled, clock: datetime) -> HistoryEvent:
        name = decision.name or ""
        value = codec.decode(decision.input)
        self.calls.append((name, value))
        fake = self.activities.get(name.lower())
        try:
            if fake is None:
                raise missing_function("Activity", name)
            result = codec.encode(_call_fake(_user_function(fake), value))
        except Exception as exc:  # noqa: BLE001 - becomes the activity's failure
            return activity_failed(decision.event_id, name, exc, clock)
        return TaskCompleted(timestamp=clock, task_scheduled_id=decision.event_id, result=result)

    def _run_child(
        self,
        decision: SubOrchestrationInstanceCreated,
        parent_id: str,
        parent_execution: str,
        clock: datetime,
    ) -> tuple[datetime, HistoryEvent]:
        name = decision.name or ""
        child = self.orchestrators.get(name.lower())
        task_id = decision.event_id
        if child is None:  # the worker runs the child, which fails at once
            return clock, _child_failed(task_id, name, missing_function("Orchestrator", name), clock)
        user_fn = _user_function(child)
        if not inspect.isgeneratorfunction(user_fn):
            try:
                value = codec.encode(_call_fake(user_fn, codec.decode(decision.input)))
            except Exception as exc:  # noqa: BLE001 - becomes the child's failure
                return clock, _child_failed(task_id, name, exc, clock)
            return clock, SubOrchestrationInstanceCompleted(
                timestamp=clock, task_scheduled_id=task_id, result=value
            )
        parent = ParentInstance(
            None, None, OrchestrationInstance(parent_id, parent_execution), task_id
        )
        result = self.run(
            user_fn, name, decision.instance_id or "", decision.input, clock, (), parent
        )
        done = result.finished_at
        if result.status is OrchestrationRuntimeStatus.Completed:
            return done, SubOrchestrationInstanceCompleted(
                timestamp=done, task_scheduled_id=task_id, result=codec.encode(result.output)
            )
        details = result.failure_details or FailureDetails(
            result.status.value, f"child ended {result.status.value}"
        )
        return done, SubOrchestrationInstanceFailed(
            timestamp=done,
            task_scheduled_id=task_id,
            reason=details.error_message,
            failure_details=details,
        )

    @staticmethod
    def _result(
        instance_id: str,
        outcome: Any,
        history: list[HistoryEvent],
        sent: list[EventSent],
        episodes: int,
        executions: int,
        clock: datetime,
        warnings: list[str],
    ) -> OrchestrationResult:
        result = outcome.result
        return OrchestrationResult(
            instance_id=instance_id,
            status=OrchestrationRuntimeStatus(result.status.name),
            output=codec.decode(result.output)
            if result.status is OrchestrationStatus.Completed
            else (
                result.output
                if result.status is OrchestrationStatus.Terminated
                else codec.decode(result.output)
            ),
            custom_status=codec.decode(result.custom_status),
            failure_details=result.failure,
            history=history,
            sent_events=sent,
            episodes=episodes,
            executions=executions,
            finished_at=clock,
            warnings=warnings,
        )


def run_orchestration(
    orchestrator: Callable[..., Any],
    input: Any = None,  # noqa: A002 - mirrors start_new's client_input
    *,
    activities: Mapping[str, Callable[..., Any]] | None = None,
    sub_orchestrators: Mapping[str, Callable[..., Any]] | None = None,
    events: Sequence[ClientAction] = (),
    name: str | None = None,
    instance_id: str = "test-instance",
    start_time: datetime = DEFAULT_START,
    maximum_timer_duration: timedelta = _REPLAY.maximum_timer_duration,
    long_timer_interval: timedelta = _REPLAY.long_timer_interval,
    input_type: type | None = None,
    max_episodes: int = 10_000,
) -> OrchestrationResult:
    """Run `orchestrator` to the end (or until it waits for something that never comes).

    `activities` and `sub_orchestrators` map function names to fakes: a fake activity takes the
    input and returns the result (raise to fail it); a sub-orchestrator is either a real
    orchestrator (a generator function, run in memory too) or a plain fake taking the input.
    `events` raise events, terminate, suspend or resume at virtual times after the start; timers
    fire at once in virtual time. Unknown activity names fail like a missing function would.
    """
    simulation = _Simulation(
        activities or {},
        sub_orchestrators or {},
        ReplayOptions(maximum_timer_duration, long_timer_interval, input_type),
        max_episodes,
    )
    fn_name = name or str(getattr(_user_function(orchestrator), "__name__", "orchestrator"))
    result = simulation.run(
        orchestrator, fn_name, instance_id, codec.encode(input), start_time, events
    )
    result.activity_calls = simulation.calls
    return result
