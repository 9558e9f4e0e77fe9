"""A worker frozen (SIGSTOP) past its ownership deadline starts no write when it resumes.

Worker `a` runs in a child process whose storage traffic goes through three `LossyLink` relays
(blob, queue, table), which record every request line. It serves timer-only orchestrations (all
their work is control-queue work of their partitions). The test freezes it, waits until worker
`b` (in this process, straight to Azurite) owns every partition (`a`'s rows or leases expired),
cuts `a`'s ownership traffic (so only its ownership deadlines can tell it, not a renewal that
fails with 409 at once), marks the relays and resumes `a`. Until `a` says it owns nothing and
has tried (and failed) to renew a few times more, it may only talk about ownership and give
back messages it held (a visibility update to 0 s); a request sent before the freeze may still
land. Any receive, send, renewal of a held message, delete, or write to History or Instances is a
failure: on the base commit, `a` goes on receiving and checkpointing until its renewals have
failed for a whole lease interval.
"""

from __future__ import annotations

import asyncio
import math
import re
import signal
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from durable_ext.orchestration.status import OrchestrationRuntimeStatus
from durable_ext.runtime import Runtime
from harness.azurite import ACCOUNT_KEY, ACCOUNT_NAME
from tests.azurite import AzuriteInstance
from tests.faults.worker_processes import WorkerCluster
from tests.lossy_link import LossyLink
from tests.wait import wait_for
from tests.worker.conftest import fast_options
from tests.worker.fault_app import registry

pytestmark = pytest.mark.slow

ALL = frozenset(range(4))
LEASES = {"table": 4.0, "legacy": 15.0}  # seconds; 15 s is the shortest blob lease
INSTANCES = 8
SPEC = {"steps": 400, "timer_ms": 100}


def proxied(links: dict[str, LossyLink]) -> str:
    endpoint = {
        name: f"http://127.0.0.1:{link.port}/{ACCOUNT_NAME}" for name, link in links.items()
    }
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint={endpoint['blob']};QueueEndpoint={endpoint['queue']};"
        f"TableEndpoint={endpoint['table']};"
    )


REFUSE_ALL = 1_000_000


def is_ownership(request: bytes) -> bool:
    """Partition-table, lease-blob and app-lease requests (the first bytes of one)."""
    head = request.split(b"\r\n", 1)[0]
    return any(part in head for part in (b"Partitions", b"-leases", b"-applease"))


def reacquired_at(log: str, since: float) -> float:
    """Wall time of the worker's first "Acquired partition" log line after `since` (inf if none)."""
    for match in re.finditer(
        r"^(\S+ \S+) \S+ durable_ext\.leases INFO Acquired partition", log, re.M
    ):
        at = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
        if at >= since:
            return at
    return math.inf


def checkpoints(link: LossyLink, since: int) -> int:
    """History writes (entity group transactions) relayed since request number `since`."""
    return sum(line.startswith("POST ") and "/$batch" in line for line in link.requests[since:])


def forbidden(request_line: str, hub: str) -> bool:
    """A request a worker that no longer owns its partitions must not start."""
    method, target, _ = request_line.split(" ", 2)
    h = hub.lower()
    path = target.split("?", 1)[0]
    if re.search(rf"/{h}-(leases|applease)\b", path) or re.search(rf"/{hub}Partitions\b", path):
        return False  # ownership traffic
    if re.search(rf"/{h}-control-\d\d/messages/", path) and method == "PUT":
        return "visibilitytimeout=0" not in target  # giving a message back is fine
    if re.search(rf"/{h}-control-\d\d", path):
        return True  # receive, send, delete
    if re.search(rf"/{hub}(History|Instances)", path) or path.endswith("/$batch"):
        return method != "GET"
    return bool(re.search(rf"/{h}-largemessages", path)) and method != "GET"


@pytest.mark.parametrize("manager", sorted(LEASES))
async def test_a_frozen_worker_starts_no_write_after_it_resumes(
    azurite: AzuriteInstance, hub_name: str, tmp_path: Path, manager: str
) -> None:
    lease = LEASES[manager]
    links = {
        "blob": LossyLink("127.0.0.1", azurite.blob_port),
        "queue": LossyLink("127.0.0.1", azurite.queue_port),
        "table": LossyLink("127.0.0.1", azurite.table_port),
    }
    for link in links.values():
        await link.start()
    arguments = ["--lease-seconds", str(lease), *(["--legacy"] if manager == "legacy" else [])]
    options = fast_options(
        worker_id="b",
        lease_interval=timedelta(seconds=lease),
        use_legacy_partition_management=manager == "legacy",
    )
    try:
        with WorkerCluster(
            proxied(links), hub_name, tmp_path, tmp_path / "activities.log"
        ) as cluster:
            a = cluster.start("a", arguments=arguments)
            await wait_for(lambda: a.owned() == ALL, 60)
            async with Runtime(
                registry, connection=azurite.connection_string, hub=hub_name, run_worker=False
            ) as client_rt:
                ids = [f"tick{n}" for n in range(INSTANCES)]
                for instance_id in ids:
                    await client_rt.client.start_new("ticks", instance_id, SPEC)
                started = len(links["table"].requests)
                await wait_for(lambda: checkpoints(links["table"], started) >= 20, 30)

            a.send(signal.SIGSTOP)
            frozen = time.monotonic()
            try:
                async with Runtime(
                    registry, connection=azurite.connection_string, hub=hub_name, options=options
                ) as b:
                    assert b.worker is not None
                    assert await b.worker.leases.wait_until(
                        lambda owned: owned == ALL, 3 * lease + 30
                    )
                    assert time.monotonic() - frozen >= lease * 5 / 6 - 1  # past a's deadline
                    for link in links.values():
                        link.refuse(is_ownership, REFUSE_ALL)
                    marks = {name: len(link.requests) for name, link in links.items()}
                    resumed = time.time()
                    a.send(signal.SIGCONT)
                    await wait_for(lambda: not a.owned(), 3 * lease + 30)
                    # `a` knows it owns nothing; it stays alive and keeps trying to renew or
                    # claim, while `b` works on. Anything `a` would still do shows up here.
                    refused = sum(link.refused for link in links.values())
                    await wait_for(
                        lambda: sum(link.refused for link in links.values()) >= refused + 3, 30
                    )
                    status = await b.client.get_status("tick0")
                    assert status.runtime_status is OrchestrationRuntimeStatus.Running
                    after = [
                        line
                        for name, link in links.items()
                        for line in link.requests[marks[name] :]
                        if forbidden(line, hub_name)
                    ]
                    for link in links.values():
                        link.refuse(is_ownership, 0)
            finally:
                a.send(signal.SIGCONT)
            assert not after, f"{len(after)} requests after resuming: {after[:10]}"
            assert reacquired_at(a.stderr_path.read_text(errors="replace"), resumed) == math.inf
    finally:
        await asyncio.gather(*(link.close() for link in links.values()))
