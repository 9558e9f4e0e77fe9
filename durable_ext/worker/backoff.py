"""Queue polling back-off: about 50 ms growing to the maximum interval, reset by new work."""

from __future__ import annotations

import asyncio
import contextlib
import random

__all__ = ["PollingBackoff"]


class PollingBackoff:
    """Randomised exponential back-off for empty polls (DTFx `BackoffPollingHelper`)."""

    def __init__(self, maximum: float, minimum: float = 0.05) -> None:
        self._minimum = minimum
        self._maximum = maximum
        self._attempt = 0

    def reset(self) -> None:
        self._attempt = 0

    def next_delay(self) -> float:
        self._attempt += 1
        if self._attempt == 1:
            return self._minimum
        delay = self._minimum + self._minimum * (2 ** (self._attempt - 2)) * random.uniform(
            0.8, 1.2
        )
        return min(delay, self._maximum)

    async def wait(self, wake: asyncio.Event) -> None:
        """Sleep for the next delay, or less if `wake` is set (then the back-off resets)."""
        delay = self.next_delay()
        if wake.is_set():
            wake.clear()
            self.reset()
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), delay)
        if wake.is_set():
            wake.clear()
            self.reset()
