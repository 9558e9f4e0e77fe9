"""Crash points for fault-injection tests: kill the process at a precise step of a checkpoint.

Set `DURABLE_EXT_FAULT_POINTS` to `name:probability[,name:probability...]`, e.g.
`after-outbound-send:0.05`; at each named point the process then exits at once with status 137
(as SIGKILL would) with that probability. Unset (always, outside tests), the points cost one dict
lookup. Points: `after-outbound-send` (messages sent, history not written), `after-history-write`
(history written, Instances not merged), `before-inbound-delete` (all written, inbound messages not
deleted), `after-activity-response` (activity result sent, or handed to this process's
orchestration in memory; work item not deleted).
"""

from __future__ import annotations

import os
import random

__all__ = ["fault_point", "FAULT_POINTS", "parse_fault_points"]

FAULT_POINTS = (
    "after-outbound-send",
    "after-history-write",
    "before-inbound-delete",
    "after-activity-response",
)


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


def fault_point(name: str) -> None:
    """Exit the process here with the configured probability."""
    probability = _ACTIVE.get(name)
    if probability is not None and random.random() < probability:
        os._exit(137)
