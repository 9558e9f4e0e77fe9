"""An episode of a cached instance costs its new events, not its whole history (issue 10, point 6).

A chain orchestration is advanced to step N in memory (the same replay code the worker runs, through
the seeding that `bench/episode.py` measures CPU per episode with), its
history written to storage as the worker would have written it, and the worker's instance cache
given that executor, with the history in a list that counts every event read from it. Then one
real activity result arrives through the queue, and the worker runs one episode and checkpoint.
The events it touched must be a small multiple of the episode's new events, the same at step 100
as at step 10,000.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any, SupportsIndex, overload

import pytest

from bench.episode import CHAIN, STEP, advance, episode_chain
from durable_ext import OrchestrationRuntimeStatus
from durable_ext.clock import utc_now
from durable_ext.orchestration.history import (
    HistoryEvent,
    OrchestrationInstance,
    TaskCompleted,
)
from durable_ext.orchestration.history_summary import HistorySummary
from durable_ext.runtime import Runtime
from durable_ext.storage.history_store import LoadedHistory
from durable_ext.storage.instance_store import InstanceColumns
from durable_ext.storage.messages import MessageData
from durable_ext.worker import FunctionRegistry
from durable_ext.worker.instance_cache import CachedInstance
from tests.azurite import AzuriteInstance
from tests.storage.raw_state import wait_until
from tests.worker.conftest import fast_options

DEADLINE = 60.0
NEW_EVENTS = 4
"""OrchestratorStarted, TaskCompleted, ExecutionCompleted, OrchestratorCompleted."""
MAX_TOUCHES_PER_NEW_EVENT = 4


class CountingList(list[HistoryEvent]):
    """A history that counts the events read from it (iteration, indexing, slicing)."""

    touched = 0

    def __iter__(self) -> Iterator[HistoryEvent]:
        for event in super().__iter__():
            self.touched += 1
            yield event

    def __reversed__(self) -> Iterator[HistoryEvent]:
        for event in super().__reversed__():
            self.touched += 1
            yield event

    @overload
    def __getitem__(self, index: SupportsIndex) -> HistoryEvent: ...

    @overload
    def __getitem__(self, index: slice) -> list[HistoryEvent]: ...

    def __getitem__(self, index: Any) -> Any:
        result = super().__getitem__(index)
        self.touched += len(result) if isinstance(index, slice) else 1
        return result


@pytest.mark.parametrize("steps", [100, pytest.param(10_000, marks=pytest.mark.slow)])
async def test_a_cached_episode_touches_only_its_new_events(
    azurite: AzuriteInstance, hub_name: str, steps: int
) -> None:
    instance_id, execution_id = f"chain-{steps}", "e" * 32
    chain = advance(instance_id, execution_id, steps, total=steps, windows=(), width=0)
    executor, events = chain.executor, chain.events
    registry = FunctionRegistry()
    registry.add_orchestrator(CHAIN, episode_chain)
    registry.add_activity(STEP, lambda step: step)
    options = fast_options(instance_cache_idle_timeout=timedelta(minutes=5))
    async with Runtime(
        registry, connection=azurite.connection_string, hub=hub_name, options=options
    ) as rt:
        assert rt.worker is not None
        etag = await rt.hub.history.append(instance_id, execution_id, events, 0, None)
        await rt.hub.instances.merge(
            instance_id,
            InstanceColumns(
                name=CHAIN,
                execution_id=execution_id,
                runtime_status=OrchestrationRuntimeStatus.Running,
                created_time=events[1].timestamp,
            ),
        )
        dispatcher = rt.worker.orchestrations

        async def owned() -> bool:
            return dispatcher.owns(instance_id)

        await wait_until(owned, timeout=DEADLINE, what="the worker to own the partition")
        seeded = len(events)
        history = CountingList(events)
        stored = LoadedHistory(history, etag, execution_id)
        dispatcher.cache.put(
            instance_id, CachedInstance(executor, stored, HistorySummary.of(events))
        )
        last = TaskCompleted(
            timestamp=utc_now(), task_scheduled_id=steps - 1, result=json.dumps(steps - 1)
        )
        target = OrchestrationInstance(instance_id, execution_id)
        await rt.hub.send_to_instance(MessageData(last, target, steps, target))
        status = await rt.client.wait_for_completion(instance_id, timeout=DEADLINE)
        stored_events = (await rt.hub.history.load(instance_id)).events

    assert status.runtime_status is OrchestrationRuntimeStatus.Completed, status.to_json()
    assert status.output == steps
    assert len(stored_events) == seeded + NEW_EVENTS, "the episode's events were not all stored"
    assert history.touched <= MAX_TOUCHES_PER_NEW_EVENT * NEW_EVENTS, (
        f"one episode at step {steps} touched {history.touched} history events"
    )
