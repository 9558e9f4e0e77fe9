"""The app lease (`useAppLease`): one app at a time serves a task hub.

Two apps (distinct app names, shortened app-lease intervals) on one hub: the second waits while
the first runs, owning no partition; when the first stops, its app lease expires and the second
takes over and runs what was started meanwhile. Workers of one app share the lease. Without the
app lease, both apps serve the hub side by side (the table manager then splits the partitions).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest

from durable_ext.orchestration.status import OrchestrationRuntimeStatus
from durable_ext.runtime import Runtime
from durable_ext.storage.app_lease import app_lease_id
from durable_ext.worker.worker import TaskHubWorker
from tests.azurite import AzuriteInstance
from tests.faults.storage_view import HubView
from tests.wait import wait_for
from tests.worker.conftest import fast_options
from tests.worker.fault_app import expected_chain, registry

ALL = frozenset(range(4))
APP_LEASE = timedelta(seconds=15)  # the shortest blob lease


def app(azurite: AzuriteInstance, hub: str, worker_id: str, app_name: str, **extra: Any) -> Runtime:
    options = fast_options(
        worker_id=worker_id,
        app_name=app_name,
        app_lease_interval=APP_LEASE,
        app_lease_renew_interval=timedelta(seconds=2),
        app_lease_acquire_interval=timedelta(seconds=1),
        **extra,
    )
    return Runtime(registry, connection=azurite.connection_string, hub=hub, options=options)


def shared(workers: Sequence[TaskHubWorker]) -> bool:
    """Each worker owns some partition and together they own them all (none in a handover)."""
    owned = [w.leases.owned for w in workers]
    return all(owned) and frozenset().union(*owned) == ALL


def test_app_lease_ids_follow_dtfx() -> None:
    """FNV-1a32 of the UTF-8 app name in the first four bytes (little-endian) of a GUID."""
    assert app_lease_id("") == "811c9dc5-0000-0000-0000-000000000000"
    assert app_lease_id("a") == "e40c292c-0000-0000-0000-000000000000"
    assert app_lease_id("myinstance") == "c06a6290-0000-0000-0000-000000000000"


async def test_workers_of_one_app_share_the_app_lease(
    azurite: AzuriteInstance, hub_name: str
) -> None:
    async with (
        app(azurite, hub_name, "one", "blue") as one,
        app(azurite, hub_name, "two", "blue") as two,
    ):
        assert one.worker is not None and two.worker is not None
        workers = (one.worker, two.worker)
        assert all(w.leases.app_lease_held for w in workers)
        await wait_for(lambda: shared(workers), 20)


@pytest.mark.slow
async def test_a_second_app_waits_then_takes_over_when_the_first_stops(
    azurite: AzuriteInstance, hub_name: str
) -> None:
    h = hub_name.lower()
    async with contextlib.AsyncExitStack() as stack:
        view = await stack.enter_async_context(HubView(azurite.connection_string, hub_name))
        async with app(azurite, hub_name, "blue-1", "blue") as blue:
            assert blue.worker is not None and blue.worker.leases.owned == ALL
            green = await stack.enter_async_context(app(azurite, hub_name, "green-1", "green"))
            assert green.worker is not None
            # green tries every second and never gets in while blue renews.
            assert not await green.worker.leases.wait_until(bool, timeout=5)
            assert not green.worker.leases.app_lease_held
            info = await view.download(f"{h}-applease", f"{h}-appleaseinfo")
            assert app_lease_id("blue") in info.decode()
        # blue has stopped: its rows are released, its app lease is left to expire.
        instance_id = await green.client.start_new("chain", "after-swap", {"steps": 3})
        took = await green.worker.leases.wait_until(
            lambda owned: owned == ALL, APP_LEASE.total_seconds() + 15
        )
        assert took, green.worker.leases.owned
        assert green.worker.leases.app_lease_held
        status = await green.client.wait_for_completion(instance_id, timeout=30)
        assert status.runtime_status is OrchestrationRuntimeStatus.Completed
        assert status.output == expected_chain(3)
        info = await view.download(f"{h}-applease", f"{h}-appleaseinfo")
        assert app_lease_id("green") in info.decode()


async def test_without_the_app_lease_two_apps_share_the_hub(
    azurite: AzuriteInstance, hub_name: str
) -> None:
    async with (
        app(azurite, hub_name, "blue-1", "blue", use_app_lease=False) as blue,
        app(azurite, hub_name, "green-1", "green", use_app_lease=False) as green,
    ):
        workers = [rt.worker for rt in (blue, green) if rt.worker is not None]
        assert len(workers) == 2
        await wait_for(lambda: shared(workers), 20)
