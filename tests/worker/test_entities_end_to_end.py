"""Entities end to end on Azurite: calls and signals from orchestrations and the client, rollback
of a failed operation, class-based entities, critical sections."""

from __future__ import annotations

from typing import Any

import durable_ext as df
from durable_ext import OrchestrationRuntimeStatus
from tests.wait import wait_for

from .entity_apps import app

COMPLETED = OrchestrationRuntimeStatus.Completed


async def _state(client: Any, entity: df.EntityId, expected: Any) -> bool:
    read = await client.read_entity_state(entity)
    return read.entity_exists and read.entity_state == expected


async def test_orchestration_calls_and_signals_an_entity(runtime: Any) -> None:
    async with runtime(app.durable_registry) as rt:
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
