"""History property blobs of a replaced execution are deleted once the next checkpoint commits.

A continue-as-new writes the new execution over the old one's rows; the old rows' large-payload
blobs (`{key}/history-{RowKey}-{EventType}-{RAND}-{Prop}.json.gz`) are then referenced by no row
a reader can reach. As DTFx does (reference §5.5 step 4), they are deleted after the new
execution's checkpoint; a blob that cannot be deleted never fails the checkpoint and is tried again
after the next one. Queue-message blobs and the Instances row's blobs are not history property
blobs (docs/payload-blobs.md) and are left alone here.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

from azure.storage.blob.aio import BlobClient, BlobLeaseClient

from durable_ext import DurableOrchestrationContext
from durable_ext.orchestration.history import ExecutionStarted, TaskCompleted
from durable_ext.runtime import Runtime
from durable_ext.storage.history_store import LARGE_COLUMNS
from durable_ext.storage.keys import escape_key
from durable_ext.worker import FunctionRegistry
from tests.azurite import AzuriteInstance
from tests.storage.raw_state import RawStorage, wait_until
from tests.worker.conftest import fast_options

DEADLINE = 15.0
PAD = 40_000
"""Characters of a large payload: 80 KB in UTF-16, past the 60 KiB table-property limit."""
BLOB_NAME_COLUMNS = [f"{column}BlobName" for column in LARGE_COLUMNS]


def generations(ctx: DurableOrchestrationContext) -> Any:
    """A large input and a large activity result per execution; generation 0 waits for "next"
    and continues as new, generation 1 waits for "finish" and returns its lengths."""
    spec = ctx.get_input()
    result = yield ctx.call_activity("pad", spec["generation"])
    if spec["generation"] == 0:
        yield ctx.wait_for_external_event("next")
        ctx.continue_as_new({"generation": 1, "pad": "b" * PAD})
        return None
    yield ctx.wait_for_external_event("finish")
    return [len(spec["pad"]), len(result)]


def registry() -> FunctionRegistry:
    functions = FunctionRegistry()
    functions.add_orchestrator("generations", generations)
    functions.add_activity("pad", lambda generation: str(generation) * PAD)
    return functions


class Blobs:
    """The history property blobs of one instance: in its rows, and in the container."""

    def __init__(self, raw: RawStorage, hub_name: str, instance_id: str) -> None:
        self.raw = raw
        self.table = f"{hub_name}History"
        self.container = f"{hub_name.lower()}-largemessages"
        self.key = escape_key(instance_id)

    async def rows(self, execution_id: str | None = None) -> set[str]:
        """Blob names the instance's rows reference (of one execution, or of any)."""
        rows = await self.raw.partition(self.table, self.key)
        return {
            row[column]
            for row in rows
            for column in BLOB_NAME_COLUMNS
            if row.get(column) and execution_id in (None, row["ExecutionId"])
        }

    async def stored(self) -> set[str]:
        """History property blobs in the container (not queue-message or Instances-row blobs)."""
        names = await self.raw.blob_names(self.container)
        prefix = f"{self.key}/history-"
        return {n for n in names if n.startswith(prefix) and not n.startswith(prefix + "-")}

    async def sentinel_execution(self) -> str:
        rows = await self.raw.partition(self.table, self.key)
        return str(rows[-1]["ExecutionId"])


async def _old_generation_waiting(rt: Runtime, blobs: Blobs, instance_id: str) -> set[str]:
    """Once generation 0 waits for "next": the blobs its rows reference (input and result)."""

    async def waiting() -> bool:
        events = await rt.client.get_history(instance_id)
        return any(isinstance(e, TaskCompleted) for e in events)

    await wait_until(waiting, timeout=DEADLINE, what="generation 0 to wait for 'next'")
    old = await blobs.rows()
    assert len(old) >= 2, f"the large input and result went to blobs: {old}"
    assert old <= await blobs.stored()
    return old


async def _new_generation_waiting(rt: Runtime, blobs: Blobs, instance_id: str) -> str:
    """Once generation 1 has its activity result (its second checkpoint): its ExecutionId."""

    async def waiting() -> bool:
        events = await rt.client.get_history(instance_id)
        started = [e for e in events if isinstance(e, ExecutionStarted)]
        generation = json.loads(started[0].input or "{}")["generation"] if started else 0
        return generation == 1 and any(isinstance(e, TaskCompleted) for e in events)

    await wait_until(waiting, timeout=DEADLINE, what="generation 1 to wait for 'finish'")
    return await blobs.sentinel_execution()


