"""Entities end to end on Azurite: calls and signals from orchestrations and the client, rollback
of a failed operation, class-based entities, critical sections."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import durable_ext as df
from durable_ext import OrchestrationRuntimeStatus
from durable_ext.orchestration.entity_messages import RequestMessage, SchedulerState
from durable_ext.orchestration.history import EventRaised, OrchestrationInstance
from durable_ext.storage.messages import MessageData
from tests.wait import wait_for

from .entity_apps import app

COMPLETED = OrchestrationRuntimeStatus.Completed


async def _state(client: Any, entity: df.EntityId, expected: Any) -> bool:
    read = await client.read_entity_state(entity)
    return read.entity_exists and read.entity_state == expected


async def test_orchestration_calls_and_signals_an_entity(runtime: Any) -> None:
    async with runtime(app.durable_registry) as rt:
        seen: list[tuple[str, str, bool]] = []
        rt.worker.orchestrations.entities.on_operation = lambda entity, outcome: seen.append(
            (entity, outcome.request.name, outcome.is_error)
        )
        instance_id = await rt.client.start_new("call_and_signal", None, "k1")
        status = await rt.client.wait_for_completion(instance_id, 30)
        assert status.runtime_status is COMPLETED, status.output
        assert status.output == {
            "first": 15,
            "error": ["failed after adding", "add_then_fail"],
            "after": 15,
            "balance": 7,
        }
        # the failed operation's signal to Counter@side was not sent
        assert not (await rt.client.read_entity_state(df.EntityId("Counter", "side"))).entity_exists
        assert ("@counter@k1", "add_then_fail", True) in seen  # the tracking-event hook
        assert [name for entity, name, _ in seen if entity == "@counter@k1"] == [
            "add",
            "add",
            "get",
            "add_then_fail",
            "get",
        ]


async def test_client_signals_and_reads(runtime: Any) -> None:
    async with runtime(app.durable_registry) as rt:
        counter = df.EntityId("Counter", "c")
        missing = await rt.client.read_entity_state(counter)
        assert (missing.entity_exists, missing.entity_state) == (False, None)
        for amount in range(1, 11):
            await rt.client.signal_entity(counter, "add", amount)
        await wait_for(lambda: _state(rt.client, counter, 55), 30)
        await rt.client.signal_entity(counter, "delete")
        await wait_for(lambda: _not_exists(rt.client, counter), 30)


async def _not_exists(client: Any, entity: df.EntityId) -> bool:
    return not (await client.read_entity_state(entity)).entity_exists


async def test_opposite_order_locks_both_complete(runtime: Any) -> None:
    async with runtime(app.durable_registry) as rt:
        one = await rt.client.start_new("transfer", None, ["a", "b"])
        two = await rt.client.start_new("transfer", None, ["b", "a"])
        for instance_id in (one, two):
            status = await rt.client.wait_for_completion(instance_id, 60)
            assert status.runtime_status is COMPLETED, status.output
            assert status.output is False
        for key in ("a", "b"):
            assert await _state(rt.client, df.EntityId("Account", key), {"balance": 20})


async def test_scheduled_signals_run_at_their_time(runtime: Any) -> None:
    async with runtime(app.durable_registry) as rt:
        counter = df.EntityId("Counter", "later")
        due = datetime.now(UTC) + timedelta(seconds=2)
        await rt.client.signal_entity(counter, "add", 1, scheduled_time=due)
        await rt.client.signal_entity(counter, "add", 10)
        await wait_for(lambda: _state(rt.client, counter, 10), 30)
        assert datetime.now(UTC) < due, "the scheduled signal must wait"
        await wait_for(lambda: _state(rt.client, counter, 11), 30)
        assert datetime.now(UTC) >= due - timedelta(milliseconds=100)


async def test_list_and_clean_entity_storage(runtime: Any) -> None:
    async with runtime(app.durable_registry) as rt:
        kept, deleted = df.EntityId("Counter", "kept"), df.EntityId("Counter", "gone")
        locked = df.EntityId("Account", "orphan")
        await rt.client.signal_entity(kept, "add", 1)
        await rt.client.signal_entity(deleted, "add", 1)
        await wait_for(lambda: _state(rt.client, deleted, 1), 30)
        await rt.client.signal_entity(deleted, "delete")  # (client signals are not ordered)
        # a lock taken by an orchestration that does not exist (purged, say)
        lock = RequestMessage(id="L1", parent="ghost", lockset=[df.EntityId("account", "orphan")])
        raised = EventRaised(timestamp=datetime.now(UTC), name="op", input=lock.to_text())
        await rt.hub.send_to_instance(MessageData(raised, OrchestrationInstance(str(locked))))
        await rt.client.signal_entity(locked, "deposit", 5)  # waits behind the lock
        await wait_for(lambda: _state(rt.client, kept, 1), 30)
        await wait_for(lambda: _not_exists(rt.client, deleted), 30)
        await wait_for(lambda: _locked_by(rt, locked, "ghost"), 30)

        page = await rt.client.list_entities("Counter", fetch_state=True)
        assert [(e.entity_id.key, e.state) for e in page.entities] == [("kept", 1)]
        everything = await rt.client.list_entities(include_deleted=True)
        assert {str(e.entity_id) for e in everything.entities} == {
            "@counter@kept",
            "@counter@gone",
            "@account@orphan",
        }

        cleaned = await rt.client.clean_entity_storage(idle_for=timedelta(0))
        assert (cleaned.num_empty_entities_removed, cleaned.num_orphaned_locks_removed) == (1, 1)
        assert not await _row_exists(rt, deleted)
        await wait_for(lambda: _state(rt.client, locked, {"balance": 5}), 30)


async def _row_exists(rt: Any, entity: df.EntityId) -> bool:
    return await rt.hub.instances.get(str(entity)) is not None


async def _locked_by(rt: Any, entity: df.EntityId, owner: str) -> bool:
    row = await rt.hub.instances.get(str(entity))
    return row is not None and SchedulerState.from_text(row.input).locked_by == owner
