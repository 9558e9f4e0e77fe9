"""Fixtures for end-to-end tests: a Runtime on the session Azurite with fast test timings."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest

from durable_ext.orchestration.executor import ReplayOptions
from durable_ext.runtime import Runtime
from durable_ext.worker import FunctionRegistry, WorkerOptions


def fast_options(**overrides: Any) -> WorkerOptions:
    """Timings for tests: quick polling and lease moves, short timer cap."""
    values: dict[str, Any] = {
        "max_queue_polling_interval": timedelta(milliseconds=500),
        "lease_interval": timedelta(seconds=15),
        "lease_renew_interval": timedelta(seconds=2),
        "lease_acquire_interval": timedelta(seconds=1),
        "shutdown_timeout": timedelta(seconds=5),
        "replay": ReplayOptions(),
    }
    values.update(overrides)
    return WorkerOptions(**values)


@pytest.fixture
async def runtime(azurite: Any, hub_name: str) -> AsyncIterator[Callable[..., Runtime]]:
    """A factory: `async with runtime(registry) as rt:` on this test's hub."""
    made: list[Runtime] = []

    def make(registry: FunctionRegistry, **options: Any) -> Runtime:
        rt = Runtime(
            registry,
            connection=azurite.connection_string,
            hub=hub_name,
            options=fast_options(**options),
        )
        made.append(rt)
        return rt

    yield make
