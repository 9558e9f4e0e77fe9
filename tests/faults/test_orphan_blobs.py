"""A checkpoint that loses to another writer leaves no orphan blob, and never costs the winner its own.

Property blob names carry a random suffix, so a checkpoint that fails (here: 412, a newer owner
checkpointed first) leaves the blobs it uploaded behind, and its retry uploads new ones. Once the
retry commits, the first attempt's blob is deleted, as no committed row references it; the blob the
newer owner's committed row references stays. (A transaction that failed may also have landed, its
response lost: so nothing is deleted before a later checkpoint has committed and the committed rows
have been checked.)
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

from durable_ext import DurableOrchestrationContext
from durable_ext.fault_points import stalled
from durable_ext.orchestration.history import (
    EventRaised,
    ExecutionStarted,
    OrchestratorCompleted,
    OrchestratorStarted,
)
from durable_ext.orchestration.status import OrchestrationRuntimeStatus
from durable_ext.runtime import Runtime
from durable_ext.storage.task_hub import TaskHub
from durable_ext.worker import FunctionRegistry
from tests.azurite import AzuriteInstance
from tests.storage.raw_state import RawStorage, wait_until
from tests.storage.test_payload_blobs import PAD, Blobs
from tests.worker.conftest import fast_options

DEADLINE = 15.0


def two_events(ctx: DurableOrchestrationContext) -> Any:
    first = yield ctx.wait_for_external_event("first")
    second = yield ctx.wait_for_external_event("second")
    return [len(first), len(second)]


async def test_the_losing_checkpoints_blob_goes_and_the_winners_stays(
    azurite: AzuriteInstance, raw: RawStorage, hub_name: str
) -> None:
    registry = FunctionRegistry()
    registry.add_orchestrator("two_events", two_events)
    instance_id = "orphans"
    blobs = Blobs(raw, hub_name, instance_id)
    reached = asyncio.Event()
    resume = asyncio.Event()

    async def hold_once() -> None:
        if not reached.is_set():
            reached.set()
            await resume.wait()

    connection = azurite.connection_string
    async with Runtime(registry, connection=connection, hub=hub_name, options=fast_options()) as rt:
        await rt.client.start_new("two_events", instance_id)

        async def running() -> bool:
            row = await rt.hub.instances.get(instance_id, fetch_payloads=False)
            return row is not None and row.runtime_status is OrchestrationRuntimeStatus.Running

        await wait_until(running, timeout=DEADLINE, what="the first checkpoint")
        with stalled("after-outbound-send", hold_once):
            await rt.client.raise_event(instance_id, "first", "f" * PAD)
            await asyncio.wait_for(reached.wait(), DEADLINE)

            # The newer owner checkpoints first, with a large payload of its own.
            async with TaskHub(rt.hub.connection, hub_name) as owner:
                loaded = await owner.history.load(instance_id)
                assert loaded.execution_id is not None
                assert isinstance(loaded.events[1], ExecutionStarted)
                now = datetime.now(UTC)
                rows = [
                    OrchestratorStarted(timestamp=now),
                    EventRaised(timestamp=now, name="second", input=json.dumps("s" * PAD)),
                    OrchestratorCompleted(timestamp=now),
                ]
                await owner.history.append(
                    instance_id, loaded.execution_id, rows, len(loaded.events), loaded.etag
                )
            winners = await blobs.rows()
            assert len(winners) == 1, winners
            resume.set()  # the stalled checkpoint uploads its blob, then gets 412

            status = await rt.client.wait_for_completion(instance_id, timeout=DEADLINE)
        assert status.runtime_status.value == "Completed", status.to_json()
        assert status.output == [PAD, PAD]

        async def only_referenced_blobs() -> bool:
            return await blobs.stored() == await blobs.rows()

        await wait_until(only_referenced_blobs, timeout=DEADLINE, what="the orphan's deletion")
        referenced = await blobs.rows()
    assert winners < referenced, "the newer owner's blob and the retry's are both kept"
    assert len(referenced) == 2, referenced
