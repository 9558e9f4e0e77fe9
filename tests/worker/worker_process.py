"""A worker process for fault tests: runs `tests/worker/fault_app.py` on a task hub until signalled.

    python -m tests.worker.worker_process --connection CS --hub HUB --worker-id ID

It runs a `Runtime` with the fast test timings of `tests/worker/conftest.py` (15 s leases, renew
every 2 s, acquire every 1 s, polling at most 0.5 s; `--lease-seconds`, `--legacy` change the
lease interval and the partition manager) and short queue visibility timeouts and
in-process handoff hold (10 s), so that messages a killed worker had taken reappear within seconds
rather than after the 5-minute (30-second for handoffs) defaults.
SIGTERM or SIGINT stops it gracefully: in-flight work finishes (up to the shutdown timeout) and its
partition leases are released. SIGKILL is the crash the tests inflict. With the environment
variable `TRACE_FILE_ENV` set to a path, distributed tracing is on and every span the worker ends is
appended to that file as a JSON line (`tests/monitoring/span_file.py`). Logs go to stderr; once the
worker has started it logs a line containing `READY`. With `--ownership-file PATH` it keeps PATH
holding the JSON list of the partitions it believes it owns (rewritten atomically on every change),
so a test can tell when every worker's own view agrees with the lease blobs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from durable_ext.runtime import Runtime
from durable_ext.worker import WorkerOptions
from durable_ext.worker.ownership_thread import OwnershipThread
from tests.monitoring.span_file import TRACE_FILE_ENV, install_span_file
from tests.worker.conftest import fast_options
from tests.worker.fault_app import registry

__all__ = ["main", "options_for", "READY_MARKER"]

READY_MARKER = "READY"
log = logging.getLogger("worker_process")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connection", required=True, help="storage connection string")
    parser.add_argument("--hub", required=True, help="task hub name")
    parser.add_argument("--worker-id", required=True, help="worker id (lease owner name)")
    parser.add_argument(
        "--visibility-seconds",
        type=float,
        default=10.0,
        help="control-queue and work-item visibility timeout (default 10 s)",
    )
    parser.add_argument(
        "--max-activities",
        type=int,
        default=4,
        help="max concurrent activity functions of this worker (default 4)",
    )
    parser.add_argument(
        "--lease-seconds",
        type=float,
        default=15.0,
        help="partition lease interval (default 15 s, the shortest blob lease)",
    )
    parser.add_argument(
        "--legacy",
        action="store_true",
        help="own partitions through blob leases (useLegacyPartitionManagement)",
    )
    parser.add_argument(
        "--ownership-file",
        type=Path,
        default=None,
        help="keep this file holding the JSON list of partitions this worker owns",
    )
    parser.add_argument(
        "--log-level",
        default="DEBUG",
        help="log level of this process (default DEBUG: the log is only read when a test fails)",
    )
    return parser.parse_args(argv)


def _trace_to_file() -> bool:
    """Install a tracer provider writing spans to the file `TRACE_FILE_ENV` names, if it is set."""
    path = os.environ.get(TRACE_FILE_ENV)
    if path:
        install_span_file(Path(path))
    return bool(path)


def options_for(args: argparse.Namespace) -> WorkerOptions:
    """The fast test timings, with this worker's id and the short visibility timeouts (which also
    bound how long a message handed over in-process stays hidden if this worker dies)."""
    visibility = timedelta(seconds=args.visibility_seconds)
    return fast_options(
        worker_id=args.worker_id,
        control_queue_visibility_timeout=visibility,
        work_item_queue_visibility_timeout=visibility,
        handoff_hold=visibility,
        max_concurrent_activity_functions=args.max_activities,
        distributed_tracing=_trace_to_file(),
        lease_interval=timedelta(seconds=args.lease_seconds),
        use_legacy_partition_management=args.legacy,
    )


def write_ownership(path: Path, owned: frozenset[int]) -> None:
    """Replace `path` with the sorted JSON list of `owned` (atomically: readers never see half)."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(sorted(owned)))
    os.replace(partial, path)


async def publish_ownership(leases: OwnershipThread, path: Path) -> None:
    """Rewrite `path` whenever the partitions this worker holds change, until cancelled."""
    while True:
        published = leases.owned
        write_ownership(path, published)
        await leases.wait_until(published.__ne__, timeout=1.0)


async def run(args: argparse.Namespace) -> None:
    """Run the worker until SIGTERM or SIGINT, then stop it gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    runtime = Runtime(registry, connection=args.connection, hub=args.hub, options=options_for(args))
    async with runtime:
        publisher: asyncio.Task[None] | None = None
        if args.ownership_file is not None and runtime.worker is not None:
            publisher = asyncio.create_task(
                publish_ownership(runtime.worker.leases, args.ownership_file)
            )
        log.info("%s worker %s on hub %s", READY_MARKER, args.worker_id, args.hub)
        await stop.wait()
        log.info("Signal received: worker %s stopping gracefully", args.worker_id)
        if publisher is not None:
            publisher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await publisher
    if args.ownership_file is not None:
        write_ownership(args.ownership_file, frozenset())
    log.info("Worker %s stopped", args.worker_id)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=args.log_level.upper(),
        format=f"%(asctime)s {args.worker_id} %(name)s %(levelname)s %(message)s",
    )
    # The Azure SDK logs every request at INFO; keep the worker's own story readable.
    logging.getLogger("azure").setLevel(logging.WARNING)
    logging.getLogger("asyncio").setLevel(logging.WARNING)
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
