"""Instances per runtime status, counted up to a cap: Azure Tables cannot count cheaply, so each
status is read (keys and status columns only) until the cap, and the answer says when it stopped."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from ..orchestration.status import OrchestrationRuntimeStatus
from ..storage.instance_store import InstanceQuery
from ..storage.task_hub import TaskHub

__all__ = ["COUNT_CAP", "status_counts"]

COUNT_CAP = 1000
"""The most instances counted per status; more shows as "1,000+"."""
_PAGE = 1000


async def _count(hub: TaskHub, query: InstanceQuery, cap: int) -> tuple[int, bool]:
    """(count, capped): instances matching `query`, counted up to `cap`."""
    count, token = 0, None
    while True:
        rows, token = await hub.instances.query(
            query, page_size=min(_PAGE, cap - count + 1), continuation=token
        )
        count += len(rows)
        if count > cap:
            return cap, True
        if not token:
            return count, False


async def status_counts(
    hub: TaskHub, query: InstanceQuery, cap: int = COUNT_CAP
) -> list[dict[str, Any]]:
    """One entry per runtime status (those of `query.runtime_status`, or all):
    `{"runtimeStatus", "count", "capped"}`; `capped` means there are more than `count`."""
    statuses = list(query.runtime_status or OrchestrationRuntimeStatus)
    base = replace(query, fetch_inputs_and_outputs=False)
    counted = await asyncio.gather(
        *(_count(hub, replace(base, runtime_status=[status]), cap) for status in statuses)
    )
    return [
        {"runtimeStatus": status.value, "count": count, "capped": capped}
        for status, (count, capped) in zip(statuses, counted, strict=True)
    ]
