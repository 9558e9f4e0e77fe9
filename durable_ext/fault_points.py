"""Fault points for fault-injection tests: kill the process, or hold it, at a precise step.

Crash points: set `DURABLE_EXT_FAULT_POINTS` to `name:probability[,name:probability...]`, e.g.
`after-outbound-send:0.05`; at each named point the process then exits at once with status 137
(as SIGKILL would) with that probability. Unset (always, outside tests), the points cost one dict
lookup. Points: `after-outbound-send` (messages sent, history not written), `after-history-write`
(history written, Instances not merged), `before-inbound-delete` (all written, inbound messages not
deleted), `after-activity-response` (activity result sent, or handed to this process's
orchestration in memory; work item not deleted).

Stall points (in-process tests only): `stalled(name, hook)` makes every `await stall_point(name)`
await `hook()` first, e.g. an `asyncio.Event.wait` the test sets when it wants the worker to go on.
A stall point is a place where a slow disk, a GC pause or a frozen VM could hold a real worker.
"""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Awaitable, Callable, Iterator

__all__ = [
    "fault_point",
    "FAULT_POINTS",
    "parse_fault_points",
    "stall_point",
    "stalled",
    "STALL_POINTS",
]

FAULT_POINTS = (
    "after-outbound-send",
    "after-history-write",
    "before-inbound-delete",
    "after-activity-response",
)
STALL_POINTS = (
    *FAULT_POINTS,
    "episode-start",
    "activity-start",
    "after-sentinel-write",
    "inbound-delete",
)
"""`episode-start`: an orchestration episode holds its messages, before loading history;
`activity-start`: an activity's work item is held, before the activity runs;
`after-sentinel-write`: inside `HistoryStore.append`, after the last (sentinel-fenced) batch;
`inbound-delete`: after a checkpoint, before the messages it applied are deleted."""


def parse_fault_points(spec: str) -> dict[str, float]:
    """`name:probability,...` as a dict; unknown names are an error."""
    points: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, probability = item.partition(":")
        if name not in FAULT_POINTS:
            raise ValueError(f"unknown fault point {name!r}; known: {', '.join(FAULT_POINTS)}")
        points[name] = float(probability or 1.0)
    return points


_ACTIVE = parse_fault_points(os.environ.get("DURABLE_EXT_FAULT_POINTS", ""))
_STALLS: dict[str, Callable[[], Awaitable[None]]] = {}


def fault_point(name: str) -> None:
    """Exit the process here with the configured probability."""
    probability = _ACTIVE.get(name)
    if probability is not None and random.random() < probability:
        os._exit(137)


async def stall_point(name: str) -> None:
    """Await the hook a test installed for `name` (nothing when none is)."""
    hook = _STALLS.get(name)
    if hook is not None:
        await hook()


@contextlib.contextmanager
def stalled(name: str, hook: Callable[[], Awaitable[None]]) -> Iterator[None]:
    """While the block runs, `stall_point(name)` awaits `hook()` (tests only)."""
    if name not in STALL_POINTS:
        raise ValueError(f"unknown stall point {name!r}; known: {', '.join(STALL_POINTS)}")
    _STALLS[name] = hook
    try:
        yield
    finally:
        _STALLS.pop(name, None)
