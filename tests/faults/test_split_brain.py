"""The split-brain window of a lease steal must neither stall nor lose orchestrations.

When a worker steals a partition, the previous owner keeps reading its control queue until its
next lease renewal (DTFx V1 behaviour; the history sentinel ETag fences the overlap, reference
§4.2 and §4.5). During that window both workers run episodes of the same instances. Whoever
checkpoints second gets 412 and reloads; nothing may leave an instance waiting for long. This is
the legacy blob-lease manager's window: the table manager hands partitions over by draining.

Here worker `a` renews only every 50 s, so after `b` steals partition 0 both serve it for the
whole test. Each worker runs one activity at a time, so the steps of an orchestration alternate
between them. Every orchestration on the partition must still finish within a few seconds of what
it would take on one worker, with one whole execution in its history.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import pytest

from durable_ext.orchestration.status import OrchestrationRuntimeStatus
from durable_ext.runtime import Runtime
from durable_ext.storage.names import partition_index
from tests.azurite import AzuriteInstance
from tests.faults.storage_view import HubView
from tests.worker.conftest import fast_options
from tests.worker.fault_app import expected_chain, expected_generations, registry

PARTITION = 0
INSTANCES = 8
STEPS = 8
SLOW_RENEW = timedelta(seconds=50)  # worker a does not notice the steal during the test
STEAL_DEADLINE = 30.0
# Eight 8-step orchestrations take 2-4 s here, DTFx's out-of-order back-off (2 s, then 4 s)
# included. One stuck behind a stale view of its history waits a minute or more, or forever.
COMPLETION_LIMIT = 15.0

WORKLOADS = {
    "chain": ({"steps": STEPS, "ms": 20}, expected_chain(STEPS)),
    "generations": (
        {"generation": 0, "generations": STEPS, "ms": 20},
        expected_generations(STEPS),
    ),
}


def ids_on_partition(prefix: str, count: int, partition: int) -> list[str]:
    """`count` instance ids that hash to `partition` of 4."""
    found: list[str] = []
    n = 0
    while len(found) < count:
        candidate = f"{prefix}{n}"
        if partition_index(candidate, 4) == partition:
            found.append(candidate)
        n += 1
    return found


async def wait_all(rt: Runtime, instance_ids: list[str], timeout: float) -> float:
    """Seconds until every instance is Completed; fails naming the ones still running."""
    began = time.monotonic()
    results = await asyncio.gather(
        *(
            rt.client.wait_for_completion(i, timeout=timeout, poll_interval=0.2)
            for i in instance_ids
        ),
        return_exceptions=True,
    )
    stuck = {
        i: repr(r) for i, r in zip(instance_ids, results, strict=True) if isinstance(r, Exception)
    }
    assert not stuck, f"still running after {timeout:.0f} s on a split partition: {stuck}"
    failed = {
        i: r.runtime_status
        for i, r in zip(instance_ids, results, strict=True)
        if not isinstance(r, BaseException)
        and r.runtime_status is not OrchestrationRuntimeStatus.Completed
    }
    assert not failed, failed
    return time.monotonic() - began


@pytest.mark.parametrize("orchestrator", sorted(WORKLOADS))
async def test_orchestrations_keep_going_while_two_workers_serve_a_stolen_partition(
    azurite: AzuriteInstance, hub_name: str, orchestrator: str
) -> None:
    """Worker `b` steals partition 0 from `a`, which goes on serving it until its next renewal
    (50 s away): chains, and orchestrations that continue as new every step, on that partition
    all complete promptly with the right output and a whole history."""
    spec, expected = WORKLOADS[orchestrator]
    connection = azurite.connection_string
    slow_a = fast_options(
        worker_id="a",
        lease_interval=timedelta(seconds=60),
        lease_renew_interval=SLOW_RENEW,
        max_concurrent_activity_functions=1,
        use_legacy_partition_management=True,
    )
    async with Runtime(registry, connection=connection, hub=hub_name, options=slow_a) as rt_a:
        assert rt_a.worker is not None
        assert await rt_a.worker.leases.wait_until(lambda owned: len(owned) == 4, timeout=30)
        fast_b = fast_options(
            worker_id="b", max_concurrent_activity_functions=1, use_legacy_partition_management=True
        )
        async with (
            Runtime(registry, connection=connection, hub=hub_name, options=fast_b) as rt_b,
            HubView(connection, hub_name) as view,
        ):
            assert rt_b.worker is not None
            stolen = await rt_b.worker.leases.wait_until(
                lambda owned: PARTITION in owned, STEAL_DEADLINE
            )
            assert stolen, f"b owns {sorted(rt_b.worker.leases.owned)}"
            # The split brain this test is about: both believe they own the partition.
            assert PARTITION in rt_a.worker.leases.owned

            instance_ids = ids_on_partition("split", INSTANCES, PARTITION)
            for instance_id in instance_ids:
                await rt_b.client.start_new(orchestrator, instance_id, spec)
            took = await wait_all(rt_b, instance_ids, COMPLETION_LIMIT)
            still_split = PARTITION in rt_a.worker.leases.owned
            print(f"{INSTANCES} {orchestrator} instances took {took:.1f} s (split: {still_split})")
            assert still_split, "a noticed the steal: the test did not run on a split partition"
            outputs: dict[str, Any] = dict.fromkeys(instance_ids, expected)
            await view.check_all_completed(outputs)
