"""One scenario on one engine in this process, which the suite starts fresh for every run.

``python -m bench.child --engine durable_ext --scenario sequential --size 200 --connection ...``
prints one line ``BENCH-RESULT {json}`` on stdout (libraries may print other lines).

What is measured, after the engine has started and run a warm-up of every scenario shape:

- the wall time from just before the scenario's first client call to the moment the client saw
  the last orchestration complete (``time.perf_counter``);
- this process's CPU time over the scenario (``getrusage``: every thread, user + system), and, for
  durable_ext, Azurite's CPU time over the same stretch (/proc/PID/stat);
- peak RSS during the scenario (VmHWM, reset to the current RSS just before it starts) and RSS
  before and after it;
- storage requests (durable_ext: every HTTP request, by category) or SQL statements (DBOS);
- when the activities ran, as recorded by the activity code (so a fan-out splits into the time
  until the last activity ran and the fan-in tail after it).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .engines import Engine
from .metrics import Clock, percentile, reset_peak_rss, self_memory_mb

__all__ = ["RESULT_PREFIX", "main", "make_engine", "measure"]

RESULT_PREFIX = "BENCH-RESULT "


def make_engine(
    engine: str,
    *,
    connection: str | None = None,
    hub: str | None = None,
    options: Sequence[str] = (),
    workdir: Path | None = None,
) -> Engine:
    """An engine by name, importing its framework only now."""
    if engine == "durable_ext":
        from .engines.ours import DurableExtEngine, parse_option

        if connection is None or hub is None:
            raise ValueError("durable_ext needs --connection and --hub")
        return DurableExtEngine(connection, hub, dict(parse_option(o) for o in options))
    if engine == "durable_ext_http":
        from .engines.http_host import DurableExtHttpEngine, parse_setting

        if connection is None or hub is None:
            raise ValueError("durable_ext_http needs --connection and --hub")
        settings = dict(parse_setting(o) for o in options)
        return DurableExtHttpEngine(connection, hub, settings, workdir)
    if engine == "dbos":
        from .engines.dbos_peer import DbosEngine

        if workdir is None:
            raise ValueError("dbos needs --workdir")
        return DbosEngine(workdir)
    if engine == "durabletask":
        from .engines.durabletask_peer import DurableTaskEngine

        return DurableTaskEngine()
    raise ValueError(f"unknown engine {engine!r}")


def measure(
    engine: Engine,
    scenario: str,
    size: int,
    steps: int,
    *,
    warm_up: bool = True,
    storage_pid: int | None = None,
    profile: Path | None = None,
) -> dict[str, Any]:
    """Start the engine, warm it up, run the scenario once under measurement, stop it."""
    engine.start()
    try:
        if warm_up:
            engine.warm_up()
        gc.collect()
        peak_reset = reset_peak_rss()
        before = self_memory_mb()
        engine.reset_storage_requests()
        # CPU time of the profiled (event-loop) thread, not wall time: waiting in epoll is free.
        profiler = cProfile.Profile(time.thread_time) if profile is not None else None
        clock = Clock(storage_pid)
        if profiler is not None:
            profiler.enable()
        outcome = engine.run(scenario, size, steps)
        if profiler is not None:
            profiler.disable()
        window = clock.stop()
        after = self_memory_mb()
        requests = engine.storage_requests()
        host_cpu = engine.host_cpu_s()
        versions = engine.versions()
    finally:
        engine.stop()
    if profiler is not None and profile is not None:
        profiler.dump_stats(profile)
    finished_at = outcome.detail.pop("finished_at", None)
    wall = finished_at - clock.started if finished_at is not None else window.wall_s
    activities = engine.activities
    result: dict[str, Any] = {
        "engine": engine.name,
        "scenario": scenario,
        "size": size,
        "steps": steps,
        "units": outcome.units,
        "correct": outcome.correct,
        "wall_s": wall,
        "throughput_per_s": outcome.units / wall if wall > 0 else None,
        "cpu_s": window.cpu_s,
        "storage_cpu_s": window.storage_cpu_s,
        "other_cpu_s": window.other_cpu_s,
        "rss_before_mb": before.get("rss"),
        "rss_peak_mb": after.get("peak") if peak_reset else None,
        "rss_after_mb": after.get("rss"),
        "activities_run": activities.count,
        "until_last_activity_s": (
            activities.last - clock.started if activities.last is not None else None
        ),
        "requests": requests,
        "detail": outcome.detail,
        "versions": versions,
    }
    if host_cpu is not None:  # an engine in two processes: the host's CPU and this driver's
        result.update(
            cpu_s=window.cpu_s + host_cpu,
            host_cpu_s=host_cpu,
            driver_cpu_s=window.cpu_s,
            other_cpu_s=max(0.0, window.other_cpu_s - host_cpu),
        )
    if requests and "total" in requests:
        # The worker's requests; the bench client's (starts, raises, status polls) apart.
        result["requests_per_unit"] = requests["total"] / max(outcome.units, 1)
        if activities.count:
            result["requests_per_activity"] = requests["total"] / activities.count
        if "client" in requests:
            result["client_requests_per_unit"] = requests["client"]["total"] / max(outcome.units, 1)
    if outcome.samples_s:
        samples_ms = [s * 1000 for s in outcome.samples_s]
        result["samples_ms"] = samples_ms
        result["p50_ms"] = percentile(samples_ms, 50)
        result["p99_ms"] = percentile(samples_ms, 99)
    return result


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run one benchmark scenario on one engine.")
    parser.add_argument(
        "--engine",
        required=True,
        choices=["durable_ext", "durable_ext_http", "dbos", "durabletask"],
    )
    parser.add_argument("--scenario", required=True)
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--steps", type=int, default=5, help="activities per HelloCities run")
    parser.add_argument("--connection", help="storage connection string (durable_ext)")
    parser.add_argument("--hub", help="task hub name (durable_ext, durable_ext_http)")
    parser.add_argument("--storage-pid", type=int, help="Azurite's pid, to measure its CPU")
    parser.add_argument("--workdir", type=Path, help="a folder for the engine's files (dbos)")
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a WorkerOptions override for durable_ext (seconds for durations), an app setting "
        "of the host for durable_ext_http; repeatable",
    )
    parser.add_argument("--no-warm-up", action="store_true")
    parser.add_argument("--profile", type=Path, help="write cProfile stats of the scenario here")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    engine = make_engine(
        args.engine,
        connection=args.connection,
        hub=args.hub,
        options=args.option,
        workdir=args.workdir,
    )
    result = measure(
        engine,
        args.scenario,
        args.size,
        args.steps,
        warm_up=not args.no_warm_up,
        storage_pid=args.storage_pid,
        profile=args.profile,
    )
    result["options"] = list(args.option)
    sys.stdout.write(RESULT_PREFIX + json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
