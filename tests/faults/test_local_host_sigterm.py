"""Two `durable-ext start` processes on one task hub; SIGTERM one in the middle of a fan-out.

The app (`fan_out_app.py`) runs 40 activities of 250 ms, 4 at a time per process, and logs the start
and end of every execution with its process id. The hosts acquire leases every second and renew
them every 2 s (so they settle in seconds) and keep the default 30 s lease interval: a takeover
well under it is a released lease, not an expired one.

The orchestration lives on a partition of the process that gets SIGTERM, which holds every work
item of the fan-out (in-process handoff). On SIGTERM the engine takes no new work, lets the running
activities finish (they are short, far below the 30 s shutdown timeout), gives the waiting work
items back to the queue, lets the episodes in flight checkpoint, and releases its leases. So nothing
runs twice: with a graceful stop every activity runs exactly once (the engine's general promise is
at-least-once, for a crash or an activity that outlives the shutdown timeout).
"""

from __future__ import annotations

import asyncio
import re
import shutil
import time
from collections import Counter
from itertools import count
from pathlib import Path

from tests.azurite import AzuriteInstance
from tests.faults.fan_out_app import LOG_SETTING, expected_fan_out
from tests.faults.storage_view import HubView, wait_for
from tests.sample_app.host_process import (
    LocalHostProcess,
    assert_stopped_cleanly,
    http,
    make_app_root,
    poll_status,
)
from tests.storage.raw_state import fnv1a32_reference

APP_SOURCE = Path(__file__).with_name("fan_out_app.py")
PARTITIONS = 4
ACTIVITIES = 40
WORK_MS = 250
CONCURRENCY = 4
STARTED_BEFORE_SIGTERM = 8
LEASE_SECONDS = 30.0  # the default leaseInterval, which these hosts keep
TAKEOVER_LIMIT = 5.0  # released leases are taken on the next 1 s acquire pass
EXIT_LIMIT = 10.0  # the running activities finish in 250 ms; far below the 30 s shutdown timeout
SETTLE_DEADLINE = 45.0  # two Python processes starting on a small shared box, then balancing
DEADLINE = 30.0

_JOB_HOST = "AzureFunctionsJobHost__extensions__durableTask__"
SETTINGS = {
    f"{_JOB_HOST}maxConcurrentActivityFunctions": str(CONCURRENCY),
    f"{_JOB_HOST}durableExt__leaseAcquireInterval": "00:00:01",
    f"{_JOB_HOST}durableExt__leaseRenewInterval": "00:00:02",
}
_WORKER_STARTED = re.compile(r"Worker (\S+) started on hub")
_LEASE_EVENT = re.compile(
    r"durable_ext\.leases: (Acquired|Reclaimed|Lost|Released) partition (\d+)"
)


def worker_id(host: LocalHostProcess) -> str:
    """The worker id the host logged when its engine started (`hostname:pid` by default)."""
    match = _WORKER_STARTED.search(host.log())
    assert match, host.log()[-3000:]
    return match.group(1)


def own_view(host: LocalHostProcess) -> frozenset[int]:
    """The partitions the host itself believes it owns, from its lease log lines."""
    owned: set[int] = set()
    for event, index in _LEASE_EVENT.findall(host.log()):
        if event in ("Acquired", "Reclaimed"):
            owned.add(int(index))
        else:
            owned.discard(int(index))
    return frozenset(owned)


def pid_of(worker: str) -> int:
    """The process id in a default worker id (`hostname:pid`)."""
    return int(worker.rsplit(":", 1)[1])


def instance_on(owners: dict[int, str | None], worker: str) -> str:
    """An instance id whose partition (FNV-1a of the id, reference §1) `worker` owns."""
    return next(
        candidate
        for candidate in (f"fan{n}" for n in count())
        if owners[fnv1a32_reference(candidate.encode()) % PARTITIONS] == worker
    )


