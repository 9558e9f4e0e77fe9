"""The benchmark suite: every scenario on durable_ext and its peers, the physical floor, replay,
replay growth with the instance cache on and off, CPU per episode along a long cached chain, worker
memory with idle orchestrations, the
levers, and a few scenarios again on an in-memory Azurite (storage sensitivity); then
bench/results.json, docs/performance.md and docs/performance.png.

``python -m bench`` (or ``make bench``) runs it all with the issue's sizes; ``--quick`` runs the
same machinery at tiny sizes. It starts its own Azurite (free ports, a temporary folder) and
stops it at the end. Every scenario run is a fresh process (``bench.child``); runs are
interleaved (run 1 of every scenario and engine, then run 2, ...) and the engines' order rotates
from run to run, so slow drifts of the machine spread evenly. Figures are medians over runs.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import hashlib
import json
import math
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from durable_ext.worker import WorkerOptions
from harness.azurite import AzuriteInstance

from . import report, results, telemetry
from .child import RESULT_PREFIX
from .engines import ENGINES, missing_reason
from .episode import summarize_episodes
from .floor import measure_floor
from .formatting import num
from .http_analysis import HTTP_ENGINE, profile_host, summarize_http
from .idle import measure_idle
from .method import METHOD
from .metrics import load_average, median, pid_memory_mb
from .profiling import summarize_profile
from .repeat_analysis import summarize_repeat
from .scale_out import summarize_scale_out
from .workloads import FULL, QUICK, SCENARIOS, Sizes

__all__ = ["LEVERS", "SENSITIVITY_SCENARIOS", "Lever", "Suite", "main"]

REPO_ROOT = Path(__file__).resolve().parent.parent
CHILD_TIMEOUT = 900.0


@dataclass(frozen=True, slots=True)
class Lever:
    """A performance lever of the worker, switched off through a `WorkerOptions` field and
    measured (one run each) on the scenarios it matters for."""

    key: str
    label: str
    off: str
    """The ``NAME=VALUE`` option that turns it off."""
    description: str
    scenarios: tuple[str, ...] = ("sequential", "fanout")
    """The scenarios run with the lever off (compared with the main runs' medians)."""
    engine: str = "durable_ext"
    """The engine it is measured on; for ``durable_ext_http`` `off` is an app setting of the
    host (a host option), not a `WorkerOptions` field."""

    @property
    def field(self) -> str:
        return self.off.partition("=")[0]


LEVERS = (
    Lever(
        "instance_cache",
        "Instance cache",
        "instance_cache_size=0",
        "Replayed orchestrations stay in memory between episodes (DTFx extended sessions); an "
        "episode then applies only its new events and skips the history read. Safety: an entry "
        "holds only what a checkpoint committed, with the sentinel ETag it returned; the next "
        "checkpoint is conditional on that ETag, so another writer in between makes it fail "
        "(412) and the instance is reloaded from storage. Entries are dropped on lease loss and "
        "expire when idle.",
        ("sequential", "fanout"),
    ),
    Lever(
        "in_process_handoff",
        "In-process handoff",
        "in_process_handoff=false",
        "Work this process sends to itself is processed from memory without a queue receive: a "
        "work item for an activity it will run, a message to an orchestration in a partition it "
        "owns, and an activity's result for an orchestration it owns. Work items and "
        "orchestration messages are still written, invisible for `handoff_hold` (renewed while "
        "they wait or run), and deleted by the checkpoint that consumes them. An activity's "
        "result is not written at all: it is handed over bound to its work item, which stays "
        "held until the orchestration's checkpoint records the result in history and then "
        "deletes it. Safety: if the process dies first, the work item becomes visible again "
        "after at most `handoff_hold` and any worker runs the activity again (at least once, as "
        "in DTFx); nothing that was checkpointed depends on memory. Switched off, every message "
        "is sent visible and received, and results go through the control queue.",
        ("sequential", "fanout"),
    ),
    Lever(
        "handoff_backlog",
        "Handoff backlog",
        "handoff_backlog=0",
        "Work items an orchestration schedules beyond the activities this process runs at once "
        "(`max_concurrent_activity_functions`) are still handed over in-process, up to "
        "`handoff_backlog` (1000) more, and wait in memory for a free slot instead of going to "
        "the queue to be received again. Safety: each waiting work item is in its queue, "
        "invisible and renewed while it waits; if the process dies, it becomes visible after at "
        "most `handoff_hold` and any worker runs it. The cost: while held they cannot be taken "
        "by another worker, so a large fan-out is spread over other workers only beyond the "
        "backlog. With 0, only as many work items as there are free activity slots are handed "
        "over; the rest are sent visible and received from the queue.",
        ("fanout",),
    ),
    Lever(
        "instance_status_refresh",
        "Instance status coalescing",
        "instance_status_refresh=0",
        "While an orchestration runs with an unchanged runtime status and custom status, a "
        "checkpoint skips its Instances merge unless the last one is older than "
        "`instance_status_refresh` (10 s); a new execution, any change of status or custom "
        "status, and the end (with its output) are merged at once. DTFx merges at every "
        "checkpoint, which is what 0 does. Safety: the history table is the truth and is "
        "written at every checkpoint; the Instances row only reflects it, and what a reader can "
        "see of it (status, custom status, output) is always written at once: only "
        "LastUpdatedTime may lag by up to the interval.",
        ("hellocities", "events"),
    ),
    Lever(
        "settle_in_background",
        "Deletes after the checkpoint in the background (off by default)",
        "settle_in_background=true",
        "Off by default; the `off` column here is the effect of switching it ON. After a "
        "checkpoint the messages it applied (the activity's work item, an event, the start "
        "message) are deleted in the background, so the instance's next episode starts without "
        "waiting for the deletes, which would take one storage round trip per step off a chain "
        "of activities. On Azurite its effect is not shown: its queue writes run one at a "
        "time, so a background delete makes the next episode's send wait about as long as the "
        "delete itself (a request timeline of a chain shows it). Single lever runs disagreed "
        "on 2026-12-05 (later runs tend to be faster than the main runs' medians), so the "
        "default was chosen by an interleaved A/B, 4 rounds alternating on and off: off was "
        "ahead in every round on sequential (median 191 against 181/s) and in 3 of 4 on "
        "latency (p50 20.5 against 21.8 ms). Safety: the messages are "
        "marked applied before; until "
        "deleted they stay held (renewed); a stop or a partition handover waits for the deletes; "
        "after a crash an undeleted one comes back and is recognised as already applied, exactly "
        "as when a crash falls between the history write and the delete with the lever off.",
        ("sequential", "latency"),
    ),
    Lever(
        "client_handoff",
        "Client messages handed over in-process",
        "client_handoff=false",
        "What the client of this process sends to an instance whose partition this worker owns "
        "(a start, an event, terminate, suspend, resume, an entity signal) is written to the "
        "control queue held invisible (`handoff_hold`) and given to the orchestration dispatcher "
        "in memory, as the worker already does with its own messages: no receive round trip, "
        "no polling delay. Safety: the message is in the queue before the client's call returns; "
        "if the process dies before the episode deletes it, it becomes visible after at most "
        "`handoff_hold` and any worker processes it. The cost: a crash delays that message by up "
        "to the hold. Off, the client sends it visible and the worker receives it.",
        ("latency", "events", "hellocities"),
    ),
    Lever(
        "status_reads",
        "Status reads from memory",
        "status_read_max_age=0",
        "A client status read in the process whose worker owns the instance (`get_status`, the "
        "check `raise_event` makes, the HTTP status endpoint behind `statusQueryGetUri`) is "
        "answered with the row this process last read, as long as no write by this process has "
        "touched the row since that read began and it is at most `status_read_max_age` (1 s) "
        "old. While the worker owns the partition it is the row's only writer besides a client "
        "elsewhere creating or purging the instance, which is seen within the max age. Safety: "
        "nothing is written differently; only reads are saved. Polling every 10 ms, as the "
        "bench does, then costs storage one read per change of the row (or per second) instead "
        "of one per poll.",
        ("sequential", "events", "latency"),
    ),
    Lever(
        "tracking_events",
        "Tracking events",
        "telemetry=off",
        "Durable Functions' tracking events (`Host.Triggers.DurableTask`, one log record per "
        "lifecycle step) are on by default, as in Durable Functions: every run above logs them "
        "at INFO to a handler that formats each record and writes it to /dev/null (what a "
        "host's console or log file costs, without the disk). Switched off, the logger is at "
        "WARNING (host.json `logging.logLevel`), so only failures are built. The goal (issue "
        "14): the default within 10% of off.",
        ("sequential", "fanout"),
    ),
    Lever(
        "tracing_off",
        "OpenTelemetry tracing (off by default)",
        "telemetry=tracing",
        "Spans are off by default (`tracing.distributedTracingEnabled`). Here the `off` column "
        "is the cost of switching them ON: the run emits every span (episodes, activities, "
        "timers) into an SDK tracer provider whose batch processor exports to a no-op "
        "exporter, on top of the default tracking events.",
        ("sequential", "fanout"),
    ),
    Lever(
        "http_raise_reads_once",
        "Over HTTP: raiseEvent reads the instance once",
        "DURABLE_EXT_HTTP_RAISE_READS_ONCE=false",
        "The management API's raiseEvent (`sendEventPostUri`) checks that the instance exists "
        "and runs (404, 410) before it looks at the body, and the client's `raise_event` read "
        "the instance row again before sending: two table reads per event. With the lever the "
        "handler reads it once (`client.active_instance`) and sends on that row "
        "(`client.raise_event_on`); the responses are the same. Safety: what is written is "
        "unchanged (one message to the instance), sent after one read that found the instance "
        "active, as the in-process `raise_event` does; an instance that finishes between the "
        "read and the send drops the event with or without the second read. Measured on the "
        "`durable_ext_http` engine (an app setting of the host).",
        ("events",),
        engine="durable_ext_http",
    ),
    Lever(
        "http_settings_once",
        "Over HTTP: the management functions take the host's keys once",
        "DURABLE_EXT_HTTP_SETTINGS_ONCE=false",
        "Every management request (a status poll, a raise, the instances query) went through "
        "the management functions' wrapper, which copied the environment and scanned it twice, "
        "case-insensitively, for the system and master keys. Under `durable-ext start` the "
        "wrapper takes the keys the host read at start instead (`set_host_keys`); the answers "
        "are the same. Safety: no storage is involved; only keys the app's own code would put "
        "into `os.environ` after the host started are missed, as the host's own mount and "
        "function keys miss them. Measured on the `durable_ext_http` engine (an app setting of "
        "the host).",
        ("latency", "events"),
        engine="durable_ext_http",
    ),
)
PROFILED_SCENARIOS = ("sequential", "fanout")
SENSITIVITY_SCENARIOS = ("hellocities", "sequential", "latency")
"""Run once each on durable_ext against a second Azurite with in-memory persistence, to show how
much of the main (disk) figures is Azurite's disk persistence."""
IN_MEMORY = "in-memory"
ON_DISK = "disk (temporary folder)"


def _log(message: str) -> None:
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


def _hub(label: str) -> str:
    return f"B{label[:20]}{secrets.token_hex(3)}"


def _worker_option_fields() -> set[str]:
    return {f.name for f in dataclasses.fields(WorkerOptions)} | {telemetry.OPTION}


class Suite:
    """One run of the whole suite against one Azurite (and, for the storage-sensitivity part, a
    second one that keeps its data in memory)."""

    def __init__(
        self,
        azurite: AzuriteInstance,
        sizes: Sizes,
        runs: int,
        engines: Sequence[str],
        workdir: Path,
        lever_runs: int,
    ) -> None:
        self.azurite = azurite
        self.sizes = sizes
        self.runs = runs
        self.engines = list(engines)
        self.workdir = workdir
        self.lever_runs = lever_runs

    # -- one child ------------------------------------------------------------------------------
    def child(
        self,
        engine: str,
        scenario: str,
        size: int,
        *,
        options: Sequence[str] = (),
        profile: Path | None = None,
        azurite: AzuriteInstance | None = None,
    ) -> dict[str, Any]:
        """Run one scenario on one engine in a fresh process; its result (or the error).
        durable_ext runs on the suite's Azurite unless `azurite` names another."""
        azurite = azurite or self.azurite
        command = [sys.executable, "-m", "bench.child", "--engine", engine]
        command += ["--scenario", scenario, "--size", str(size)]
        command += ["--steps", str(self.sizes.hellocities_steps)]
        if engine in ("durable_ext", "durable_ext_http"):
            command += ["--connection", azurite.connection_string, "--hub", _hub(scenario)]
            if azurite.pid is not None:
                command += ["--storage-pid", str(azurite.pid)]
        workdir = self.workdir / f"{engine}-{scenario}-{secrets.token_hex(3)}"
        workdir.mkdir(parents=True)
        command += ["--workdir", str(workdir)]
        for option in options:
            command += ["--option", option]
        if profile is not None:
            command += ["--profile", str(profile)]
        env = {**os.environ, "GRPC_VERBOSITY": "ERROR", "PYTHONUNBUFFERED": "1"}
        load_before = load_average()
        began = time.monotonic()
        try:
            done = subprocess.run(
                command,
                cwd=REPO_ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=CHILD_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            return self._failure(engine, scenario, f"timed out after {exc.timeout:.0f} s", "")
        line = next(
            (x for x in reversed(done.stdout.splitlines()) if x.startswith(RESULT_PREFIX)), None
        )
        if done.returncode != 0 or line is None:
            return self._failure(
                engine, scenario, f"exit status {done.returncode}", done.stderr[-3000:]
            )
        result: dict[str, Any] = json.loads(line[len(RESULT_PREFIX) :])
        result["process_s"] = time.monotonic() - began
        result["load_average_before"] = load_before
        if engine in ("durable_ext", "durable_ext_http") and azurite.pid is not None:
            result["azurite_rss_mb"] = pid_memory_mb(azurite.pid).get("rss")
        status = "ok" if result["correct"] else "WRONG OUTPUT"
        rate = result.get("throughput_per_s") or 0.0
        extra = f", p50 {result['p50_ms']:.1f} ms" if "p50_ms" in result else ""
        _log(
            f"  {engine:<12} {scenario:<12} {size:>6}  {rate:9.1f}/s{extra}  cpu "
            f"{result['cpu_s']:.2f} s  ({status}, {result['process_s']:.1f} s)"
        )
        return result

    @staticmethod
    def _failure(engine: str, scenario: str, reason: str, stderr: str) -> dict[str, Any]:
        _log(f"  {engine:<12} {scenario:<12} FAILED: {reason}\n{stderr}")
        return {"engine": engine, "scenario": scenario, "error": reason, "stderr": stderr}

    def size_of(self, scenario: str) -> int:
        value: int = getattr(self.sizes, scenario)
        return value

    # -- parts ------------------------------------------------------------------------------------
    def floor(self) -> dict[str, Any]:
        _log("floor: raw storage steps, Azure SDK and lean REST path, no engine")
        result = asyncio.run(
            measure_floor(
                self.azurite.connection_string,
                runs=self.runs,
                steps=self.sizes.floor_steps,
                parallel_chains=self.sizes.floor_parallel,
                storage_pid=self.azurite.pid,
            )
        ).to_json()
        for key in result["variants"]:
            variant = result[key]
            _log(
                f"  {variant['label'] + ', ' + variant['client']:<44} "
                f"{variant['step_ms']:6.2f} ms/step  cpu {variant['cpu_ms_per_step']:5.2f} ms "
                f"({variant['requests_per_step']} requests)"
            )
        for key in ("parallel", "parallel_lean"):
            _log(
                f"  {result[key]['chains']} chains at once, {result[key]['client']:<16} "
                f"{result[key]['steps_per_s']:6.0f} steps/s"
            )
        return result

    def scenarios(self) -> dict[str, dict[str, list[dict[str, Any]]]]:
        runs: dict[str, dict[str, list[dict[str, Any]]]] = {
            scenario: {engine: [] for engine in self.engines} for scenario in SCENARIOS
        }
        for run in range(self.runs):
            _log(f"scenarios, run {run + 1} of {self.runs}")
            order = (
                self.engines[run % len(self.engines) :] + self.engines[: run % len(self.engines)]
            )
            for scenario in SCENARIOS:
                for engine in order:
                    runs[scenario][engine].append(
                        self.child(engine, scenario, self.size_of(scenario))
                    )
        return runs

    def levers(self) -> list[dict[str, Any]]:
        fields = _worker_option_fields()
        found: list[dict[str, Any]] = []
        for lever in LEVERS:
            entry: dict[str, Any] = {
                "engine": lever.engine,
                "key": lever.key,
                "label": lever.label,
                "off_option": lever.off,
                "description": lever.description,
                "scenarios": list(lever.scenarios),
            }
            if lever.engine not in self.engines:
                entry["missing"] = f"the {lever.engine} engine was not run"
                found.append(entry)
                continue
            if lever.engine == "durable_ext" and lever.field not in fields:
                entry["missing"] = f"WorkerOptions has no field {lever.field!r} in this build"
                found.append(entry)
                continue
            _log(f"lever off: {lever.label} ({lever.off})")
            entry["off"] = {
                scenario: [
                    self.child(lever.engine, scenario, self.size_of(scenario), options=[lever.off])
                    for _ in range(self.lever_runs)
                ]
                for scenario in lever.scenarios
            }
            found.append(entry)
        return found

    def sensitivity(self) -> dict[str, Any]:
        """durable_ext's `SENSITIVITY_SCENARIOS` once each on a second, fresh Azurite that keeps
        its data in memory (the suite's own Azurite stays up, idle), to compare with the main
        runs on disk."""
        _log(f"storage sensitivity: {', '.join(SENSITIVITY_SCENARIOS)} on an in-memory Azurite")
        result: dict[str, Any] = {
            "persistence": IN_MEMORY,
            "main_persistence": ON_DISK,
            "scenarios": {},
        }
        location = self.workdir / f"azurite-in-memory-{secrets.token_hex(3)}"
        in_memory = AzuriteInstance(location, in_memory=True)
        try:
            in_memory.start()
        except Exception as exc:  # noqa: BLE001 - report the failure, keep the other results
            _log(f"  FAILED to start the in-memory Azurite: {exc!r}")
            result["error"] = repr(exc)
            return result
        try:
            for scenario in SENSITIVITY_SCENARIOS:
                result["scenarios"][scenario] = self.child(
                    "durable_ext", scenario, self.size_of(scenario), azurite=in_memory
                )
        finally:
            in_memory.stop()
        return result

    def chain(self) -> dict[str, Any]:
        _log("replay growth: N-step chains with the instance cache on and off")
        settings = {"cache_on": [], "cache_off": ["instance_cache_size=0"]}
        result: dict[str, Any] = {"lengths": list(self.sizes.chain)}
        for label, options in settings.items():
            result[label] = [
                self.child("durable_ext", "chain", length, options=options)
                for length in self.sizes.chain
            ]
        return result

    def episode(self) -> dict[str, Any]:
        positions, window = self.sizes.episode_positions, self.sizes.episode_window
        _log(
            f"episode cost: CPU per episode of a cached chain, {window} episodes from steps "
            + ", ".join(f"{p:,}" for p in positions)
            + f" ({self.runs} rounds)"
        )
        out = self.workdir / "episode.json"
        command = [sys.executable, "-m", "bench.episode", "--json", str(out)]
        command += ["--connection", self.azurite.connection_string, "--hub", _hub("episode")]
        command += ["--positions", *map(str, positions), "--window", str(window)]
        command += ["--rounds", str(self.runs)]
        if self.azurite.pid is not None:
            command += ["--storage-pid", str(self.azurite.pid)]
        result = _json_child(command, out)
        if "error" in result:
            _log(f"  FAILED: {result['error']}\n{result['stderr']}")
            return result
        result["git_commit"] = _command_output(["git", "rev-parse", "HEAD"])
        for row in summarize_episodes(result)["rows"]:
            _log(
                f"  step {row['position']:>6,}  {row['cpu_ms_median']:5.2f} ms CPU per episode "
                f"(median of {row['episodes']}), engine alone {row['engine_cached_ms_median']:.3f}"
                f" ms, a full replay {row['engine_replay_ms']:.1f} ms"
            )
        return result

    def profiles(self) -> dict[str, Any]:
        _log("profiles: durable_ext under cProfile (one run each; slower than unprofiled runs)")
        found: dict[str, Any] = {}
        for scenario in PROFILED_SCENARIOS:
            path = self.workdir / f"profile-{scenario}.pstats"
            # Half size: cProfile with a thread-CPU timer slows the run several times over.
            size = max(1, self.size_of(scenario) // 2)
            run = self.child("durable_ext", scenario, size, profile=path)
            if "error" in run or not path.exists():
                found[scenario] = {"error": run.get("error", "no profile written")}
                continue
            found[scenario] = summarize_profile(path)
            found[scenario]["wall_s"] = run["wall_s"]
            found[scenario]["cpu_s"] = run["cpu_s"]
            found[scenario]["size"] = size
        return found

    def replay(self) -> dict[str, Any]:
        _log(f"replay: bench/replay.py at {self.sizes.replay_events:,} events")
        out = self.workdir / "replay.json"
        command = [sys.executable, str(REPO_ROOT / "bench" / "replay.py")]
        command += ["--events", str(self.sizes.replay_events), "--runs", "5"]
        command += ["--threshold", "0", "--json", str(out)]
        result = _json_child(command, out)
        if "error" in result:
            return result
        for scenario in result["scenarios"]:
            _log(
                f"  {scenario['scenario']:<8} speed-up wall {scenario['wall_ratio']:.1f}x, "
                f"cpu {scenario['cpu_ratio']:.1f}x"
            )
        return result

    def entities(self) -> dict[str, Any]:
        ops = self.sizes.entity_ops
        _log(f"entities: {ops:,} operations on one entity, then over 100 entities")
        out = self.workdir / "entities.json"
        command = [sys.executable, "-m", "bench.entities", "--connection"]
        command += [self.azurite.connection_string, "--hub", _hub("entities")]
        command += ["--ops", str(ops), "--json", str(out)]
        result = _json_child(command, out)
        if "error" not in result:
            one, spread = result["one"]["ops_per_s"], result["spread"]["ops_per_s"]
            _log(f"  ops/s: {num(one)} on one entity, {num(spread)} over 100")
        return result

    def repeat(self) -> dict[str, Any]:
        runs, size = self.sizes.repeat_runs, self.sizes.fanout
        _log(f"repeat: {runs} fan-outs of {size:,} one after another on one hub, probed between")
        out = self.workdir / "repeat.json"
        command = [sys.executable, "-m", "bench.repeat", "--json", str(out), "--connection"]
        command += [self.azurite.connection_string, "--hub", _hub("repeat")]
        command += ["--runs", str(runs), "--size", str(size)]
        command += ["--probe-repeats", str(self.sizes.repeat_probe)]
        if self.azurite.pid is not None:
            command += ["--storage-pid", str(self.azurite.pid)]
        result = _json_child(command, out)
        if "error" in result:
            _log(f"  FAILED: {result['error']}\n{result['stderr']}")
        else:
            _log(f"  {summarize_repeat(result)['why']}")
        return result

    def scale_out(self) -> dict[str, Any]:
        count, steps = self.sizes.hellocities, self.sizes.hellocities_steps
        warm_up = max(2, count // 10)
        _log(f"scale-out: HelloCities {count} × {steps} on one hub, one worker process and two")
        result: dict[str, Any] = {"count": count, "steps": steps, "warm_up": warm_up}
        runs: dict[str, list[dict[str, Any]]] = {"1": [], "2": []}
        result["runs"] = runs
        for run in range(self.runs):
            for workers in (1, 2) if run % 2 == 0 else (2, 1):
                out = self.workdir / f"scale-out-{workers}-{secrets.token_hex(3)}.json"
                command = [sys.executable, "-m", "bench.scale_out", "--measure", "--json", str(out)]
                command += ["--connection", self.azurite.connection_string]
                command += ["--hub", _hub(f"scale{workers}"), "--workers", str(workers)]
                command += ["--count", str(count), "--steps", str(steps)]
                command += ["--warm-up", str(warm_up)]
                if self.azurite.pid is not None:
                    command += ["--storage-pid", str(self.azurite.pid)]
                measured = _json_child(command, out)
                runs[str(workers)].append(measured)
                if "error" in measured:
                    _log(f"  {workers} worker(s) FAILED: {measured['error']}\n{measured['stderr']}")
                    continue
                _log(
                    f"  {workers} worker(s)  {measured['throughput_per_s']:7.1f}/s  workers' cpu "
                    f"{measured['workers_cpu_s']:.2f} s  Azurite {measured['storage_cpu_s'] or 0:.2f}"
                    f" s  (rebalanced in {measured['rebalance_s']:.1f} s)"
                )
        return result

    def http(self) -> dict[str, Any]:
        """The `durable-ext start` host under cProfile (bench/http_analysis.py); the HTTP
        engine's scenario runs themselves are in the scenarios part."""
        _log("http: the durable-ext start host under cProfile")
        return profile_host(self.child, self.size_of, self.workdir)

    def idle(self) -> dict[str, Any]:
        count = self.sizes.idle
        _log(f"idle: worker RSS with {count:,} orchestrations waiting for an event")
        try:
            result = asyncio.run(
                measure_idle(
                    self.azurite.connection_string,
                    _hub("idle"),
                    count,
                    progress=_log,
                    storage_pid=self.azurite.pid,
                )
            )
        except Exception as exc:  # noqa: BLE001 - report the failure, keep the other results
            _log(f"  FAILED: {exc!r}\n{traceback.format_exc()}")
            return {"count": count, "error": repr(exc), "traceback": traceback.format_exc()}
        _log(
            f"  RSS {result['rss_idle_mb']:.0f} MB idle (peak {result['rss_peak_mb']:.0f} MB), "
            f"{result['running_per_s']:.0f} started/s"
        )
        return result


def _json_child(command: Sequence[str], out: Path) -> dict[str, Any]:
    """Run a bench script that writes its result as JSON to `out`: that result, or the error."""
    done = subprocess.run(
        command,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
        check=False,
    )
    if done.returncode != 0 or not out.exists():
        return {"error": f"exit status {done.returncode}", "stderr": done.stderr[-3000:]}
    result: dict[str, Any] = json.loads(out.read_text())
    return result


# -- environment -----------------------------------------------------------------------------------
def _command_output(command: Sequence[str]) -> str | None:
    try:
        done = subprocess.run(
            command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return None


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def source_digest() -> str:
    """A digest of durable_ext's source files as they are on disk now (others may edit them)."""
    digest = hashlib.sha256()
    for path in sorted((REPO_ROOT / "durable_ext").rglob("*.py")):
        digest.update(str(path.relative_to(REPO_ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def environment(azurite: AzuriteInstance) -> dict[str, Any]:
    azurite_package = REPO_ROOT / "node_modules" / "azurite" / "package.json"
    azurite_version = None
    if azurite_package.exists():
        azurite_version = json.loads(azurite_package.read_text()).get("version")
    dirty = _command_output(["git", "status", "--porcelain", "--", "durable_ext"])
    return {
        "machine": {
            "cpu": _cpu_model(),
            "cores": os.cpu_count(),
            "memory_gb": _memory_gb(),
            "platform": platform.platform(),
        },
        "python": platform.python_version(),
        "node": _command_output(["node", "--version"]),
        "azurite": azurite_version,
        "azurite_persistence": IN_MEMORY if azurite.in_memory else ON_DISK,
        "git_commit": _command_output(["git", "rev-parse", "HEAD"]),
        "durable_ext_uncommitted_files": dirty.splitlines() if dirty else [],
        "packages": {
            name: _version(name)
            for name in (
                "durable-ext",
                "azure-functions-durable",
                "azure-storage-queue",
                "azure-data-tables",
                "azure-storage-blob",
                "azure-core",
                "aiohttp",
                "dbos",
                "sqlalchemy",
                "durabletask",
                "grpcio",
                "matplotlib",
            )
        },
    }


# -- summary ---------------------------------------------------------------------------------------
def _median_of(runs: Sequence[dict[str, Any]], key: str | Callable[[dict[str, Any]], Any]) -> Any:
    get = key if callable(key) else (lambda r: r.get(key))
    values = [v for v in (get(r) for r in runs if "error" not in r) if isinstance(v, int | float)]
    return median(values) if values else None


def _detail(key: str) -> Callable[[dict[str, Any]], Any]:
    def get(run: dict[str, Any]) -> Any:
        return run.get("detail", {}).get(key)

    return get


def summarize_runs(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Medians over a scenario's runs on one engine."""
    good = [r for r in runs if "error" not in r]
    summary: dict[str, Any] = {
        "runs": len(runs),
        "failed_runs": len(runs) - len(good),
        "all_correct": bool(good) and all(r["correct"] for r in good),
    }
    if not good:
        summary["error"] = runs[0].get("error") if runs else "not run"
        return summary
    for key in (
        "throughput_per_s",
        "wall_s",
        "cpu_s",
        "storage_cpu_s",
        "other_cpu_s",
        "rss_peak_mb",
        "rss_before_mb",
        "requests_per_unit",
        "requests_per_activity",
        "client_requests_per_unit",
        "until_last_activity_s",
        "p50_ms",
        "p99_ms",
    ):
        summary[key] = _median_of(good, key)
    summary["units"] = good[0]["units"]
    for key in ("raise_calls_s", "start_calls_s"):
        summary[key] = _median_of(good, _detail(key))
    summary["requests_total_per_unit"] = _median_of(
        good,
        lambda r: (
            (r["requests"]["total"] + r["requests"]["client"]["total"]) / r["units"]
            if r.get("requests") and "client" in r["requests"]
            else None
        ),
    )
    summary["cpu_ms_per_unit"] = _median_of(good, lambda r: r["cpu_s"] * 1000 / r["units"])
    summary["storage_cpu_ms_per_unit"] = _median_of(
        good,
        lambda r: r["storage_cpu_s"] * 1000 / r["units"] if r.get("storage_cpu_s") else None,
    )
    summary["throughput_runs"] = [r.get("throughput_per_s") for r in good]
    requests = [r["requests"] for r in good if r.get("requests")]
    if requests and "by_category" in requests[0]:
        units = good[0]["units"]
        categories = sorted({c for r in requests for c in r["by_category"]})
        summary["requests_by_category_per_unit"] = {
            c: median([r["by_category"].get(c, 0) / units for r in requests]) for c in categories
        }
        summary["request_median_ms"] = {
            c: median([r["median_ms"][c] for r in requests if c in r.get("median_ms", {})])
            for c in categories
            if any(c in r.get("median_ms", {}) for r in requests)
        }
    clients = [r["client"] for r in requests if "median_ms" in r.get("client", {})]
    if clients:
        summary["client_request_median_ms"] = {
            c: median([r["median_ms"][c] for r in clients if c in r["median_ms"]])
            for c in sorted({c for r in clients for c in r["median_ms"]})
        }
    if requests and "sql_statements" in requests[0]:
        summary["sql_statements_per_unit"] = median(
            [r["sql_statements"] / good[0]["units"] for r in requests]
        )
    if any("samples_ms" in r for r in good):
        pooled = sorted(s for r in good for s in r.get("samples_ms", []))
        summary["pooled_samples"] = len(pooled)
        stamped = [s * 1000 for r in good for s in r.get("detail", {}).get("engine_stamped_s", [])]
        if stamped:
            summary["engine_stamped_p50_ms"] = median(stamped)
    return summary


def growth_exponent(lengths: Sequence[int], values: Sequence[float | None]) -> float | None:
    """The least-squares slope of log(value) against log(length): 1 linear, 2 quadratic."""
    points = [
        (math.log(n), math.log(v)) for n, v in zip(lengths, values, strict=True) if v and v > 0
    ]
    if len(points) < 2:
        return None
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    if spread == 0:
        return None
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread


def summarize_chain(chain: dict[str, Any]) -> dict[str, Any]:
    lengths: list[int] = chain["lengths"]
    summary: dict[str, Any] = {"lengths": lengths}
    for label in ("cache_on", "cache_off"):
        runs: list[dict[str, Any]] = chain.get(label, [])
        if any("error" in r for r in runs) or len(runs) != len(lengths):
            summary[label] = {"error": "a chain run failed"}
            continue

        replays = [r["detail"]["replays"] for r in runs]
        requests = [r.get("requests") or {} for r in runs]
        resumes = [x["replayed"] + x["fresh"] for x in replays]
        cpu = [r["cpu_s"] for r in runs]
        storage_cpu = [r.get("storage_cpu_s") for r in runs]
        query_bytes = [q.get("response_bytes", {}).get("table.query", 0) for q in requests]
        summary[label] = {
            "wall_s": [r["wall_s"] for r in runs],
            "cpu_s": cpu,
            "storage_cpu_s": storage_cpu,
            "invocations": [x["invocations"] for x in replays],
            "replayed_resumes": [x["replayed"] for x in replays],
            "resumes": resumes,
            "history_query_bytes": query_bytes,
            "requests": [q.get("total") for q in requests],
            "exponent_resumes": growth_exponent(lengths, resumes),
            "exponent_cpu": growth_exponent(lengths, cpu),
            "exponent_storage_cpu": growth_exponent(lengths, storage_cpu),
            "exponent_history_query_bytes": growth_exponent(lengths, query_bytes),
        }
    return summary


def summarize(raw: dict[str, Any]) -> dict[str, Any]:
    """The medians and derived figures the report is made from."""
    summary: dict[str, Any] = {"scenarios": {}}
    for scenario, engines in raw.get("scenarios", {}).items():
        summary["scenarios"][scenario] = {
            engine: summarize_runs(runs) for engine, runs in engines.items()
        }
    if "chain" in raw:
        summary["chain"] = summarize_chain(raw["chain"])
    if "episode" in raw:
        summary["episode"] = summarize_episodes(raw["episode"])
    levers = []
    for lever in raw.get("levers", []):
        entry = {k: v for k, v in lever.items() if k != "off"}
        if "off" in lever:
            entry["off"] = {s: summarize_runs(runs) for s, runs in lever["off"].items()}
            entry["on"] = {
                s: summary["scenarios"].get(s, {}).get(lever.get("engine", "durable_ext"), {})
                for s in lever["off"]
            }
        levers.append(entry)
    summary["levers"] = levers
    if "repeat" in raw:
        summary["repeat"] = summarize_repeat(raw["repeat"])
    if HTTP_ENGINE in {e for engines in raw.get("scenarios", {}).values() for e in engines}:
        summary["http"] = summarize_http(raw)
    sensitivity = raw.get("storage_sensitivity")
    if sensitivity:
        summary["storage_sensitivity"] = {
            "persistence": sensitivity.get("persistence"),
            "main_persistence": sensitivity.get("main_persistence"),
            "scenarios": {
                s: summarize_runs([run]) for s, run in sensitivity.get("scenarios", {}).items()
            },
        }
        if "error" in sensitivity:
            summary["storage_sensitivity"]["error"] = sensitivity["error"]
    if "scale_out" in raw:
        summary["scale_out"] = summarize_scale_out(raw["scale_out"])
    return summary


# -- main -------------------------------------------------------------------------------------------
def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="durable_ext against DBOS and durabletask, the storage floor, replay, memory.",
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes (checks the machinery)")
    parser.add_argument(
        "--runs", type=int, help="runs per scenario and engine (default 3; 1 quick)"
    )
    parser.add_argument(
        "--lever-runs", type=int, default=1, help="runs of each scenario with a lever off"
    )
    parser.add_argument(
        "--engines",
        nargs="+",
        default=list(ENGINES),
        choices=ENGINES,
        help="engines to compare (default: all that are installed)",
    )
    parser.add_argument(
        "--skip",
        nargs="+",
        default=[],
        choices=[
            "floor",
            "scenarios",
            "sensitivity",
            "levers",
            "chain",
            "episode",
            "profile",
            "replay",
            "entities",
            "idle",
            "repeat",
            "scale_out",
            "http",
        ],
        help="parts to leave out (sensitivity is left out anyway with --azurite-in-memory)",
    )
    parser.add_argument("--results", type=Path, default=report.DEFAULT_RESULTS)
    parser.add_argument("--markdown", type=Path, default=report.DEFAULT_MARKDOWN)
    parser.add_argument("--chart", type=Path, default=report.DEFAULT_CHART)
    parser.add_argument("--no-report", action="store_true", help="write only the JSON")
    parser.add_argument(
        "--azurite-in-memory", action="store_true", help="Azurite without disk persistence"
    )
    args = parser.parse_args(argv)
    if args.runs is None:
        args.runs = 1 if args.quick else 3
    if args.runs < 1 or args.lever_runs < 1:
        parser.error("--runs and --lever-runs must be at least 1")
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the suite as `args` say; the whole results document."""
    sizes = QUICK if args.quick else FULL
    began = time.monotonic()
    started_at = datetime.now(UTC)
    unavailable = {e: r for e in args.engines if (r := missing_reason(e)) is not None}
    engines = [e for e in args.engines if e not in unavailable]
    for engine, reason in unavailable.items():
        _log(f"{engine} is not available: {reason}")
    raw: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="durable-ext-bench-") as tmp:
        workdir = Path(tmp)
        azurite = AzuriteInstance(workdir / "azurite", in_memory=args.azurite_in_memory)
        azurite.start()
        try:
            env = environment(azurite)
            env["load_average_at_start"] = load_average()
            env["durable_ext_source_at_start"] = source_digest()
            (workdir / "runs").mkdir()  # the parts' output files go there
            suite = Suite(azurite, sizes, args.runs, engines, workdir / "runs", args.lever_runs)
            parts: list[tuple[str, Callable[[], Any]]] = [
                ("floor", suite.floor),
                ("scenarios", suite.scenarios),
                ("sensitivity", suite.sensitivity),
                ("levers", suite.levers),
                ("chain", suite.chain),
                ("episode", suite.episode),
                ("profile", suite.profiles),
                ("replay", suite.replay),
                ("entities", suite.entities),
                ("idle", suite.idle),
                ("repeat", suite.repeat),
                ("scale_out", suite.scale_out),
                ("http", suite.http),
            ]
            for name, part in parts:
                ours_only = name in (
                    "sensitivity",
                    "levers",
                    "chain",
                    "episode",
                    "profile",
                    "entities",
                    "idle",
                    "repeat",
                    "scale_out",
                )
                if name in args.skip or (ours_only and "durable_ext" not in engines):
                    continue
                if name == "http" and HTTP_ENGINE not in engines:
                    continue
                if name == "sensitivity" and args.azurite_in_memory:
                    continue  # the main runs are in memory already
                part_began = time.monotonic()
                key = "storage_sensitivity" if name == "sensitivity" else name
                raw[key] = part()
                _log(f"{name} done in {time.monotonic() - part_began:.0f} s")
            env["load_average_at_end"] = load_average()
            env["durable_ext_source_at_end"] = source_digest()
        finally:
            azurite.stop()
    document: dict[str, Any] = {
        "generated_at": started_at.isoformat(timespec="seconds"),
        "duration_s": time.monotonic() - began,
        "command": "python -m bench " + " ".join(sys.argv[1:]) if sys.argv else "python -m bench",
        "quick": bool(args.quick),
        "runs": args.runs,
        "lever_runs": args.lever_runs,
        "sizes": sizes.to_json(),
        "environment": env,
        "engines": engines,
        "unavailable_engines": unavailable,
        "method": METHOD,
        "raw": raw,
    }
    document["summary"] = summarize(raw)
    return document


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    document = run(args)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(document, indent=1) + "\n")
    _log(f"wrote {args.results}")
    if not args.no_report:
        report.write(results.load(args.results), args.markdown, args.chart)
        _log(f"wrote {args.markdown} and {args.chart}")
    _log(f"total {document['duration_s'] / 60:.1f} min")
    return 0
