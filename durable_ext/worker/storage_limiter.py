"""A worker-wide bound on concurrent storage operations (DTFx `MaxStorageOperationConcurrency`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import ParamSpec, TypeVar

__all__ = ["StorageLimiter"]

P = ParamSpec("P")
T = TypeVar("T")


class StorageLimiter:
    """At most `limit` storage operations of this worker at once; the others wait their turn.

    Hold it for one storage call only, never while waiting for other work (two holders waiting
    on each other would deadlock)::

        async with limiter:
            await queue.renew(message, visibility)

        await asyncio.gather(*(limiter.run(queue.delete, m) for m in messages))
    """

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"max_storage_operation_concurrency must be at least 1, got {limit}")
        self.limit = limit
        self._semaphore = asyncio.Semaphore(limit)

    async def __aenter__(self) -> None:
        await self._semaphore.acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._semaphore.release()

    async def run(
        self, operation: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """`await operation(*args, **kwargs)` once a slot is free (the call starts only then)."""
        async with self:
            return await operation(*args, **kwargs)
