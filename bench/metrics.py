"""Process measurements (CPU seconds, resident memory) and the statistics the suite reports.

Linux only: memory and other processes' CPU come from /proc. CPU time of this process is
``resource.getrusage(RUSAGE_SELF)`` (every thread, user + system); of another process (Azurite)
the utime + stime fields of /proc/PID/stat.
"""

from __future__ import annotations

import math
import os
import resource
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "Clock",
    "Window",
    "median",
    "load_average",
    "machine_busy_cpu_seconds",
    "percentile",
    "pid_cpu_seconds",
    "pid_memory_mb",
    "process_cpu_seconds",
    "reset_peak_rss",
    "self_memory_mb",
]

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds() -> float:
    """User + system CPU seconds of this process, all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def pid_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of another process (all its threads), from /proc/PID/stat."""
    text = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) may contain spaces; the fields after it are space separated.
    fields = text[text.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / _CLOCK_TICKS


def pid_memory_mb(pid: int | str) -> dict[str, float]:
    """``rss`` (VmRSS) and ``peak`` (VmHWM) of a process in MiB, from /proc/PID/status."""
    values: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values["rss" if key == "VmRSS" else "peak"] = int(rest.split()[0]) / 1024
    return values


def self_memory_mb() -> dict[str, float]:
    return pid_memory_mb("self")


def reset_peak_rss() -> bool:
    """Reset this process's VmHWM to its current RSS (Linux ``clear_refs`` 5); False if refused."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def machine_busy_cpu_seconds() -> float:
    """CPU seconds all processes on this machine have spent busy (not idle or waiting on I/O),
    from the first line of /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / _CLOCK_TICKS


def load_average() -> float:
    """The one-minute load average."""
    return float(Path("/proc/loadavg").read_text().split()[0])


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], pct: float) -> float:
    """The nearest-rank percentile (pct in 0..100) of a non-empty sample."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(pct / 100 * len(ordered))))
    return ordered[rank - 1]


@dataclass(slots=True)
class Window:
    """Wall and CPU seconds of a measured stretch, and another process's CPU (storage) over it."""

    wall_s: float
    cpu_s: float
    storage_cpu_s: float | None
    machine_cpu_s: float
    """Busy CPU seconds of the whole machine over the stretch (this process and storage included)."""

    @property
    def other_cpu_s(self) -> float:
        """Busy CPU seconds of everything else on the machine: load the figures did not cause."""
        return max(0.0, self.machine_cpu_s - self.cpu_s - (self.storage_cpu_s or 0.0))


class Clock:
    """Measures one stretch: ``clock = Clock(azurite_pid)``, run the work, ``clock.stop()``."""

    def __init__(self, storage_pid: int | None = None) -> None:
        self._storage_pid = storage_pid
        self._storage0 = pid_cpu_seconds(storage_pid) if storage_pid else 0.0
        self._cpu0 = process_cpu_seconds()
        self._machine0 = machine_busy_cpu_seconds()
        self._wall0 = time.perf_counter()

    @property
    def started(self) -> float:
        """The ``time.perf_counter()`` at which the stretch began."""
        return self._wall0

    def stop(self) -> Window:
        wall = time.perf_counter() - self._wall0
        cpu = process_cpu_seconds() - self._cpu0
        storage = None
        if self._storage_pid:
            storage = pid_cpu_seconds(self._storage_pid) - self._storage0
        return Window(wall, cpu, storage, machine_busy_cpu_seconds() - self._machine0)
