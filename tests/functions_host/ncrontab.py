"""NCRONTAB schedules as the Functions timer trigger reads them: six fields, seconds first.

`{second} {minute} {hour} {day} {month} {day-of-week}`; each field is `*`, a number, a range `a-b`,
a list `a,b`, with an optional step `/n`; months and days of week also by three-letter name
(`Jan`, `Mon`); day of week 0-6 from Sunday (7 is Sunday too). As in the NCrontab library the
timer trigger uses, a time matches only when *every* field matches (day and day of week both).
A `hh:mm:ss` TimeSpan (allowed on Dedicated plans) is a fixed interval.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["Schedule", "ScheduleError", "parse_schedule"]

_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
_FIELDS = (  # (name, low, high, names)
    ("second", 0, 59, None),
    ("minute", 0, 59, None),
    ("hour", 0, 23, None),
    ("day", 1, 31, None),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)
_TIMESPAN = re.compile(r"^(\d+\.)?(\d{1,2}):(\d{2}):(\d{2})$")
_HORIZON = timedelta(days=366 * 5)


class ScheduleError(ValueError):
    """A schedule the timer trigger would refuse."""


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule: allowed values per field, or a fixed interval."""

    expression: str
    fields: tuple[frozenset[int], ...] = ()
    interval: timedelta | None = None

    def next_after(self, moment: datetime) -> datetime:
        """The first occurrence strictly after `moment` (same tzinfo, whole seconds)."""
        start = moment.replace(microsecond=0) + timedelta(seconds=1)
        if self.interval is not None:
            return moment + self.interval
        seconds, minutes, hours, days, months, weekdays = self.fields
        t = start
        while t - start < _HORIZON:
            if t.month not in months:
                t = (t.replace(day=1) + timedelta(days=32)).replace(
                    day=1, hour=0, minute=0, second=0
                )
            elif t.day not in days or (t.weekday() + 1) % 7 not in weekdays:
                t = (t + timedelta(days=1)).replace(hour=0, minute=0, second=0)
            elif t.hour not in hours:
                t = (t + timedelta(hours=1)).replace(minute=0, second=0)
            elif t.minute not in minutes:
                t = (t + timedelta(minutes=1)).replace(second=0)
            elif t.second not in seconds:
                t += timedelta(seconds=1)
            else:
                return t
        raise ScheduleError(f"{self.expression!r} never occurs")


def _value(text: str, low: int, high: int, names: list[str] | None, field: str) -> int:
    if names and text.lower() in names:
        return names.index(text.lower()) + (1 if names is _MONTHS else 0)
    if not text.isdigit() or not low <= int(text) <= high:
        raise ScheduleError(f"invalid {field} value {text!r}")
    return int(text)


def _field(text: str, low: int, high: int, names: list[str] | None, field: str) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        body, _, step_text = part.partition("/")
        step = _value(step_text, 1, high, None, field) if step_text else 1
        if body == "*":
            first, last = low, high
        elif "-" in body:
            a, _, b = body.partition("-")
            first, last = _value(a, low, high, names, field), _value(b, low, high, names, field)
        else:
            first = _value(body, low, high, names, field)
            last = high if step_text else first
        if first > last:
            raise ScheduleError(f"invalid {field} range {body!r}")
        values.update(range(first, last + 1, step))
    if field == "day of week" and 7 in values:
        values = (values - {7}) | {0}
    return frozenset(values)


def parse_schedule(expression: str) -> Schedule:
    """Parse a timer trigger schedule (NCRONTAB six fields, or a `hh:mm:ss` interval)."""
    text = expression.strip()
    span = _TIMESPAN.match(text)
    if span:
        days, hours, minutes, seconds = span.groups()
        interval = timedelta(
            days=int((days or "0.")[:-1]),
            hours=int(hours),
            minutes=int(minutes),
            seconds=int(seconds),
        )
        if interval <= timedelta(0):
            raise ScheduleError(f"{expression!r}: the interval must be positive")
        return Schedule(expression, interval=interval)
    parts = text.split()
    if len(parts) != 6:
        raise ScheduleError(
            f"{expression!r} is not a valid NCRONTAB expression (6 fields, seconds first)"
        )
    fields = tuple(
        _field(part, low, high, names, name)
        for part, (name, low, high, names) in zip(parts, _FIELDS, strict=True)
    )
    return Schedule(expression, fields=fields)
