"""The one contract between the orchestration context and the engine that runs it.

`DurableOrchestrationContext` and the compound tasks (retries, long timers) see the engine only
through `OrchestrationRuntime` (as Temporal's `workflow.py` sees its `_Runtime`):
`OrchestrationExecutor` implements it; a context built from the SDK's trigger JSON has a detached
runtime that holds the same `ExecutionInfo` but cannot schedule.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .tasks import TaskBase

__all__ = ["ExecutionInfo", "OrchestrationRuntime", "ReplayOptions"]

_DAWN = datetime.min.replace(tzinfo=UTC)


@dataclass(slots=True)
class ReplayOptions:
    """Engine settings that shape decisions."""

    maximum_timer_duration: timedelta = timedelta(days=6)
    long_timer_interval: timedelta = timedelta(days=3)
    input_type: type | None = None
    observe_replay: bool = False
    """Note replayed steps too (`traceReplayEvents`); live steps are always noted."""
    http_async_sleep: timedelta = timedelta(milliseconds=30000)
    """Between polls of a durable HTTP 202 without Retry-After
    (`httpSettings.defaultAsyncRequestSleepTimeMilliseconds`)."""
    version: str = ""
    """The app's orchestration version (`defaultVersion`), stamped on sub-orchestrations started
    without one."""


@dataclass(slots=True)
class ExecutionInfo:
    """What orchestrator code reads about its execution, and what it asks of the engine.

    The runtime owns it and keeps the identity, clock and replay flag current; the context shows
    them and records the code's requests (custom status, continue-as-new) here for the engine.
    """

    instance_id: str = ""
    execution_id: str | None = None
    parent_instance_id: str | None = None
    name: str | None = None
    version: str | None = None
    input: str | None = None
    """The orchestration input as JSON."""
    current_utc_datetime: datetime = _DAWN
    is_replaying: bool = False
    custom_status: Any = None
    custom_status_json: str | None = None
    continue_as_new_input: str | None = None
    will_continue_as_new: bool = False


class OrchestrationRuntime(Protocol):
    """The engine behind a context: its execution's info, its settings, and scheduling."""

    @property
    def info(self) -> ExecutionInfo:
        """The execution's info (the same object for the runtime's lifetime)."""
        ...

    @property
    def options(self) -> ReplayOptions: ...

    def schedule(self, task: TaskBase) -> None:
        """Give a task created after the code yielded its parent (a retry, a timer leg) its
        sequence ids now, as if it had been yielded."""
        ...
