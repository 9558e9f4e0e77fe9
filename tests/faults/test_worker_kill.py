"""Three worker processes on one hub: kill -9 one mid-fan-out, or SIGTERM one, and check that its
partitions move to the others and that every orchestration completes exactly once.

The workers run `tests/worker/fault_app.py` through `tests/worker/worker_process.py` with 15 s
leases (renewed every 2 s, balanced every 1 s) and a 10 s queue visibility timeout and handoff
hold, so the messages a killed worker had taken reappear after 10 s instead of 5 minutes (30 s).

The workload starts only once every worker's own view of its partitions agrees with the lease
blobs: right after a steal the previous owner serves the partition until its next renewal, and that
split-brain window is the subject of `test_split_brain.py`, not of these tests.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from durable_ext.orchestration.status import OrchestrationRuntimeStatus
from durable_ext.runtime import Runtime
from tests.azurite import AzuriteInstance
from tests.faults.storage_view import HubView, wait_for
from tests.faults.worker_processes import WorkerCluster
from tests.worker.conftest import fast_options
from tests.worker.fault_app import (
    child_id,
    expected_chain,
    expected_child,
    expected_fan_out,
    read_log,
    registry,
    work_key,
)

WORKERS = ("w1", "w2", "w3")
LEASE_SECONDS = 15.0
STARTUP_DEADLINE = 60.0  # three Python processes on a small CI box, then a few balancing passes
TAKEOVER_SLACK = 10.0  # after lease expiry: a 2 s renew period, 1 s acquire passes, slow CI
GRACEFUL_TAKEOVER_LIMIT = LEASE_SECONDS / 2  # "well before expiry"
COMPLETION_DEADLINE = 90.0

FAN_OUT = {"children": 4, "items": 10, "ms": 200}
CHAIN = {"steps": 12, "ms": 50}


def owners_of(owners: dict[int, str | None]) -> Counter[str]:
    """How many partitions each worker owns."""
    return Counter(owner for owner in owners.values() if owner is not None)


def balanced_over(workers: set[str]) -> Callable[[dict[int, str | None]], bool]:
    """Predicate: every partition is owned, by exactly the workers in `workers`, each at least once."""

    def check(owners: dict[int, str | None]) -> bool:
        return all(owners.values()) and set(owners_of(owners)) == workers

    return check


def owned_by(owners: dict[int, str | None], worker_id: str) -> frozenset[int]:
    """The partitions the lease blobs give to `worker_id`."""
    return frozenset(p for p, owner in owners.items() if owner == worker_id)


async def wait_settled(
    view: HubView, cluster: WorkerCluster, workers: set[str], timeout: float, what: str
) -> tuple[dict[int, str | None], float]:
    """Wait until the lease blobs spread every partition over exactly `workers` and each of them
    believes it owns just what the blobs say (no split brain); the owners and the seconds it took."""

    async def probe() -> tuple[dict[int, str | None], dict[str, frozenset[int]]]:
        return await view.lease_owners(), cluster.views()

    def settled(state: tuple[dict[int, str | None], dict[str, frozenset[int]]]) -> bool:
        owners, views = state
        return balanced_over(workers)(owners) and all(
            views.get(w) == owned_by(owners, w) for w in workers
        )

    (owners, _), took = await wait_for(probe, settled, timeout, what)
    return owners, took


async def start_workload(rt: Runtime, fan_outs: int, chains: int, prefix: str) -> dict[str, Any]:
    """Start the instances; every instance id (children included) → its expected output."""
    expected: dict[str, Any] = {}
    for n in range(fan_outs):
        instance_id = f"{prefix}fan{n}"
        await rt.client.start_new("fan_out_parent", instance_id, FAN_OUT)
        expected[instance_id] = expected_fan_out(FAN_OUT["children"], FAN_OUT["items"])
        for i in range(FAN_OUT["children"]):
            expected[child_id(instance_id, i)] = expected_child(i, FAN_OUT["items"])
    for n in range(chains):
        instance_id = f"{prefix}chain{n}"
        await rt.client.start_new("chain", instance_id, CHAIN)
        expected[instance_id] = expected_chain(CHAIN["steps"])
    return expected


def activity_keys(fan_outs: list[str], chains: list[str]) -> set[str]:
    """Every activity key the workload runs."""
    keys = {work_key(c, k) for c in chains for k in range(CHAIN["steps"])}
    for parent in fan_outs:
        for i in range(FAN_OUT["children"]):
            keys |= {work_key(child_id(parent, i), j) for j in range(FAN_OUT["items"])}
    return keys


async def wait_all_completed(
    rt: Runtime, expected: dict[str, Any], instance_ids: list[str], timeout: float
) -> None:
    """Wait for every instance to finish; each must be Completed with its expected output, as the
    client reports it (the stored rows are checked separately)."""
    statuses = await asyncio.gather(
        *(
            rt.client.wait_for_completion(i, timeout=timeout, poll_interval=0.5)
            for i in instance_ids
        )
    )
    wrong = {
        i: (s.runtime_status, s.output)
        for i, s in zip(instance_ids, statuses, strict=True)
        if s.runtime_status is not OrchestrationRuntimeStatus.Completed or s.output != expected[i]
    }
    assert not wrong, wrong


@pytest.mark.slow
async def test_killed_worker_partitions_move_and_every_orchestration_completes_once(
    azurite: AzuriteInstance, hub_name: str, tmp_path: Path
) -> None:
    """SIGKILL the busiest of three workers mid-fan-out: after its leases expire the other two
    take its partitions, every orchestration completes with the right output, each history holds
    one whole execution with one ExecutionCompleted, and every completed activity really ran."""
    activity_log = tmp_path / "activities.log"
    connection = azurite.connection_string
    with WorkerCluster(connection, hub_name, tmp_path, activity_log) as cluster:
        for worker_id in WORKERS:
            cluster.start(worker_id)
        async with (
            HubView(connection, hub_name) as view,
            Runtime(
                registry,
                connection=connection,
                hub=hub_name,
                options=fast_options(),
                run_worker=False,
            ) as rt,
        ):
            owners, took = await wait_settled(
                view, cluster, set(WORKERS), STARTUP_DEADLINE, "3 workers settle on 4 partitions"
            )
            print(f"settled over 3 workers after {took:.1f} s: {owners}")

            expected = await start_workload(rt, fan_outs=3, chains=4, prefix="k")
            parents = [i for i in expected if "fan" in i and "-c" not in i]
            chains = [i for i in expected if "chain" in i]
            all_keys = activity_keys(parents, chains)
            _, took = await wait_for(
                lambda: asyncio.to_thread(read_log, activity_log),
                lambda lines: len(lines) >= 20,
                COMPLETION_DEADLINE,
                "20 activities have run",
                poll=0.05,
            )

            owners = await view.lease_owners()
            victim = owners_of(owners).most_common(1)[0][0]
            victim_partitions = sorted(p for p, o in owners.items() if o == victim)
            ran_before_kill = len(read_log(activity_log))
            cluster[victim].send(signal.SIGKILL)
            killed_at = time.monotonic()
            assert cluster[victim].wait(10) == -signal.SIGKILL
            assert ran_before_kill < len(all_keys), "the kill must land while work is in flight"
            print(
                f"killed {victim} (partitions {victim_partitions}) {took:.1f} s into the workload, "
                f"after {ran_before_kill} of {len(all_keys)} activities"
            )

            survivors = set(WORKERS) - {victim}
            owners, _ = await wait_for(
                view.lease_owners,
                balanced_over(survivors),
                LEASE_SECONDS + TAKEOVER_SLACK,
                f"{sorted(survivors)} take over {victim}'s partitions",
            )
            takeover = time.monotonic() - killed_at
            print(
                f"partitions {victim_partitions} taken over {takeover:.1f} s after the kill: {owners}"
            )
            assert takeover <= LEASE_SECONDS + TAKEOVER_SLACK
            await wait_settled(
                view, cluster, survivors, TAKEOVER_SLACK, "the survivors agree with the leases"
            )

            await wait_all_completed(rt, expected, [*parents, *chains], COMPLETION_DEADLINE)
            completed_at = time.monotonic() - killed_at
            facts = await view.check_all_completed(expected)

        lines = await asyncio.to_thread(read_log, activity_log)
    runs = Counter(lines)
    completed_keys = {
        item["key"] for fact in facts.values() for item in fact.completed_activity_inputs
    }
    assert completed_keys == all_keys
    never_ran = completed_keys - set(runs)
    assert not never_ran, f"history says completed, but never ran: {sorted(never_ran)}"
    assert set(runs) <= all_keys, set(runs) - all_keys
    repeated = {key: count for key, count in runs.items() if count > 1}
    duplicates = sum(fact.duplicate_responses for fact in facts.values())
    print(
        f"all {len(expected)} instances completed {completed_at:.1f} s after the kill; "
        f"{len(lines)} executions of {len(all_keys)} activities, {len(repeated)} ran more than "
        f"once (e.g. {sorted(repeated.items())[:3]}); "
        f"duplicate responses in histories: {duplicates}"
    )


async def test_sigterm_releases_leases_and_the_others_take_them_at_once(
    azurite: AzuriteInstance, hub_name: str, tmp_path: Path
) -> None:
    """SIGTERM one of three workers: it drains, releases its leases and exits 0; the other two own
    its partitions well before the lease would have expired, and the work in flight completes."""
    activity_log = tmp_path / "activities.log"
    connection = azurite.connection_string
    with WorkerCluster(connection, hub_name, tmp_path, activity_log) as cluster:
        for worker_id in WORKERS:
            cluster.start(worker_id)
        async with (
            HubView(connection, hub_name) as view,
            Runtime(
                registry,
                connection=connection,
                hub=hub_name,
                options=fast_options(),
                run_worker=False,
            ) as rt,
        ):
            owners, took = await wait_settled(
                view, cluster, set(WORKERS), STARTUP_DEADLINE, "3 workers settle on 4 partitions"
            )
            print(f"settled over 3 workers after {took:.1f} s: {owners}")
            expected = await start_workload(rt, fan_outs=1, chains=4, prefix="t")
            await wait_for(
                lambda: asyncio.to_thread(read_log, activity_log),
                lambda lines: len(lines) >= 10,
                COMPLETION_DEADLINE,
                "10 activities have run",
                poll=0.05,
            )

            owners = await view.lease_owners()
            leaving = owners_of(owners).most_common(1)[0][0]
            partitions = sorted(p for p, o in owners.items() if o == leaving)
            cluster[leaving].send(signal.SIGTERM)
            sent_at = time.monotonic()
            survivors = set(WORKERS) - {leaving}
            owners, _ = await wait_for(
                view.lease_owners,
                balanced_over(survivors),
                LEASE_SECONDS + TAKEOVER_SLACK,
                f"{sorted(survivors)} take over {leaving}'s released partitions",
                poll=0.1,
            )
            takeover = time.monotonic() - sent_at
            exit_code = await asyncio.to_thread(cluster[leaving].wait, 30)
            print(f"{leaving} released {partitions}; taken over after {takeover:.1f} s: {owners}")
            assert exit_code == 0, cluster[leaving].log_tail()
            assert takeover < GRACEFUL_TAKEOVER_LIMIT, (
                f"takeover took {takeover:.1f} s: the leases were not released, they expired"
            )
            await wait_settled(
                view, cluster, survivors, TAKEOVER_SLACK, "the survivors agree with the leases"
            )

            instance_ids = [i for i in expected if "-c" not in i]
            await wait_all_completed(rt, expected, instance_ids, COMPLETION_DEADLINE)
            facts = await view.check_all_completed(expected)

        lines = await asyncio.to_thread(read_log, activity_log)
    completed_keys = {
        item["key"] for fact in facts.values() for item in fact.completed_activity_inputs
    }
    assert completed_keys <= set(lines), sorted(completed_keys - set(lines))
