"""`DurableOrchestrationContext`: the API orchestrator code calls, as in `azure-functions-durable`."""

from __future__ import annotations

import inspect
import json
import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from . import codec
from .actions import CreateSubOrchestration, ScheduleActivity, WaitForEvent
from .durable_http import HTTP_ACTIVITY_NAME, DurableHttpRequest, DurableHttpTask, TokenSource
from .entity_id import EntityId
from .entity_requests import EntityMessenger
from .history import HistoryEvent, event_from_fields
from .instance_ids import validate_instance_id
from .replay_safe_logging import ReplaySafeLogger
from .retry import RetryOptions
from .runtime import ExecutionInfo, OrchestrationRuntime, ReplayOptions
from .tasks import (
    AtomicTask,
    LongTimerTask,
    RetryAbleTask,
    TaskBase,
    TimerTask,
    WhenAllTask,
    WhenAnyTask,
    new_timer,
)

__all__ = [
    "DurableOrchestrationContext",
    "FunctionContext",
    "MAX_CUSTOM_STATUS_BYTES",
    "HTTP_ACTIVITY_NAME",
    "context_for",
]

MAX_CUSTOM_STATUS_BYTES = 16 * 1024
_UUID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_OID, "9e952958-5e33-4daf-827f-2fa12937b875")
_SDK_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def _function_name(fn: str | Callable[..., Any], trigger: str) -> tuple[str, type | None]:
    """Resolve a name or a decorated function to (function name, return annotation)."""
    if isinstance(fn, str):
        if not fn:
            raise ValueError(f"The {trigger} function name cannot be empty.")
        return fn, None
    registered = getattr(fn, "__durable_function__", None)
    if registered is not None:
        kind, name, user_fn = registered
        if kind != trigger:
            raise ValueError(
                f"Received function with Trigger-type `{kind}` but expected `{trigger}`. "
                f"Pass the function decorated with @{trigger.replace('Trigger', '_trigger')}."
            )
        annotation = inspect.signature(user_fn).return_annotation
        return name, annotation if isinstance(
            annotation, type
        ) and annotation is not inspect.Signature.empty else None
    builder_fn = getattr(fn, "_function", None)
    if builder_fn is not None and hasattr(builder_fn, "get_function_name"):
        trigger_binding = builder_fn.get_trigger()
        kind = getattr(trigger_binding, "type", None)
        if kind != trigger:
            raise ValueError(
                f"Received function with Trigger-type `{kind}` but expected `{trigger}`."
            )
        return builder_fn.get_function_name(), None
    raise ValueError(
        f"The `call_activity` API received a `Callable` without an associated Azure Functions "
        f"trigger-type. Please ensure you're using a Python programming model V2 function "
        f"decorated with a {trigger} decorator, or pass the function name as a string."
    )


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class _Detached:
    """The runtime of a context built from the SDK's trigger JSON: its info, no scheduling."""

    def __init__(self, info: ExecutionInfo) -> None:
        self.info = info
        self.options = ReplayOptions()

    def schedule(self, task: TaskBase) -> None:
        raise RuntimeError("this context is not attached to a running orchestration")


class FunctionContext:
    """Payload fields the orchestration context does not use, as attributes (the SDK's bag; the
    Durable Functions host sends `defaultHttpAsyncRequestSleepTimeMillseconds`)."""

    def __init__(self, **kwargs: Any) -> None:
        for key, value in kwargs.items():
            setattr(self, key, value)


