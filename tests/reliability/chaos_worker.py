"""A chaos worker process: runs `tests/reliability/chaos_app.py` on a task hub until signalled.

    python -m tests.reliability.chaos_worker --connection CS --hub HUB --worker-id ID [--seed S]

The same command line and timings as `tests/worker/worker_process.py` (15 s leases renewed every
2 s, 10 s queue visibility), with the chaos app's registry. `--seed` seeds Python's global random
generator before the worker starts, so the crash decisions of `DURABLE_EXT_FAULT_POINTS` (drawn
from that generator) are reproducible for a given worker generation, timing aside.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import signal
import sys
from collections.abc import Sequence

from durable_ext.runtime import Runtime
from tests.reliability.chaos_app import registry
from tests.worker.worker_process import READY_MARKER, options_for, parse_args

__all__ = ["main"]

log = logging.getLogger("chaos_worker")


async def run(args: argparse.Namespace) -> None:
    """Run the worker until SIGTERM or SIGINT, then stop it gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    runtime = Runtime(registry, connection=args.connection, hub=args.hub, options=options_for(args))
    async with runtime:
        log.info("%s worker %s on hub %s", READY_MARKER, args.worker_id, args.hub)
        await stop.wait()
        log.info("Signal received: worker %s stopping gracefully", args.worker_id)
    log.info("Worker %s stopped", args.worker_id)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    seed: str | None = None
    if "--seed" in argv:
        at = argv.index("--seed")
        seed = argv[at + 1]
        del argv[at : at + 2]
    args = parse_args(argv)
    if seed is not None:
        random.seed(seed)
    logging.basicConfig(
        stream=sys.stderr,
        level=args.log_level.upper(),
        format=f"%(asctime)s {args.worker_id} %(name)s %(levelname)s %(message)s",
    )
    logging.getLogger("azure").setLevel(logging.WARNING)
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
