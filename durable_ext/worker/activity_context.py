"""The `context` argument an activity may declare, as any Azure Functions function can."""

from __future__ import annotations

import inspect
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from .registry import RegisteredActivity

__all__ = ["ActivityContext", "activity_context"]


@dataclass(frozen=True)
class ActivityContext:
    """Shaped like the Python worker's `func.Context` (the engine, not the host, runs activities:
    `trace_context` and `retry_context` are None), plus the calling orchestration's instance id."""

    invocation_id: str
    function_name: str
    function_directory: str
    instance_id: str
    trace_context: None = None
    retry_context: None = None
    thread_local_storage: threading.local = field(default_factory=threading.local)


def activity_context(activity: RegisteredActivity, instance_id: str) -> ActivityContext:
    """A new context for one execution of `activity` scheduled by `instance_id`."""
    try:
        source = inspect.getsourcefile(activity.function)
    except TypeError:
        source = None
    return ActivityContext(
        invocation_id=str(uuid.uuid4()),
        function_name=activity.name,
        function_directory=str(Path(source).parent) if source else "",
        instance_id=instance_id,
    )
