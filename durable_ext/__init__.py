"""durable_ext: Durable Functions for Python on Azure Storage.

`import durable_ext as df` in place of `import azure.durable_functions as df`.
"""

from . import testing
from .app import Blueprint, DFApp
from .client import DurableOrchestrationClient
from .compatibility import DurableFunctionsCompatibilityWarning, Orchestrator
from .entity_client import (
    CleanEntityStorageResult,
    DurableEntityStatus,
    EntityQueryResult,
    EntityStateResponse,
)
from .orchestration import (
    DurableOrchestrationContext,
    EntityId,
    FailureDetails,
    NonDeterministicOrchestrationError,
    OrchestrationRuntimeStatus,
    RetryOptions,
    TaskFailedError,
)
from .orchestration.durable_http import DurableHttpRequest, ManagedIdentityTokenSource
from .orchestration.entity_class import DurableEntity
from .orchestration.entity_context import DurableEntityContext, Entity
from .orchestration.entity_requests import (
    CriticalSection,
    EntityOperationFailedError,
    LockingRulesViolationError,
)
from .runtime import Runtime
from .status import DurableOrchestrationStatus, PurgeHistoryResult

__version__ = "0.1.0"

__all__ = [
    "Blueprint",
    "CleanEntityStorageResult",
    "CriticalSection",
    "DurableEntity",
    "DurableEntityContext",
    "DurableEntityStatus",
    "Entity",
    "EntityOperationFailedError",
    "EntityQueryResult",
    "EntityStateResponse",
    "LockingRulesViolationError",
    "DFApp",
    "DurableOrchestrationClient",
    "DurableOrchestrationStatus",
    "DurableFunctionsCompatibilityWarning",
    "DurableHttpRequest",
    "ManagedIdentityTokenSource",
    "Orchestrator",
    "PurgeHistoryResult",
    "Runtime",
    "DurableOrchestrationContext",
    "EntityId",
    "FailureDetails",
    "NonDeterministicOrchestrationError",
    "OrchestrationRuntimeStatus",
    "RetryOptions",
    "TaskFailedError",
    "testing",
    "__version__",
]
