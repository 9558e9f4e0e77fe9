"""An instance's history for the dashboard: every event with all its DTFx fields and exact times
(the status API's `showHistory` view hides events and rounds times to the second)."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

from ..orchestration.history import HistoryEvent, format_time

__all__ = ["history_events"]


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, Enum):
        return value.name
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def history_events(events: list[HistoryEvent]) -> list[dict[str, Any]]:
    """The events as JSON objects: DTFx field names, `EventType` by name, times as ISO-8601 with
    7 fractional digits; inputs and results stay the JSON text they are stored as."""
    out = []
    for event in events:
        fields = _plain(event.to_fields())
        fields["EventType"] = event.event_type.name
        out.append(fields)
    return out
