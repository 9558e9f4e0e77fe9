"""`OrchestrationRuntimeStatus`, as in `azure.durable_functions`."""

from __future__ import annotations

from enum import Enum

__all__ = ["OrchestrationRuntimeStatus"]


class OrchestrationRuntimeStatus(Enum):
    """The runtime status of an orchestration instance (value == name)."""

    Running = "Running"
    Completed = "Completed"
    ContinuedAsNew = "ContinuedAsNew"
    Failed = "Failed"
    Canceled = "Canceled"
    Terminated = "Terminated"
    Pending = "Pending"
    Suspended = "Suspended"
