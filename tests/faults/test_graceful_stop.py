"""A graceful stop must never turn into an orchestration failure.

Stopping a worker (SIGTERM in a host, leaving `async with Runtime(...)` here) lets in-flight work
finish and hands the rest to whichever worker comes next: work it did not run is retried there.
No activity may be reported as failed because its own worker was shutting down.

The test stops and restarts the worker several times while chains of short activities keep it
busy scheduling work (and handing work items to itself in-process), then lets a last worker finish
everything and checks that every chain completed with the right output.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from durable_ext.orchestration.status import OrchestrationRuntimeStatus
from durable_ext.runtime import Runtime
from tests.azurite import AzuriteInstance
from tests.faults.storage_view import HubView, wait_for
from tests.worker.conftest import fast_options
from tests.worker.fault_app import LOG_ENV, expected_chain, read_log, registry

CHAINS = 16
CHAIN = {"steps": 40, "ms": 2}
RESTARTS = 8
PROGRESS_PER_RUN = 30  # activities each short-lived worker runs before it is stopped
COMPLETION_DEADLINE = 90.0


def at_least(count: int) -> Callable[[list[str]], bool]:
    """Predicate: the log holds at least `count` executions."""
    return lambda lines: len(lines) >= count


async def test_stopping_a_busy_worker_never_fails_an_activity(
    azurite: AzuriteInstance, hub_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stop a busy worker gracefully eight times mid-workload: every chain still completes, none
    fails with an error that came from the shutdown rather than from the activity."""
    activity_log = tmp_path / "activities.log"
    monkeypatch.setenv(LOG_ENV, str(activity_log))
    connection = azurite.connection_string
    instance_ids = [f"busy{n}" for n in range(CHAINS)]
    async with Runtime(
        registry, connection=connection, hub=hub_name, options=fast_options(), run_worker=False
    ) as client_rt:
        for instance_id in instance_ids:
            await client_rt.client.start_new("chain", instance_id, CHAIN)

        for run in range(RESTARTS):
            options = fast_options(worker_id=f"short{run}")
            async with Runtime(registry, connection=connection, hub=hub_name, options=options):
                target = len(read_log(activity_log)) + PROGRESS_PER_RUN
                await wait_for(
                    lambda: asyncio.to_thread(read_log, activity_log),
                    at_least(target),
                    COMPLETION_DEADLINE,
                    f"run {run} makes progress",
                    poll=0.02,
                )
            # Leaving the block stopped the worker gracefully, in the middle of the chains.

        options = fast_options(worker_id="last")
        async with (
            Runtime(registry, connection=connection, hub=hub_name, options=options) as rt,
            HubView(connection, hub_name) as view,
        ):
            statuses = await asyncio.gather(
                *(
                    rt.client.wait_for_completion(i, timeout=COMPLETION_DEADLINE, poll_interval=0.5)
                    for i in instance_ids
                )
            )
            wrong = {
                s.instance_id: (s.runtime_status, s.output)
                for s in statuses
                if s.runtime_status is not OrchestrationRuntimeStatus.Completed
            }
            assert not wrong, wrong
            await view.check_all_completed(
                dict.fromkeys(instance_ids, expected_chain(CHAIN["steps"]))
            )