def read_runs(path: Path) -> list[tuple[str, int, int]]:
    """The activity log: (event, key, pid) per line, in order."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return []
    return [(event, int(key), int(pid)) for event, key, pid in (line.split() for line in lines)]


def make_hosts(
    azurite: AzuriteInstance, hub_name: str, tmp_path: Path, activity_log: Path
) -> list[LocalHostProcess]:
    """Two hosts (not launched yet), each with an app root of its own, on one hub."""
    hosts = []
    for name in ("a", "b"):
        root = make_app_root(
            tmp_path / name,
            code=[],
            hub_name=hub_name,
            connection_string=azurite.connection_string,
            values={**SETTINGS, LOG_SETTING: str(activity_log)},
        )
        shutil.copy2(APP_SOURCE, root / "function_app.py")
        hosts.append(LocalHostProcess(root))
    return hosts


async def wait_settled(
    view: HubView, hosts: list[LocalHostProcess], ids: list[str]
) -> dict[int, str | None]:
    """Wait until the lease blobs give each host two partitions and each host's own view agrees
    (no split brain left from the start-up steals); the owners."""

    async def probe() -> tuple[dict[int, str | None], list[frozenset[int]]]:
        return await view.lease_owners(), [own_view(host) for host in hosts]

    def settled(state: tuple[dict[int, str | None], list[frozenset[int]]]) -> bool:
        owners, views = state
        return all(
            len(owned) == PARTITIONS // 2
            and owned == {p for p, owner in owners.items() if owner == worker}
            for worker, owned in zip(ids, views, strict=True)
        )

    (owners, _), took = await wait_for(
        probe, settled, SETTLE_DEADLINE, "two hosts settle on two partitions each"
    )
    print(f"settled after {took:.1f} s: {owners}")
    return owners


def check_each_ran_once(
    runs: list[tuple[str, int, int]], running: set[int], leaving_pid: int, survivor_pid: int
) -> None:
    """Every activity started and ended exactly once, in one process; those running at SIGTERM
    ended in the stopping host; the rest of the fan-out ran on the other host."""
    starts = Counter(key for event, key, _ in runs if event == "start")
    ends = Counter(key for event, key, _ in runs if event == "end")
    assert set(starts) == set(ends) == set(range(ACTIVITIES)), (starts, ends)
    repeated = {key: n for key, n in (starts + ends).items() if n != 2}
    assert not repeated, f"activities started or ended more than once: {repeated}"
    process: dict[str, dict[int, int]] = {"start": {}, "end": {}}
    for event, key, pid in runs:
        process[event][key] = pid
    assert process["start"] == process["end"], "an activity ended in another process"
    given_back = {key for key in running if process["end"][key] != leaving_pid}
    assert not given_back, f"running at SIGTERM, yet run by the other host: {given_back}"
    by_process = Counter(process["end"].values())
    assert set(by_process) == {leaving_pid, survivor_pid}, by_process
    print(
        f"activities run by the stopped host: {by_process[leaving_pid]}, by the other: "
        f"{by_process[survivor_pid]}"
    )


async def test_sigterm_of_durable_ext_start_mid_fan_out_loses_nothing(
    azurite: AzuriteInstance, hub_name: str, tmp_path: Path
) -> None:
    """SIGTERM the `durable-ext start` that owns the fan-out's partition while its activities run:
    it exits 0 within seconds, the other host owns every partition well before the lease interval,
    the orchestration completes with the right output (followed on the other host), its history is
    whole, the queues drain, and every activity ran exactly once (the ones running at SIGTERM
    finished in the stopping process, the rest ran on the other)."""
    activity_log = tmp_path / "activities.log"
    hosts = make_hosts(azurite, hub_name, tmp_path, activity_log)
    survivor, leaving = hosts
    try:
        for host in hosts:
            host.launch()
        for host in hosts:
            await asyncio.to_thread(host.wait_ready)
        survivor_id, leaving_id = ids = [worker_id(host) for host in hosts]
        async with HubView(azurite.connection_string, hub_name, PARTITIONS) as view:
            owners = await wait_settled(view, hosts, ids)
            instance_id = instance_on(owners, leaving_id)
            started = await asyncio.to_thread(
                http,
                "POST",
                f"{survivor.base_url}/api/orchestrators/fan_out?instance_id={instance_id}",
                {"count": ACTIVITIES, "ms": WORK_MS},
            )
            assert started.status == 202, started.text
            status_url = started.json()["statusQueryGetUri"]
            assert status_url.startswith(survivor.base_url), status_url

            before, _ = await wait_for(
                lambda: asyncio.to_thread(read_runs, activity_log),
                lambda runs: sum(event == "start" for event, *_ in runs) >= STARTED_BEFORE_SIGTERM,
                DEADLINE,
                f"{STARTED_BEFORE_SIGTERM} activities have started",
                poll=0.05,
            )
            leaving_pid = pid_of(leaving_id)
            running = {k for event, k, pid in before if (event, pid) == ("start", leaving_pid)}
            running -= {key for event, key, _ in before if event == "end"}
            assert running, "SIGTERM must land while the leaving host runs activities"
            sent_at = time.monotonic()

            def stop_leaving() -> float:
                assert_stopped_cleanly(leaving)  # SIGTERM; exit code 0, no error while stopping
                return time.monotonic() - sent_at

            stopping = asyncio.create_task(asyncio.to_thread(stop_leaving))
            (owners, _), takeover = await wait_for(
                lambda: asyncio.gather(view.lease_owners(), asyncio.to_thread(own_view, survivor)),
                lambda state: (
                    set(state[0].values()) == {survivor_id} and state[1] == set(range(PARTITIONS))
                ),
                LEASE_SECONDS + 10,
                "the surviving host owns every partition, by the blobs and by its own view",
                poll=0.1,
            )
            exited_after = await stopping
            print(
                f"SIGTERM with activities {sorted(running)} running; exited after "
                f"{exited_after:.1f} s; every partition the survivor's after {takeover:.1f} s"
            )
            assert takeover < TAKEOVER_LIMIT, (
                f"takeover took {takeover:.1f} s: the leases were not released, they expired"
            )
            assert exited_after < EXIT_LIMIT

            response = await asyncio.to_thread(poll_status, status_url, timeout=DEADLINE)
            status = response.json()
            assert (response.status, status["runtimeStatus"]) == (200, "Completed"), status
            assert status["output"] == expected_fan_out(ACTIVITIES)
            await view.check_completed(instance_id, expected_fan_out(ACTIVITIES))
            await wait_for(
                view.queue_counts,
                lambda counts: not any(counts.values()),
                DEADLINE,
                "every queue of the hub is empty",
            )
        assert_stopped_cleanly(survivor)
    finally:
        for host in hosts:
            host.kill()
    runs = read_runs(activity_log)
    check_each_ran_once(runs, running, leaving_pid, pid_of(survivor_id))
