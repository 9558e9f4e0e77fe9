"""The interface every engine implements, and what a scenario run returns."""

from __future__ import annotations

import abc
import threading
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ActivityClock", "Engine", "Outcome"]


@dataclass(slots=True)
class Outcome:
    """What one scenario did: how many units, whether the results were right, and details."""

    units: int
    correct: bool
    """The orchestrations' outputs matched what the scenario must produce."""
    samples_s: list[float] = field(default_factory=list)
    """Per-run seconds (latency scenario only)."""
    detail: dict[str, Any] = field(default_factory=dict)


class ActivityClock:
    """When the activities of a scenario ran (``time.perf_counter``), recorded by the activity
    code itself; it splits a fan-out into the fan-out part (until the last activity has run) and
    the fan-in tail (from then to completion)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0
        self.first: float | None = None
        self.last: float | None = None

    def reset(self) -> None:
        with self._lock:
            self.count, self.first, self.last = 0, None, None

    def tick(self) -> None:
        now = time.perf_counter()
        with self._lock:
            self.count += 1
            if self.first is None:
                self.first = now
            self.last = now


class Engine(abc.ABC):
    """A durable execution engine running the suite's scenarios in this process."""

    name: str = ""

    def __init__(self) -> None:
        self.activities = ActivityClock()

    @abc.abstractmethod
    def start(self) -> None:
        """Start the engine (storage, worker, client)."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop it and release what it holds."""

    @abc.abstractmethod
    def versions(self) -> dict[str, str]:
        """Package versions that matter for this engine."""

    @abc.abstractmethod
    def sequential(self, count: int) -> Outcome:
        """One orchestration calling `count` no-op activities in sequence, summing results."""

    @abc.abstractmethod
    def fanout(self, count: int) -> Outcome:
        """One orchestration fanning out `count` no-op activities at once, summing results."""

    @abc.abstractmethod
    def hellocities(self, count: int, steps: int) -> Outcome:
        """`count` orchestrations started at once, each calling `steps` activities in sequence."""

    @abc.abstractmethod
    def events(self, count: int) -> Outcome:
        """One orchestration receiving `count` external events in sequence, raised by the client
        one after another as fast as it can."""

    @abc.abstractmethod
    def latency(self, runs: int) -> Outcome:
        """Start a one-activity orchestration and wait for it, `runs` times; per-run seconds."""

    def warm_up(self) -> None:
        """Run a little of everything once, so the measured run finds a warm engine."""
        self.sequential(3)
        self.fanout(3)
        self.events(2)
        self.latency(2)

    def storage_requests(self) -> dict[str, Any] | None:
        """Storage requests since `reset_storage_requests` (engines that can count them)."""
        return None

    def host_cpu_s(self) -> float | None:
        """CPU seconds of the engine's own server process over the measured stretch (the
        `durable-ext start` host of the HTTP engine), None for an engine in this process."""
        return None

    def reset_storage_requests(self) -> None:
        """Start counting storage requests afresh (a no-op for engines that do not count)."""
        return None

    def run(self, scenario: str, size: int, steps: int) -> Outcome:
        """Dispatch one scenario by name."""
        self.activities.reset()
        if scenario == "sequential":
            return self.sequential(size)
        if scenario == "fanout":
            return self.fanout(size)
        if scenario == "hellocities":
            return self.hellocities(size, steps)
        if scenario == "events":
            return self.events(size)
        if scenario == "latency":
            return self.latency(size)
        raise ValueError(f"{self.name} has no scenario {scenario!r}")
