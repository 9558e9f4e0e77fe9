"""durable_ext: Durable Functions for Python on Azure Storage.

`import durable_ext as df` in place of `import azure.durable_functions as df`.
"""

from . import testing
from .orchestration import (
    DurableOrchestrationContext,
    EntityId,
    FailureDetails,
    NonDeterministicOrchestrationError,
    OrchestrationRuntimeStatus,
    RetryOptions,
    TaskFailedError,
)

__version__ = "0.1.0"

__all__ = [
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
