"""Timer triggers: fire each timer function on its schedule, as the host's timer listener does.

One loop per timer function; an invocation finishes before the next is scheduled (no overlap).
`runOnStartup` fires once when the host starts. When the clock has passed more than one
occurrence by the time a timer wakes (a suspended or scaled-in host), it fires once with
`past_due=True`. Times are UTC (`WEBSITE_TIME_ZONE` unset). Tests may use `ManualClock` to move
time by hand.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from azure.functions.timer import TimerRequest

from .ncrontab import Schedule

__all__ = ["Clock", "SystemClock", "ManualClock", "timer_request", "run_timer"]


class Clock(Protocol):
    """Where timers get the time and wait for it."""

    def now(self) -> datetime:
        """The current UTC time."""
        ...

    async def sleep_until(self, moment: datetime) -> None:
        """Return once `now() >= moment`."""
        ...


class SystemClock:
    """Real time."""

    def now(self) -> datetime:
        """The current UTC time."""
        return datetime.now(UTC)

    async def sleep_until(self, moment: datetime) -> None:
        """Sleep until `moment` (re-checking, since the loop may wake early)."""
        while (left := (moment - self.now()).total_seconds()) > 0:
            await asyncio.sleep(left)


class ManualClock:
    """Time that moves only when the test calls `advance`."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)
        self._moved = asyncio.Event()

    def now(self) -> datetime:
        """The clock's time."""
        return self._now

    async def sleep_until(self, moment: datetime) -> None:
        """Wait for `advance` calls until the clock reaches `moment`."""
        while self._now < moment:
            moved = self._moved
            await moved.wait()

    def advance(self, delta: timedelta) -> None:
        """Move time forward and wake the timers."""
        self._now += delta
        self._moved.set()
        self._moved = asyncio.Event()


def timer_request(past_due: bool, last: datetime | None, following: datetime) -> TimerRequest:
    """What the worker builds from the host's timer datum (`Schedule`, `ScheduleStatus`, `IsPastDue`)."""
    status = {
        "Last": (last or datetime.min.replace(tzinfo=UTC)).isoformat(),
        "Next": following.isoformat(),
        "LastUpdated": (last or following).isoformat(),
    }
    return TimerRequest(past_due=past_due, schedule_status=status, schedule={"AdjustForDST": True})


async def run_timer(
    schedule: Schedule,
    clock: Clock,
    started: datetime,
    run_on_startup: bool,
    fire: Callable[[TimerRequest], Awaitable[object]],
) -> None:
    """Fire `fire` on every occurrence of `schedule` after `started` until cancelled."""
    last: datetime | None = None
    anchor = started
    if run_on_startup:
        await fire(timer_request(False, None, schedule.next_after(started)))
        last = started
    while True:
        due = schedule.next_after(anchor)
        await clock.sleep_until(due)
        now = clock.now()
        past_due = now >= schedule.next_after(due)
        await fire(timer_request(past_due, last, schedule.next_after(now)))
        last, anchor = due, max(now, due)
