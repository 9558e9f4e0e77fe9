"""The embedded engine's state, as the health function and management calls read it."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["EngineState", "EngineStatus", "EngineLoad"]


class EngineState(enum.Enum):
    """Where the embedded engine of this process stands."""

    STARTING = "starting"
    """An attempt to start is under way (settings read, task hub being opened)."""
    RUNNING = "running"
    """The worker runs: it holds or competes for partition leases and runs work."""
    FAILED = "failed"
    """The last attempt failed (`last_error`); the next one follows after a back-off."""
    STANDBY = "standby"
    """Another worker process of this instance runs the engine; this one is client-only."""
    STOPPED = "stopped"
    """Stopped (by `stop_embedded`, SIGTERM/SIGINT) or never started in this process."""


@dataclass(frozen=True)
class EngineLoad:
    """What the running engine is doing, and how much waits in its queues."""

    orchestrations_in_flight: int
    activities_in_flight: int
    next_timer_in_seconds: float | None
    control_queue_messages: int | None
    """Approximate messages in the owned control queues (delayed timer messages included)."""
    work_item_messages: int | None
    """Approximate messages in the work-item queue (shared by all workers)."""
    backlog_error: str | None = None

    @property
    def busy(self) -> bool:
        return bool(self.orchestrations_in_flight or self.activities_in_flight)


@dataclass(frozen=True)
class EngineStatus:
    """A snapshot of the embedded engine of this process."""

    state: EngineState
    since: datetime
    hub_name: str | None = None
    worker_id: str | None = None
    owned_partitions: tuple[int, ...] = ()
    last_error: str | None = None
    attempts: int = 0
    """Failed start attempts since the engine last ran."""
    next_attempt_in_seconds: float | None = None
    engine_pid: int | None = None
    """In standby: the process of this instance that runs the engine."""
    holding_invocations: int = 0
    """Heartbeat and wake-up invocations of this process holding for the engine's work now."""
    load: EngineLoad | None = field(default=None)

    @property
    def unavailable_reason(self) -> str | None:
        """Why durable calls cannot be served now, or None when they can."""
        if self.state in (EngineState.RUNNING, EngineState.STANDBY):
            return None
        if self.state is EngineState.STOPPED:
            return "the durable engine is stopped"
        if self.last_error is not None:
            return f"the durable engine cannot start: {self.last_error}"
        return None

    def to_json(self) -> dict[str, Any]:
        """The health function's JSON body."""
        document: dict[str, Any] = {
            "state": self.state.value,
            "since": self.since.isoformat(),
            "hubName": self.hub_name,
            "workerId": self.worker_id,
            "ownedPartitions": list(self.owned_partitions),
            "lastError": self.last_error,
            "failedAttempts": self.attempts,
            "nextAttemptInSeconds": self.next_attempt_in_seconds,
            "enginePid": self.engine_pid,
            "holdingInvocations": self.holding_invocations,
            "unavailableReason": self.unavailable_reason,
        }
        if self.load is not None:
            document["inFlight"] = {
                "orchestrations": self.load.orchestrations_in_flight,
                "activities": self.load.activities_in_flight,
            }
            document["nextTimerInSeconds"] = self.load.next_timer_in_seconds
            document["backlog"] = {
                "controlQueueMessages": self.load.control_queue_messages,
                "workItemMessages": self.load.work_item_messages,
                "error": self.load.backlog_error,
            }
        return document
