"""The pure orchestration engine: history events, tasks, context and replay. No I/O."""

from .context import DurableOrchestrationContext
from .entity_id import EntityId
from .episode import EpisodeOutcome, run_episode
from .errors import NonDeterministicOrchestrationError, OrchestratorUsageError, TaskFailedError
from .executor import ExecutionResult, OrchestrationExecutor, ReplayOptions
from .history import FailureDetails
from .retry import RetryOptions
from .status import OrchestrationRuntimeStatus
from .tasks import (
    AtomicTask,
    CompoundTask,
    LongTimerTask,
    RetryAbleTask,
    TaskBase,
    TaskState,
    TimerTask,
    WhenAllTask,
    WhenAnyTask,
)

__all__ = [
    "AtomicTask",
    "CompoundTask",
    "DurableOrchestrationContext",
    "EntityId",
    "EpisodeOutcome",
    "ExecutionResult",
    "FailureDetails",
    "LongTimerTask",
    "NonDeterministicOrchestrationError",
    "OrchestrationExecutor",
    "OrchestrationRuntimeStatus",
    "OrchestratorUsageError",
    "ReplayOptions",
    "RetryAbleTask",
    "RetryOptions",
    "TaskBase",
    "TaskFailedError",
    "TaskState",
    "TimerTask",
    "WhenAllTask",
    "WhenAnyTask",
    "run_episode",
]
