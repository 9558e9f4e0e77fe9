"""NCRONTAB schedules: six fields, seconds first, every field must match."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.functions_host.ncrontab import ScheduleError, parse_schedule

T0 = datetime(2026, 3, 2, 10, 4, 59, tzinfo=UTC)  # a Monday


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("* * * * * *", datetime(2026, 3, 2, 10, 5, 0, tzinfo=UTC)),
        ("0 */5 * * * *", datetime(2026, 3, 2, 10, 5, 0, tzinfo=UTC)),
        ("30 5 10 * * *", datetime(2026, 3, 2, 10, 5, 30, tzinfo=UTC)),
        ("0 0 9 * * Mon-Fri", datetime(2026, 3, 3, 9, 0, 0, tzinfo=UTC)),
        ("0 0 0 1 Jan *", datetime(2027, 1, 1, tzinfo=UTC)),
        ("0 0 12 * * 0", datetime(2026, 3, 8, 12, tzinfo=UTC)),
        ("0 0 12 * * 7", datetime(2026, 3, 8, 12, tzinfo=UTC)),
        ("0 0 0 13 * 5", datetime(2026, 3, 13, tzinfo=UTC)),  # day AND weekday: a Friday 13th
        ("00:10:00", T0 + timedelta(minutes=10)),
    ],
)
def test_next_occurrence(expression: str, expected: datetime) -> None:
    assert parse_schedule(expression).next_after(T0) == expected


@pytest.mark.parametrize(
    "expression", ["* * * * *", "61 * * * * *", "0 0 0 * Foo *", "5-1 * * * * *"]
)
def test_invalid_schedules_are_refused(expression: str) -> None:
    with pytest.raises(ScheduleError):
        parse_schedule(expression)
