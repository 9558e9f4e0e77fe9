"""Storage goes away for 20 s under a running worker, and comes back: the worker recovers by itself.

A `Runtime` runs in this process against a private Azurite (data on disk) with timer chains and a
fan-out in flight. Azurite is stopped for a real 20 s (longer than the 15 s lease), then started
again on the same ports with the same data. Without any help the worker must take its partitions
back, finish every orchestration with the right output and exactly one completion in its history,
and leave every queue empty.

The queue visibility timeout (and the in-process handoff hold) is 10 s here instead of the 5-minute
(30 s) default: a message the worker had received when storage vanished, and could then neither
delete nor abandon, reappears after its visibility timeout (as in DTFx), and the test should not
wait 5 minutes for that.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from durable_ext.orchestration.status import OrchestrationRuntimeStatus
from durable_ext.runtime import Runtime
from tests.azurite import AzuriteInstance
from tests.faults.storage_view import HubView, wait_for
from tests.worker.conftest import fast_options
from tests.worker.fault_app import (
    LOG_ENV,
    child_id,
    expected_chain,
    expected_child,
    expected_fan_out,
    read_log,
    registry,
    work_key,
)

OUTAGE_SECONDS = 20.0
PARTITIONS = frozenset(range(4))
VISIBILITY = timedelta(seconds=10)
RECOVERY_DEADLINE = 90.0
DRAIN_DEADLINE = 30.0  # for the last deletes to land after the instances report Completed

TIMER_CHAIN = {"steps": 6, "ms": 50, "timer_ms": 1000}
FAN_OUT = {"children": 2, "items": 12, "ms": 500}
MAX_ACTIVITIES = 4  # so the fan-out takes a few seconds and is mid-way when storage goes
TIMER_CHAINS = 5


@pytest.mark.slow
async def test_worker_recovers_from_a_20_second_storage_outage(
    private_azurite: AzuriteInstance, hub_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stop Azurite for 20 s mid-flight: afterwards every instance completes exactly once with
    the right output, the worker owns every partition again, and no queue holds a message."""
    activity_log = tmp_path / "activities.log"
    monkeypatch.setenv(LOG_ENV, str(activity_log))
    connection = private_azurite.connection_string
    options = fast_options(
        control_queue_visibility_timeout=VISIBILITY,
        work_item_queue_visibility_timeout=VISIBILITY,
        handoff_hold=VISIBILITY,
        max_concurrent_activity_functions=MAX_ACTIVITIES,
    )
    expected: dict[str, Any] = {}
    async with (
        Runtime(registry, connection=connection, hub=hub_name, options=options) as rt,
        HubView(connection, hub_name) as view,
    ):
        assert rt.worker is not None
        leases = rt.worker.leases
        assert await leases.wait_until(lambda owned: owned == PARTITIONS, timeout=30)

        for n in range(TIMER_CHAINS):
            instance_id = f"timers{n}"
            await rt.client.start_new("timer_chain", instance_id, TIMER_CHAIN)
            expected[instance_id] = expected_chain(TIMER_CHAIN["steps"])
        await rt.client.start_new("fan_out_parent", "fan", FAN_OUT)
        expected["fan"] = expected_fan_out(FAN_OUT["children"], FAN_OUT["items"])
        for i in range(FAN_OUT["children"]):
            expected[child_id("fan", i)] = expected_child(i, FAN_OUT["items"])
        all_keys = {
            work_key(f"timers{n}", k)
            for n in range(TIMER_CHAINS)
            for k in range(TIMER_CHAIN["steps"])
        } | {
            work_key(child_id("fan", i), j)
            for i in range(FAN_OUT["children"])
            for j in range(FAN_OUT["items"])
        }
        # Let every chain get past its first step and into a timer, the fan-out mid-way.
        await wait_for(
            lambda: asyncio.to_thread(read_log, activity_log),
            lambda lines: (
                len({line.split("/")[0] for line in lines}) >= TIMER_CHAINS + FAN_OUT["children"]
            ),
            RECOVERY_DEADLINE,
            "every orchestration has run an activity",
            poll=0.05,
        )
        ran_before = len(read_log(activity_log))

        stopped_at = time.monotonic()
        await asyncio.to_thread(private_azurite.stop)
        # A real outage: nothing to wait for but time itself.
        await asyncio.sleep(max(OUTAGE_SECONDS - (time.monotonic() - stopped_at), 0))
        partitions_during_outage = leases.owned
        await asyncio.to_thread(private_azurite.start)
        outage = time.monotonic() - stopped_at
        print(
            f"Azurite down for {outage:.1f} s after {ran_before} of {len(all_keys)} activities; "
            f"partitions held at the end of the outage: {sorted(partitions_during_outage)}"
        )

        regained = await leases.wait_until(lambda owned: owned == PARTITIONS, RECOVERY_DEADLINE)
        print(
            f"partitions owned again {time.monotonic() - stopped_at - outage:.1f} s after restart"
        )
        assert regained, f"owned {sorted(leases.owned)} of {sorted(PARTITIONS)} after the outage"

        statuses = await asyncio.gather(
            *(
                rt.client.wait_for_completion(
                    instance_id, timeout=RECOVERY_DEADLINE, poll_interval=0.5
                )
                for instance_id in expected
            )
        )
        recovered = time.monotonic() - stopped_at - outage
        assert all(s.runtime_status is OrchestrationRuntimeStatus.Completed for s in statuses), [
            (s.instance_id, s.runtime_status) for s in statuses
        ]
        assert {s.instance_id: s.output for s in statuses} == expected
        facts = await view.check_all_completed(expected)

        counts, drained = await wait_for(
            view.queue_counts,
            lambda counts: not any(counts.values()),
            DRAIN_DEADLINE,
            "every queue is empty",
            poll=0.5,
        )
        print(
            f"all {len(expected)} instances completed {recovered:.1f} s after restart; "
            f"queues empty {drained:.1f} s later"
        )

    lines = read_log(activity_log)
    completed_keys = {
        item["key"] for fact in facts.values() for item in fact.completed_activity_inputs
    }
    assert completed_keys == all_keys
    assert all_keys <= set(lines), sorted(all_keys - set(lines))
    repeated = {key: lines.count(key) for key in set(lines) if lines.count(key) > 1}
    duplicates = sum(fact.duplicate_responses for fact in facts.values())
    print(
        f"{len(lines)} executions, {len(repeated)} ran more than once "
        f"(e.g. {sorted(repeated.items())[:3]}); duplicate responses: {duplicates}"
    )
