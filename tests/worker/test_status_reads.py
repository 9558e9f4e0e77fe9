"""Status reads answered in memory for the instances this process's worker owns
(`WorkerOptions.status_read_max_age`, durable_ext/storage/status_read_cache.py).

Repeated `get_status` and `raise_event` checks of an unchanged owned instance make no storage
read; a write by this process (a checkpoint's merge, the client's own purge) is seen at once; a
purge by a client in another process is seen within the max age.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from bench.counting import ACTOR, counting_connection
from durable_ext import DurableOrchestrationContext, OrchestrationRuntimeStatus
from durable_ext.runtime import Runtime
from durable_ext.storage.instance_store import InstanceRow
from durable_ext.storage.status_read_cache import StatusReadCache
from durable_ext.worker import FunctionRegistry
from tests.wait import wait_for
from tests.worker.conftest import fast_options

DEADLINE = 30.0


def waiting_registry() -> FunctionRegistry:
    def waiter(context: DurableOrchestrationContext) -> Any:
        first = yield context.wait_for_external_event("go")
        second = yield context.wait_for_external_event("go")
        return [first, second]

    registry = FunctionRegistry()
    registry.add_orchestrator("waiter", waiter)
    return registry


def _row() -> InstanceRow:
    fields: dict[str, Any] = {name: None for name in InstanceRow.__dataclass_fields__}
    fields |= {"instance_id": "i", "runtime_status": OrchestrationRuntimeStatus.Running}
    return InstanceRow(**fields)


def test_a_read_overtaken_by_a_write_is_not_kept() -> None:
    cache = StatusReadCache()
    cache.enable(lambda instance_id: instance_id != "elsewhere", max_age=60)
    began = cache.begin_read()
    cache.written("i")  # a merge completed while the read was on its way
    cache.store("i", began, _row(), payloads=True)
    assert cache.lookup("i", payloads=True) == (False, None)

    began = cache.begin_read()
    cache.store("i", began, _row(), payloads=False)
    assert cache.lookup("i", payloads=True) == (False, None), "read without its payloads"
    known, row = cache.lookup("i", payloads=False)
    assert known and row is not None and row.runtime_status is OrchestrationRuntimeStatus.Running
    cache.written("i")
    assert cache.lookup("i", payloads=False) == (False, None), "a write forgets the row"

    cache.store("elsewhere", cache.begin_read(), _row(), payloads=True)
    assert cache.lookup("elsewhere", payloads=True) == (False, None), "not owned here"


def test_rows_expire_and_evicted_writes_fence_older_reads() -> None:
    cache = StatusReadCache(capacity=2)
    cache.enable(lambda _: True, max_age=60)
    began = cache.begin_read()
    for name in ("a", "b", "c"):  # "a"'s write falls out of the record
        cache.written(name)
    cache.store("a", began, _row(), payloads=True)
    assert cache.lookup("a", payloads=True) == (False, None)
    cache.store("a", cache.begin_read(), None, payloads=True)
    assert cache.lookup("a", payloads=True) == (True, None), "no row is an answer too"

    cache.enable(lambda _: True, max_age=1e-9)
    cache.store("d", cache.begin_read(), _row(), payloads=True)
    assert cache.lookup("d", payloads=True) == (False, None), "older than the max age"


@pytest.mark.parametrize("max_age", [1.0, 0.0], ids=["in-memory", "off"])
async def test_repeated_status_reads_of_an_owned_instance_stay_in_memory(
    azurite: Any, hub_name: str, max_age: float
) -> None:
    connection, counters = counting_connection(azurite.connection_string)
    options = fast_options(status_read_max_age=timedelta(seconds=max_age))
    async with Runtime(
        waiting_registry(), connection=connection, hub=hub_name, options=options
    ) as rt:
        ACTOR.set("client")
        await rt.client.start_new("waiter", "w")
        await wait_for(lambda: _is_running(rt, "w"), DEADLINE)
        counters.reset()
        for _ in range(5):
            assert (await rt.client.get_status("w")).runtime_status.name == "Running"
        await rt.client.raise_event("w", "go", 1)
        reads = counters["client"].counts().get("table.get", 0)
        assert reads == (0 if max_age else 6)
        await rt.client.raise_event("w", "go", 2)
        status = await rt.client.wait_for_completion("w", timeout=DEADLINE, poll_interval=0.01)
        assert status.output == [1, 2], "the checkpoint's merge is seen at once"
        await rt.client.purge_instance_history("w")
        assert not await rt.client.get_status("w"), "this process's purge is seen at once"


async def test_a_purge_elsewhere_is_seen_within_the_max_age(
    azurite: Any, hub_name: str
) -> None:
    options = fast_options(status_read_max_age=timedelta(seconds=1))
    async with (
        Runtime(
            waiting_registry(), connection=azurite.connection_string, hub=hub_name, options=options
        ) as rt,
        Runtime(
            waiting_registry(),
            connection=azurite.connection_string,
            hub=hub_name,
            run_worker=False,
        ) as elsewhere,
    ):
        await rt.client.start_new("waiter", "p")
        await wait_for(lambda: _is_running(rt, "p"), DEADLINE)
        await rt.client.terminate("p", "done")
        await rt.client.wait_for_completion("p", timeout=DEADLINE, poll_interval=0.01)
        await elsewhere.client.purge_instance_history("p")
        await wait_for(lambda: _is_gone(rt, "p"), DEADLINE)


async def _is_running(rt: Runtime, instance_id: str) -> bool:
    status = await rt.client.get_status(instance_id)
    return status.runtime_status is OrchestrationRuntimeStatus.Running


async def _is_gone(rt: Runtime, instance_id: str) -> bool:
    return not await rt.client.get_status(instance_id)
