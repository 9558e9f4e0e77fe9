"""A chaos worker process: runs `tests/reliability/chaos_app.py` on a task hub until signalled.

    python -m tests.reliability.chaos_worker --connection CS --hub HUB --worker-id ID [--seed S]
        [--max-orchestrations N] [--slow-episodes SHARE --slow-episode-seconds SECONDS]

The same command line and timings as `tests/worker/worker_process.py` (15 s leases renewed every
2 s, 10 s queue visibility), with the chaos app's registry. `--seed` seeds Python's global random
generator before the worker starts, so the crash decisions of `DURABLE_EXT_FAULT_POINTS` (drawn
from that generator) are reproducible for a given worker generation, timing aside.

The no-fault phase makes messages wait in memory with two more options: `--max-orchestrations`
caps the episodes the worker runs at once (messages queue for a slot), and `--slow-episodes`
holds that share of the episodes at their start (the `episode-start` stall point: a slow disk or a
pause, with the episode's messages taken) for `--slow-episode-seconds`, so that the messages of
that episode, and those waiting for its instance or its slot, wait longer than their visibility
timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import random
import signal
import sys
from collections.abc import Iterator, Sequence
from dataclasses import replace

from durable_ext.fault_points import stalled
from durable_ext.runtime import Runtime
from tests.reliability.chaos_app import registry
from tests.worker.worker_process import READY_MARKER, options_for, parse_args

__all__ = ["main", "SLOW_EPISODE"]

SLOW_EPISODE = "Slow episode"
"""The start of the log line of every episode held by `--slow-episodes`."""

log = logging.getLogger("chaos_worker")


@contextlib.contextmanager
def slow_episodes(share: float, seconds: float, rng: random.Random) -> Iterator[None]:
    """While the block runs, hold a `share` of the episodes at their start for `seconds`."""
    if share <= 0 or seconds <= 0:
        yield
        return

    async def pause() -> None:
        if rng.random() < share:
            log.info("%s: holding its messages for %g s", SLOW_EPISODE, seconds)
            await asyncio.sleep(seconds)  # the slowness itself, not a wait for something

    with stalled("episode-start", pause):
        yield


async def run(args: argparse.Namespace) -> None:
    """Run the worker until SIGTERM or SIGINT, then stop it gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    options = options_for(args)
    if args.max_orchestrations:
        options = replace(options, max_concurrent_orchestrator_functions=args.max_orchestrations)
    runtime = Runtime(registry, connection=args.connection, hub=args.hub, options=options)
    slow = slow_episodes(
        args.slow_episodes, args.slow_episode_seconds, random.Random(f"{args.seed}-slow")
    )
    with slow:
        async with runtime:
            log.info("%s worker %s on hub %s", READY_MARKER, args.worker_id, args.hub)
            await stop.wait()
            log.info("Signal received: worker %s stopping gracefully", args.worker_id)
    log.info("Worker %s stopped", args.worker_id)


def main(argv: Sequence[str] | None = None) -> int:
    own = argparse.ArgumentParser(add_help=False)
    own.add_argument("--seed")
    own.add_argument("--max-orchestrations", type=int, default=0)
    own.add_argument("--slow-episodes", type=float, default=0.0)
    own.add_argument("--slow-episode-seconds", type=float, default=0.0)
    extra, rest = own.parse_known_args(list(sys.argv[1:] if argv is None else argv))
    args = parse_args(rest)
    for name, value in vars(extra).items():
        setattr(args, name, value)
    if extra.seed is not None:
        random.seed(extra.seed)
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
