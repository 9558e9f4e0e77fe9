"""`settle_in_background`: the deletes of the messages a checkpoint applied run after it, so the
instance's next episode does not wait for them; a stop waits for them.

Every delete is stalled (stall point `inbound-delete`) until the chain has completed: with the
lever on, the chain completes anyway; each activity ran once and, once the stall ends, every
message is deleted. A stop while deletes are stalled waits for them: no message is left behind.
"""

from __future__ import annotations

import asyncio
from typing import Any

from durable_ext import DurableOrchestrationContext, OrchestrationRuntimeStatus
from durable_ext.fault_points import stalled
from durable_ext.runtime import Runtime
from durable_ext.worker import FunctionRegistry
from tests.storage.raw_state import RawStorage
from tests.wait import wait_for
from tests.worker.conftest import fast_options

STEPS = 3
DEADLINE = 60.0


def chain_registry(runs: dict[int, int]) -> FunctionRegistry:
    def chain(context: DurableOrchestrationContext) -> Any:
        total = 0
        for step in range(STEPS):
            total += yield context.call_activity("step", step)
        return total

    def step(value: int) -> int:
        runs[value] = runs.get(value, 0) + 1
        return value

    registry = FunctionRegistry()
    registry.add_orchestrator("chain", chain)
    registry.add_activity("step", step)
    return registry


async def queued_messages(rt: Runtime) -> int:
    queues = [*rt.hub.control_queues, rt.hub.work_items]
    return sum(await asyncio.gather(*(queue.count() for queue in queues)))


async def test_a_chain_completes_while_its_deletes_wait(azurite: Any, hub_name: str) -> None:
    runs: dict[int, int] = {}
    release = asyncio.Event()
    stalled_deletes = 0

    async def hold_deletes() -> None:
        nonlocal stalled_deletes
        stalled_deletes += 1
        await release.wait()

    options = fast_options(settle_in_background=True)
    async with Runtime(
        chain_registry(runs), connection=azurite.connection_string, hub=hub_name, options=options
    ) as rt:
        with stalled("inbound-delete", hold_deletes):
            await rt.client.start_new("chain", "chain")
            status = await rt.client.wait_for_completion("chain", timeout=DEADLINE)
            assert status.runtime_status is OrchestrationRuntimeStatus.Completed
            assert status.output == sum(range(STEPS))
            assert stalled_deletes >= STEPS, "every episode's deletes were still waiting"
            assert await queued_messages(rt) > 0, "the applied messages are not deleted yet"
            release.set()
            await wait_for(lambda: _none_left(rt), DEADLINE)
    assert runs == {step: 1 for step in range(STEPS)}


async def test_a_stop_waits_for_the_deletes(azurite: Any, raw: RawStorage, hub_name: str) -> None:
    """The deletes stay stalled until the stop has begun (the worker stopped polling): a stop
    that cancelled them instead of waiting would leave the applied messages in their queues."""
    runs: dict[int, int] = {}
    options = fast_options(settle_in_background=True)
    rt = Runtime(
        chain_registry(runs), connection=azurite.connection_string, hub=hub_name, options=options
    )
    await rt.__aenter__()
    assert rt.worker is not None
    dispatcher = rt.worker.orchestrations

    async def hold_until_stopping() -> None:
        await wait_for(lambda: not dispatcher.partitions, DEADLINE)

    try:
        with stalled("inbound-delete", hold_until_stopping):
            await rt.client.start_new("chain", "chain")
            await rt.client.wait_for_completion("chain", timeout=DEADLINE)
    finally:
        with stalled("inbound-delete", hold_until_stopping):
            await rt.__aexit__(None, None, None)
    h = hub_name.lower()
    names = [f"{h}-control-{i:02d}" for i in range(4)] + [f"{h}-workitems"]
    assert [await raw.message_count(name) for name in names] == [0] * len(names)
    assert runs == {step: 1 for step in range(STEPS)}


async def _none_left(rt: Runtime) -> bool:
    return await queued_messages(rt) == 0
