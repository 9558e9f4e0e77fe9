"""Entity throughput: operations per second on one entity and spread over 100 entities.

A client signals `add 1` `ops` times (50 signals in flight) with no worker running: to one entity,
then round-robin to 100 entities. Then a `durable_ext.Runtime` (worker and client in this process,
the bench's `WorkerOptions`) runs them; the clock runs from the first operation seen applied to the
moment the entities' states (read the way a user reads them: `read_entity_state`,
`list_entities(fetch_state=True)`) add up to `ops`.
Durable Functions publishes 64 operations/s per entity on Azure Storage as its target
(`DF_ENTITY_TARGET`).

    .venv/bin/python -m bench.entities --connection CS --hub HUB [--ops 2000] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import durable_ext as df
from durable_ext import Runtime
from durable_ext.worker import FunctionRegistry

from .engines import ours
from .metrics import process_cpu_seconds

__all__ = ["DF_ENTITY_TARGET", "measure_entities", "main"]

DF_ENTITY_TARGET = 64.0
"""Operations per second per entity: Durable Functions' published target on Azure Storage."""
SPREAD = 100
IN_FLIGHT = 50
POLL = 0.01
TIMEOUT = 600.0


def counter(context: df.DurableEntityContext) -> None:
    context.set_state(context.get_state(lambda: 0) + context.get_input())


def _registry() -> FunctionRegistry:
    functions = FunctionRegistry()
    for name in ("Counter", "Spread"):
        functions.add_entity(name, counter)
    return functions


async def _signal_all(client: Any, targets: Sequence[df.EntityId]) -> float:
    """Send `add 1` to each target (IN_FLIGHT at a time); the seconds the sends took."""
    began = time.monotonic()
    pending = iter(targets)

    async def sender() -> None:
        for target in pending:
            await client.signal_entity(target, "add", 1)

    await asyncio.gather(*(sender() for _ in range(IN_FLIGHT)))
    return time.monotonic() - began


async def _total(client: Any, name: str, spread: int) -> int:
    if spread == 1:
        read = await client.read_entity_state(df.EntityId(name, "0"))
        return int(read.entity_state or 0)
    total, token = 0, None
    while True:
        page = await client.list_entities(
            name, fetch_state=True, page_size=1000, continuation_token=token
        )
        total += sum(int(e.state or 0) for e in page.entities)
        token = page.continuation_token
        if token is None:
            return total


async def _wait_total(
    client: Any, name: str, spread: int, done: Callable[[int], bool]
) -> tuple[int, float]:
    """Poll until `done(total)`: the total and the time it was seen."""
    deadline = time.monotonic() + TIMEOUT
    while not done(total := await _total(client, name, spread)):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name}: {total} operations applied after {TIMEOUT} s")
        await asyncio.sleep(POLL)
    return total, time.monotonic()


async def _run_one(connection: str, hub: str, name: str, ops: int, spread: int) -> dict[str, Any]:
    """Queue `ops` signals with no worker running, then start one and time it from the first
    operation applied to the last (so neither the sends nor the worker's start are counted)."""
    targets = [df.EntityId(name, str(i % spread)) for i in range(ops)]
    loader = Runtime(_registry(), connection=connection, hub=hub, run_worker=False)
    async with loader:
        send_s = await _signal_all(loader.client, targets)
    runtime = Runtime(_registry(), connection=connection, hub=hub, options=ours.worker_options())
    async with runtime:
        cpu = process_cpu_seconds()
        first, began = await _wait_total(runtime.client, name, spread, lambda n: n > 0)
        done, ended = await _wait_total(runtime.client, name, spread, lambda n: n >= ops)
        cpu = process_cpu_seconds() - cpu
    if done != ops:
        raise AssertionError(f"{done} operations applied, {ops} signalled")
    wall = ended - began
    measured = wall > 0 and ops > first  # else one batch ran them all: no rate to tell
    return {
        "entities": spread,
        "ops": ops,
        "measured_ops": ops - first,
        "wall_s": wall,
        "cpu_s": cpu,
        "ops_per_s": (ops - first) / wall if measured else None,
        "ops_per_s_per_entity": (ops - first) / wall / spread if measured else None,
        "client_sends_per_s": ops / send_s,
    }


async def measure_entities(connection: str, hub: str, ops: int) -> dict[str, Any]:
    """One entity, then `SPREAD` entities, on `hub` (the clock starts at the first operation
    applied, so the worker's start-up needs no warm-up run)."""
    one = await _run_one(connection, hub, "Counter", ops, 1)
    spread = await _run_one(connection, hub, "Spread", ops, SPREAD)
    return {"ops": ops, "df_target_ops_per_s": DF_ENTITY_TARGET, "one": one, "spread": spread}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connection", required=True)
    parser.add_argument("--hub", required=True)
    parser.add_argument("--ops", type=int, default=2000)
    parser.add_argument("--json", type=Path, default=None, help="write the result here")
    args = parser.parse_args(argv)
    result = asyncio.run(measure_entities(args.connection, args.hub, args.ops))
    text = json.dumps(result, indent=1)
    if args.json is not None:
        args.json.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
