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

    @property
    def is_terminal(self) -> bool:
        """Completed, Failed, Terminated or Canceled: the instance will not run again unless it
        is restarted or rewound (it may be purged, and its id reused)."""
        return self.name in _TERMINAL

    @property
    def is_active(self) -> bool:
        """Pending, Running, Suspended or ContinuedAsNew: the instance still has work to do."""
        return not self.is_terminal


_TERMINAL = frozenset({"Completed", "Failed", "Terminated", "Canceled"})
