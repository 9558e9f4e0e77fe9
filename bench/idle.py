"""Worker memory with many idle orchestrations: RSS of a worker process holding 10,000 instances
that each wait for an external event.

The worker runs in its own process (``python -m bench.idle --worker ...``), with the bench's
`WorkerOptions` (so the instance cache has its default size), and prints a status line every
half second: its RSS and peak RSS (/proc/self/status; garbage is collected first when the driver sends
SIGUSR1, once all instances are idle), CPU seconds, how many orchestrations have
run their first episode (counted by the orchestrator code), and how many instances its cache
holds. The suite's process is the client: it starts the instances (16 start calls in flight),
waits until the worker has run every first episode and no instance is Pending any more, lets the
worker settle, and reads its RSS. Then it stops the worker and deletes the hub.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import signal
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from azure.core.exceptions import ServiceRequestError, ServiceResponseError

from durable_ext import Runtime
from durable_ext.orchestration.status import OrchestrationRuntimeStatus
from harness.azurite import die_with_parent

from .engines import ours
from .metrics import Clock, process_cpu_seconds, self_memory_mb

__all__ = ["STATUS_PREFIX", "measure_idle", "worker_main"]

STATUS_PREFIX = "BENCH-IDLE "
START_CONCURRENCY = 16
START_ATTEMPTS = 3
SETTLE_SECONDS = 3.0
REPORT_EVERY = 0.5


# -- the worker process -----------------------------------------------------------------------------
async def _serve(connection: str, hub: str, options: dict[str, Any]) -> None:
    runtime = Runtime(
        ours.registry(), connection=connection, hub=hub, options=ours.worker_options(options)
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    collect = asyncio.Event()
    # SIGUSR1: collect garbage before the next report (a full collection with thousands of
    # instances in memory stalls the event loop, so it is done only when asked, at the end).
    loop.add_signal_handler(signal.SIGUSR1, collect.set)
    async with runtime:
        worker = runtime.worker
        assert worker is not None
        while not stop.is_set():
            if collect.is_set():
                collect.clear()
                gc.collect()
            memory = self_memory_mb()
            status = {
                "rss_mb": memory.get("rss"),
                "peak_mb": memory.get("peak"),
                "cpu_s": process_cpu_seconds(),
                "first_episodes": ours.IDLE.started,
                "cached_instances": len(worker.orchestrations.cache),
            }
            sys.stdout.write(STATUS_PREFIX + json.dumps(status) + "\n")
            sys.stdout.flush()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), REPORT_EVERY)


def worker_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description="A durable_ext worker that reports its memory.")
    parser.add_argument("--connection", required=True)
    parser.add_argument("--hub", required=True)
    parser.add_argument("--option", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args(argv)
    options = dict(ours.parse_option(o) for o in args.option)
    asyncio.run(_serve(args.connection, args.hub, options))
    return 0


# -- the measuring side ------------------------------------------------------------------------------
class _WorkerProcess:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.latest: dict[str, Any] | None = None
        self.first: dict[str, Any] | None = None
        self.updated = asyncio.Event()
        self.peak_rss_mb = 0.0
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            line = raw.decode(errors="replace").strip()
            if not line.startswith(STATUS_PREFIX):
                continue
            status: dict[str, Any] = json.loads(line[len(STATUS_PREFIX) :])
            if self.first is None:
                self.first = status
            self.latest = status
            self.peak_rss_mb = max(self.peak_rss_mb, status.get("rss_mb") or 0.0)
            self.updated.set()

    async def next_status(self, timeout: float) -> dict[str, Any]:
        self.updated.clear()
        async with asyncio.timeout(timeout):
            await self.updated.wait()
        assert self.latest is not None
        return self.latest

    async def stop(self) -> str:
        if self.process.returncode is None:
            self.process.terminate()
            try:
                async with asyncio.timeout(30):
                    await self.process.wait()
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)
        stderr = b""
        if self.process.stderr is not None:
            stderr = await self.process.stderr.read()
        return stderr.decode(errors="replace")[-2000:]


async def measure_idle(
    connection: str,
    hub: str,
    count: int,
    *,
    options: Sequence[str] = (),
    timeout: float = 900.0,
    progress: Callable[[str], None] | None = None,
    storage_pid: int | None = None,
) -> dict[str, Any]:
    """Start `count` orchestrations that wait for an event; the worker's RSS once all are idle."""
    command = [sys.executable, "-m", "bench.idle", "--worker", "--connection", connection]
    command += ["--hub", hub]
    for option in options:
        command += ["--option", option]
    process = await asyncio.create_subprocess_exec(
        *command,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        preexec_fn=die_with_parent(),  # no orphaned worker if the suite is killed
    )
    worker = _WorkerProcess(process)
    client_runtime = Runtime(ours.registry(), connection=connection, hub=hub, run_worker=False)
    result: dict[str, Any] = {"count": count, "options": list(options)}
    try:
        baseline = await worker.next_status(60)
        result["rss_before_mb"] = baseline["rss_mb"]
        async with client_runtime:
            client = client_runtime.client
            gate = asyncio.Semaphore(START_CONCURRENCY)

            retried = 0
            finished: list[float] = []

            async def start(index: int) -> None:
                nonlocal retried
                async with gate:
                    for attempt in range(1, START_ATTEMPTS + 1):
                        try:
                            await client.start_new("WaitForGo", instance_id=f"idle-{index:06d}")
                            finished.append(time.perf_counter())
                            return
                        except (ServiceRequestError, ServiceResponseError):
                            if attempt == START_ATTEMPTS:
                                raise
                            retried += 1
                            await asyncio.sleep(0.5 * attempt)

            clock = Clock(storage_pid)
            began = clock.started
            await asyncio.gather(*(start(i) for i in range(count)))
            result["start_calls_s"] = time.perf_counter() - began
            result["start_retries_after_connection_errors"] = retried
            result["starts_per_s_by_tenth"] = _rates_by_tenth(began, sorted(finished))
            if progress is not None:
                progress(f"  {count:,} start calls done in {result['start_calls_s']:.0f} s")
            async with asyncio.timeout(timeout):
                reported = time.perf_counter()
                while True:
                    status = await worker.next_status(60)
                    if status["first_episodes"] >= count:
                        break
                    if progress is not None and time.perf_counter() - reported > 15:
                        reported = time.perf_counter()
                        progress(
                            f"  {status['first_episodes']:,} first episodes, worker RSS "
                            f"{status['rss_mb']:.0f} MB"
                        )
                pending = [OrchestrationRuntimeStatus.Pending]
                while True:
                    page, token = await client.list_instances(runtime_status=pending, page_size=1)
                    if not page and not token:
                        break
                    await asyncio.sleep(0.5)
            window = clock.stop()
            result["all_running_s"] = window.wall_s
            result["client_cpu_s"] = window.cpu_s
            result["storage_cpu_s"] = window.storage_cpu_s
            result["other_cpu_s"] = window.other_cpu_s
            result["running_per_s"] = count / result["all_running_s"]
            await asyncio.sleep(SETTLE_SECONDS)
            process.send_signal(signal.SIGUSR1)
            await worker.next_status(60)  # may predate the collection
            settled = await worker.next_status(60)
            result.update(
                rss_idle_mb=settled["rss_mb"],
                rss_peak_mb=settled["peak_mb"],
                worker_cpu_s=settled["cpu_s"] - baseline["cpu_s"],
                first_episodes=settled["first_episodes"],
                cached_instances=settled["cached_instances"],
            )
            result["rss_per_instance_kb"] = (
                (settled["rss_mb"] - baseline["rss_mb"]) * 1024 / count if count else None
            )
            await client_runtime.hub.delete()
    finally:
        stderr = await worker.stop()
    if process.returncode not in (0, -15):
        result["worker_stderr"] = stderr
    return result


def _rates_by_tenth(began: float, finished: list[float]) -> list[float]:
    """Start calls per second in each tenth of the starts, in order (shows slowing down)."""
    if len(finished) < 10:
        return []
    tenth = len(finished) // 10
    rates, previous = [], began
    for i in range(1, 11):
        end = finished[min(i * tenth, len(finished)) - 1]
        rates.append(tenth / (end - previous) if end > previous else 0.0)
        previous = end
    return rates


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        sys.exit(worker_main(sys.argv[2:]))
    sys.exit("usage: python -m bench.idle --worker --connection CS --hub HUB [--option N=V]")
