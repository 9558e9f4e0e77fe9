"""What the dispatchers offer each other for in-process handoff (no receive round trip)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from ..storage.queues import ReceivedMessage

__all__ = ["ActivityHandoff", "OrchestrationHandoff"]


class ActivityHandoff(Protocol):
    """The activity dispatcher, as the orchestration dispatcher sees it."""

    def try_reserve(self) -> bool: ...

    def release(self) -> None: ...

    def submit(self, message: ReceivedMessage, reserved: bool = False) -> None: ...


class OrchestrationHandoff(Protocol):
    """The orchestration dispatcher, as the activity dispatcher sees it."""

    def owns(self, instance_id: str) -> bool: ...

    def submit(self, messages: Iterable[ReceivedMessage]) -> None: ...
