"""The engine's wall clock, with a fault-injection hook for clock jumps and skew.

Every wall-clock read of the worker (episode timestamps, activity results, checkpoint times) goes
through `utc_now()`: the real time plus an offset. The offset starts from
`DURABLE_EXT_FAULT_CLOCK_OFFSET` (seconds, a float, may be negative; unset, always outside tests,
it is zero), so worker processes of one hub can run with skewed clocks; tests jump the clock of
their own process with `shift()` and put it back with `reset()`. The client keeps the real clock.

Orchestrations do not see the jumps: an episode's clock never goes backwards and, once a timer has
fired, is at least its fire time; timer delays are measured on that clock, not on this one.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

__all__ = ["OFFSET_ENV", "offset", "parse_offset", "reset", "shift", "utc_now"]

OFFSET_ENV = "DURABLE_EXT_FAULT_CLOCK_OFFSET"


def parse_offset(value: str | None) -> timedelta:
    """The offset `value` (seconds, as in `DURABLE_EXT_FAULT_CLOCK_OFFSET`) stands for."""
    if value is None or not value.strip():
        return timedelta(0)
    try:
        return timedelta(seconds=float(value))
    except (ValueError, OverflowError):
        raise ValueError(f"{OFFSET_ENV} must be a number of seconds, got {value!r}") from None


_INITIAL = parse_offset(os.environ.get(OFFSET_ENV))
_offset = _INITIAL


def utc_now() -> datetime:
    """The current time as this process's engine sees it: aware UTC, real time plus the offset."""
    return datetime.now(UTC) + _offset


def offset() -> timedelta:
    """The current offset from the real time."""
    return _offset


def shift(by: timedelta) -> None:
    """Jump the clock by `by` (negative: backwards), on top of any earlier shift."""
    global _offset
    _offset += by


def reset() -> None:
    """Undo every `shift()`: back to the offset the process started with (the environment's)."""
    global _offset
    _offset = _INITIAL
