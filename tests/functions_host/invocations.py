"""The record of every invocation the fake host made, which tests can wait on."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["Invocation", "InvocationLog"]


@dataclass
class Invocation:
    """One invocation: which function, why, and how it ended."""

    function: str
    invocation_id: str
    trigger: str
    started: datetime
    trigger_value: Any = None
    finished: datetime | None = None
    result: Any = None
    error: BaseException | None = None
    outputs: dict[str, Any] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        """Finished without an exception."""
        return self.finished is not None and self.error is None


class InvocationLog:
    """Invocations in start order; `wait_for` blocks until one matches (with a deadline)."""

    def __init__(self) -> None:
        self.entries: list[Invocation] = []
        self._changed: asyncio.Condition | None = None

    def _condition(self) -> asyncio.Condition:
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    async def notify(self) -> None:
        """Wake waiters after an entry was added or finished."""
        async with self._condition():
            self._condition().notify_all()

    def of(self, function: str) -> list[Invocation]:
        """The invocations of `function` so far."""
        return [i for i in self.entries if i.function.lower() == function.lower()]

    async def wait_for(
        self, predicate: Callable[[Invocation], bool], timeout: float = 10.0
    ) -> Invocation:
        """The first finished invocation matching `predicate`; TimeoutError after `timeout` s."""

        def found() -> Invocation | None:
            return next((i for i in self.entries if i.finished and predicate(i)), None)

        condition = self._condition()
        async with asyncio.timeout(timeout), condition:
            await condition.wait_for(lambda: found() is not None)
        result = found()
        assert result is not None
        return result