async def test_continue_as_new_deletes_the_old_executions_history_blobs(
    azurite: AzuriteInstance, raw: RawStorage, hub_name: str
) -> None:
    instance_id = "big-generations"
    blobs = Blobs(raw, hub_name, instance_id)
    connection = azurite.connection_string
    async with Runtime(
        registry(), connection=connection, hub=hub_name, options=fast_options()
    ) as rt:
        await rt.client.start_new("generations", instance_id, {"generation": 0, "pad": "a" * PAD})
        old = await _old_generation_waiting(rt, blobs, instance_id)

        await rt.client.raise_event(instance_id, "next")
        new_execution = await _new_generation_waiting(rt, blobs, instance_id)

        async def old_blobs_gone() -> bool:
            return not old & await blobs.stored()

        await wait_until(old_blobs_gone, timeout=DEADLINE, what="the old execution's blobs")
        in_use = await blobs.rows(new_execution)
        assert len(in_use) >= 2 and in_use <= await blobs.stored()
        events = await rt.client.get_history(instance_id)
        started = next(e for e in events if isinstance(e, ExecutionStarted))
        assert started.input is not None and '"b' in started.input

        await rt.client.raise_event(instance_id, "finish")
        status = await rt.client.wait_for_completion(instance_id, timeout=DEADLINE)
    assert status.runtime_status.value == "Completed", status.to_json()
    assert status.output == [PAD, PAD]


async def test_a_blob_that_cannot_be_deleted_is_tried_again_after_the_next_checkpoint(
    azurite: AzuriteInstance, raw: RawStorage, hub_name: str
) -> None:
    """A leased blob refuses deletion (412 without the lease id): the continue-as-new checkpoint
    still completes and the new execution runs on; once the lease is gone, the checkpoint after
    the next deletes it."""
    instance_id = "big-leased"
    blobs = Blobs(raw, hub_name, instance_id)
    connection = azurite.connection_string
    async with Runtime(
        registry(), connection=connection, hub=hub_name, options=fast_options()
    ) as rt:
        await rt.client.start_new("generations", instance_id, {"generation": 0, "pad": "a" * PAD})
        old = await _old_generation_waiting(rt, blobs, instance_id)
        leased = sorted(old)[0]
        blob = BlobClient.from_connection_string(connection, blobs.container, leased)
        async with blob:
            lease = BlobLeaseClient(blob)
            await lease.acquire(-1)

            await rt.client.raise_event(instance_id, "next")
            await _new_generation_waiting(rt, blobs, instance_id)

            async def others_gone() -> bool:
                return old & await blobs.stored() == {leased}

            await wait_until(others_gone, timeout=DEADLINE, what="the unleased old blobs")
            await lease.release()

        await rt.client.raise_event(instance_id, "finish")
        status = await rt.client.wait_for_completion(instance_id, timeout=DEADLINE)

        async def leased_gone() -> bool:
            return leased not in await blobs.stored()

        await wait_until(leased_gone, timeout=DEADLINE, what="the once-leased blob")
    assert status.runtime_status.value == "Completed", status.to_json()
    assert status.output == [PAD, PAD]


async def test_the_instances_row_shares_the_history_rows_input_blob(
    azurite: AzuriteInstance, raw: RawStorage, hub_name: str
) -> None:
    """A large input (under the queue limit, over the property limit): the client's Pending row
    stores it in a blob of its own (`{key}/history--Input-…`); the first checkpoint points the
    row at the ExecutionStarted row's blob instead (as DTFx does) and deletes the Pending copy.
    After continue-as-new the row points at the new execution's blob and the old one is gone."""
    instance_id = "big-row-input"
    blobs = Blobs(raw, hub_name, instance_id)
    row_blobs = f"{blobs.key}/history--"

    async def row_input_blobs() -> set[str]:
        return {n for n in await raw.blob_names(blobs.container) if n.startswith(row_blobs)}

    async def row_input() -> str:
        (row,) = await raw.partition(f"{hub_name}Instances", blobs.key)
        return unquote(str(row["Input"])).split(f"/{blobs.container}/", 1)[1]

    connection = azurite.connection_string
    async with Runtime(
        registry(), connection=connection, hub=hub_name, options=fast_options(), run_worker=False
    ) as rt:
        await rt.client.start_new("generations", instance_id, {"generation": 0, "pad": "a" * PAD})
    assert len(await row_input_blobs()) == 1, "the Pending row's own copy"
    async with Runtime(
        registry(), connection=connection, hub=hub_name, options=fast_options()
    ) as rt:
        old = await _old_generation_waiting(rt, blobs, instance_id)

        async def pending_copy_gone() -> bool:
            return not await row_input_blobs()

        await wait_until(pending_copy_gone, timeout=DEADLINE, what="the Pending row's copy to go")
        first_input = await row_input()
        assert first_input in old, "the row points at the ExecutionStarted row's blob"

        await rt.client.raise_event(instance_id, "next")
        new_execution = await _new_generation_waiting(rt, blobs, instance_id)

        async def replaced() -> bool:
            return first_input not in await blobs.stored()

        await wait_until(replaced, timeout=DEADLINE, what="the old execution's input blob to go")
        assert await row_input() in await blobs.rows(new_execution)
        assert not await row_input_blobs()
        status = await rt.client.get_status(instance_id, show_input=True)

    assert status.input_ == {"generation": 1, "pad": "b" * PAD}