class DurableOrchestrationContext:
    """The orchestrator's view of its instance: schedule work, wait, read input and time.

    Created by the engine for every execution (`context_for`); orchestrator code receives it as its
    trigger argument. It reaches the engine only through its `OrchestrationRuntime` (runtime.py).
    """

    def __init__(
        self,
        history: list[dict[Any, Any]] | None = None,
        instanceId: str = "",  # noqa: N803 - the SDK's keyword
        isReplaying: bool = False,  # noqa: N803
        parentInstanceId: str | None = None,  # noqa: N803
        input: Any = None,  # noqa: A002
        upperSchemaVersion: int = 0,  # noqa: N803
        maximumShortTimerDuration: str | None = None,  # noqa: N803
        longRunningTimerIntervalDuration: str | None = None,  # noqa: N803
        upperSchemaVersionNew: int | None = None,  # noqa: N803
        **kwargs: Any,
    ) -> None:
        info = ExecutionInfo(
            instance_id=instanceId,
            parent_instance_id=parentInstanceId,
            input=input if input is None or isinstance(input, str) else json.dumps(input),
            is_replaying=isReplaying,
        )
        events = [event_from_fields(e) for e in history or []]
        self._bind(_Detached(info), events, FunctionContext(**kwargs))

    def _bind(
        self,
        runtime: OrchestrationRuntime,
        histories: list[HistoryEvent],
        function_context: FunctionContext,
    ) -> None:
        self._runtime = runtime
        self._info = runtime.info
        self._histories = histories
        self._function_context = function_context
        self._new_uuid_counter = 0
        self._entities = EntityMessenger(runtime, self.new_uuid)

    @classmethod
    def from_json(cls, json_string: str) -> DurableOrchestrationContext:
        """A context from the SDK's orchestration-trigger JSON (history with DTFx field names)."""
        return cls(**json.loads(json_string))

    # -- scheduling ------------------------------------------------------------------------
    def call_activity(
        self,
        name: str | Callable[..., Any],
        input_: Any | None = None,
        expected_type: type | None = None,
    ) -> TaskBase:
        """Schedule an activity function; yield the task for its result."""
        function_name, annotation = _function_name(name, "activityTrigger")
        return AtomicTask(
            -1, ScheduleActivity(function_name, codec.encode(input_)), expected_type or annotation
        )

    def call_activity_with_retry(
        self,
        name: str | Callable[..., Any],
        retry_options: RetryOptions,
        input_: Any | None = None,
        expected_type: type | None = None,
    ) -> TaskBase:
        """Schedule an activity, retried per `retry_options` when it fails."""
        first = self.call_activity(name, input_, expected_type)
        return RetryAbleTask(first, retry_options, self._runtime)

    def call_sub_orchestrator(
        self,
        name: str | Callable[..., Any],
        input_: Any | None = None,
        instance_id: str | None = None,
        version: str | None = None,
        expected_type: type | None = None,
    ) -> TaskBase:
        """Start a sub-orchestration; yield the task for its output."""
        function_name, annotation = _function_name(name, "orchestrationTrigger")
        if instance_id is not None:
            validate_instance_id(instance_id)
        version = version or self._runtime.options.version
        action = CreateSubOrchestration(
            function_name, instance_id or "", codec.encode(input_), version
        )
        return AtomicTask(-1, action, expected_type or annotation)

    def call_sub_orchestrator_with_retry(
        self,
        name: str | Callable[..., Any],
        retry_options: RetryOptions,
        input_: Any | None = None,
        instance_id: str | None = None,
        version: str | None = None,
        expected_type: type | None = None,
    ) -> TaskBase:
        """Start a sub-orchestration, restarted per `retry_options` when it fails."""
        child = self.call_sub_orchestrator(name, input_, instance_id, version, expected_type)
        return RetryAbleTask(child, retry_options, self._runtime)

    def call_http(
        self,
        method: str,
        uri: str,
        content: str | None = None,
        headers: dict[str, str] | None = None,
        token_source: TokenSource | None = None,
        is_raw_str: bool = False,
        asynchronous_pattern_enabled: bool = True,
    ) -> TaskBase:
        """Make a durable HTTP request (the built-in HTTP activity); the result is the response
        dict `{"statusCode", "headers", "content"}`. A 202 with a Location is polled with durable
        timers between polls unless `asynchronous_pattern_enabled` is False. A dict `content` is
        sent as JSON, a string as is."""
        if is_raw_str and not isinstance(content, str):
            raise TypeError(
                "Invalid use of 'is_raw_str' parameter: 'is_raw_str' is set to 'True' but "
                "'content' is not an instance of type 'str'. Either set 'is_raw_str' to 'False', "
                "or ensure your 'content' is of type 'str'."
            )
        body = content if isinstance(content, str) or content is None else json.dumps(content)
        request = DurableHttpRequest(method, uri, body, headers, token_source).to_json()
        request["asynchronousPatternEnabled"] = asynchronous_pattern_enabled
        return DurableHttpTask(request, self._runtime)

    def call_entity(
        self,
        entityId: EntityId,  # noqa: N803 - the SDK's name
        operationName: str,  # noqa: N803
        operationInput: Any | None = None,  # noqa: N803
        expected_type: type | None = None,
    ) -> TaskBase:
        """Call an entity operation and wait for its result (an operation that raised fails the
        task with `EntityOperationFailedError`)."""
        return self._entities.call(entityId, operationName, operationInput, expected_type)

    def signal_entity(
        self,
        entityId: EntityId,  # noqa: N803
        operationName: str,  # noqa: N803
        operationInput: Any | None = None,  # noqa: N803
        scheduled_time: datetime | None = None,
    ) -> TaskBase:
        """Send a one-way operation to an entity (sent now, no need to yield); with
        `scheduled_time`, the entity runs it at that time."""
        due = None if scheduled_time is None else _utc(scheduled_time)
        return self._entities.signal(entityId, operationName, operationInput, due)

    def lock(self, entities: Sequence[EntityId]) -> TaskBase:
        """Lock entities for a critical section: yield the task for a `CriticalSection`, best used
        as `with (yield context.lock([a, b])):` (docs/api.md, "Critical sections")."""
        return self._entities.lock(entities)

    @property
    def is_locked(self) -> bool:
        """Whether the orchestration is inside a critical section."""
        return self._entities.is_locked

    def create_timer(self, fire_at: datetime) -> TimerTask | LongTimerTask:
        """A durable timer that completes at `fire_at` (naive datetimes are taken as UTC)."""
        if not isinstance(fire_at, datetime):
            raise ValueError(f"fire_at must be a datetime, got {type(fire_at).__name__}")
        return new_timer(self._runtime, _utc(fire_at))

    def wait_for_external_event(self, name: str, expected_type: type | None = None) -> TaskBase:
        """Wait for an event raised to this instance (each event goes to the oldest live waiter of
        its name, otherwise it is buffered for the next one: docs/api.md, "External events")."""
        if not name:
            raise ValueError("External event name cannot be empty.")
        return AtomicTask(name, WaitForEvent(name), expected_type)

    def task_all(self, activities: Sequence[TaskBase]) -> TaskBase:
        """All of the tasks: their results in order; fails with the first failure."""
        return WhenAllTask(self._tasks(activities))

    def task_any(self, activities: Sequence[TaskBase]) -> TaskBase:
        """The first task to complete (the Task object)."""
        return WhenAnyTask(self._tasks(activities))

    @staticmethod
    def _tasks(activities: Sequence[TaskBase]) -> list[TaskBase]:
        tasks = list(activities)
        for task in tasks:
            if not isinstance(task, TaskBase):
                raise TypeError(
                    f"expected tasks returned by the context, got {type(task).__name__}"
                )
        return tasks

    def continue_as_new(self, input_: Any) -> None:
        """Restart this instance with a new input and a fresh history once this code yields or returns."""
        self._info.continue_as_new_input = codec.encode(input_)
        self._info.will_continue_as_new = True

    def set_custom_status(self, status: Any) -> None:
        """Publish a JSON-serialisable status (up to 16 KB) readable by clients."""
        encoded = codec.encode(status)
        size = len(encoded.encode("utf-8"))
        if size > MAX_CUSTOM_STATUS_BYTES:
            raise ValueError(
                f"custom status is {size} bytes of JSON; the limit is {MAX_CUSTOM_STATUS_BYTES} bytes"
            )
        self._info.custom_status = status
        self._info.custom_status_json = encoded

    def get_input(self, expected_type: type | None = None) -> Any:
        """The orchestration input, converted to `expected_type` (or the decorator's input_type)."""
        return codec.decode(self._info.input, expected_type or self._runtime.options.input_type)

    def new_uuid(self) -> str:
        """A deterministic UUID (the SDK's algorithm: uuid5 over instance id, time and counter)."""
        info = self._info
        name = (
            f"{info.instance_id}_{info.current_utc_datetime.strftime(_SDK_TIME_FORMAT)}_"
            f"{self._new_uuid_counter}"
        )
        self._new_uuid_counter += 1
        return str(uuid.uuid5(_UUID_NAMESPACE, name))

    def new_guid(self) -> uuid.UUID:
        """The SDK's older deterministic UUID variant (shares the counter with new_uuid)."""
        info = self._info
        name = f"{info.instance_id}_{info.current_utc_datetime}_{self._new_uuid_counter}"
        self._new_uuid_counter += 1
        return uuid.uuid5(uuid.NAMESPACE_URL, name)

    # -- properties --------------------------------------------------------------------------
    @property
    def instance_id(self) -> str:
        return self._info.instance_id

    @property
    def parent_instance_id(self) -> str | None:
        return self._info.parent_instance_id

    @property
    def is_replaying(self) -> bool:
        """True while the code re-runs past episodes (skip side effects such as logging)."""
        return self._info.is_replaying

    def create_replay_safe_logger(
        self, logger: logging.Logger | str | None = None
    ) -> ReplaySafeLogger:
        """A logger (a `logging.LoggerAdapter`) that drops records while the code replays, so
        each line is logged once: `log = context.create_replay_safe_logger(logging.getLogger(
        __name__))`. Its records carry the instance id as `instanceId`. (Not in
        `azure-functions-durable`; the durabletask SDKs' and .NET's `CreateReplaySafeLogger`.)"""
        if not isinstance(logger, logging.Logger):
            logger = logging.getLogger(logger)
        info = self._info
        return ReplaySafeLogger(logger, lambda: info.is_replaying, {"instanceId": info.instance_id})

    @property
    def current_utc_datetime(self) -> datetime:
        """Deterministic 'now': the start time of the episode being replayed."""
        return self._info.current_utc_datetime

    @current_utc_datetime.setter
    def current_utc_datetime(self, value: datetime) -> None:
        self._info.current_utc_datetime = value

    @property
    def version(self) -> str | None:
        return self._info.version

    @property
    def will_continue_as_new(self) -> bool:
        return self._info.will_continue_as_new

    @property
    def custom_status(self) -> Any:
        return self._info.custom_status

    @property
    def histories(self) -> list[HistoryEvent]:
        """The execution's history as the code sees it: every event up to the current episode's
        (SDK attribute names such as `Name`, `Input`, `TaskScheduledId` work too)."""
        return self._histories

    @property
    def function_context(self) -> FunctionContext:
        """The host's fields the context does not use (`defaultHttpAsyncRequestSleepTimeMillseconds`)."""
        return self._function_context

    @property
    def execution_id(self) -> str | None:
        """The id of the current execution (changes with every continue_as_new)."""
        return self._info.execution_id

    @property
    def name(self) -> str | None:
        """The orchestrator function name."""
        return self._info.name


def context_for(
    runtime: OrchestrationRuntime, histories: list[HistoryEvent] | None = None
) -> DurableOrchestrationContext:
    """The context orchestrator code receives, showing `runtime`'s info and scheduling through it,
    and `histories` (kept up to date by the engine) (the executor makes one per execution)."""
    context = DurableOrchestrationContext.__new__(DurableOrchestrationContext)
    sleep_ms = int(runtime.options.http_async_sleep.total_seconds() * 1000)
    context._bind(
        runtime,
        [] if histories is None else histories,
        FunctionContext(defaultHttpAsyncRequestSleepTimeMillseconds=sleep_ms),
    )
    return context
