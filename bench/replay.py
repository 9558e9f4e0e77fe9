"""Replay benchmark: durable_ext against azure-functions-durable 1.7, side by side, same history.

Two workloads, each a scripted history of about `--events` (default 10,000) DTFx events whose last
episode completes the orchestration, so both engines must replay the whole history and finish:

- ``chain``: ``for i in range(n): total += yield context.call_activity("Step", i)``; history
  ``[OrchestratorStarted, ExecutionStarted, TaskScheduled(0), OrchestratorCompleted,
  OrchestratorStarted, TaskCompleted(0), TaskScheduled(1), OrchestratorCompleted, ...,
  OrchestratorStarted, TaskCompleted(n-1)]`` (4 events a step).
- ``fan_out``: one ``task_all`` over ``n`` activities; history ``[OrchestratorStarted,
  ExecutionStarted, TaskScheduled(0..n-1), OrchestratorCompleted, OrchestratorStarted,
  TaskCompleted(0..n-1)]`` (2 events an activity).

The history is built once as dicts keyed by DTFx field names (as storage returns rows: times as ISO
strings with 7 fractional digits). What is timed, per run:

- ours: ``event_from_fields`` over every dict, then
  ``OrchestrationExecutor.execute(past_events=<all but the last episode>, new_events=<last
  episode>)``;
- SDK: ``Orchestrator.create(fn)(trigger_json)``, i.e. its whole handling of the orchestration
  trigger's JSON string: ``json.loads``, ``HistoryEvent`` construction, replay and the returned
  ``OrchestratorState`` JSON (the SDK must send every action back on each episode; ours returns
  only the new decisions).

Before timing, each engine's result is checked: ours must report ``Completed`` with one decision
(``ExecutionCompleted``), the SDK ``isDone`` with one ``CallActivity`` action per step and no error,
and both the same output, equal to the expected sum. Each timed run also checks its output.

The figures are medians over ``--runs`` runs (at least 5) of wall time (``time.perf_counter``) and
CPU time (``time.process_time``), the engines alternating within each run, garbage collected before
each measurement. The decoding parts are also timed on their own (ours: ``event_from_fields``; the
SDK: ``from_json``, and its ``json.loads`` within it) to report two more ratios: as if ours also
had to ``json.loads`` the same text, and an estimate of replay alone (total minus decode). The
threshold applies to the full ratio (the first one): the script exits with status 1 when
durable_ext is less than ``--threshold`` (5) times faster than the SDK on the chain workload, by
wall time or by CPU time.

Run: ``make bench`` or ``.venv/bin/python bench/replay.py [--events N] [--runs N] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

from azure.durable_functions.models import DurableOrchestrationContext as SdkContext
from azure.durable_functions.orchestrator import Orchestrator as SdkOrchestrator

from durable_ext.orchestration import ExecutionResult, OrchestrationExecutor
from durable_ext.orchestration.history import (
    EventType,
    ExecutionCompleted,
    HistoryEvent,
    OrchestrationStatus,
    event_from_fields,
)

__all__ = [
    "CHAIN",
    "FAN_OUT",
    "MIN_TIMED_RUNS",
    "SCENARIOS",
    "Comparison",
    "Measurement",
    "Workload",
    "build_chain",
    "build_fan_out",
    "check_ours",
    "check_same_output",
    "check_sdk",
    "compare",
    "decode_ours",
    "decode_sdk",
    "format_table",
    "json_loads_sdk",
    "main",
    "run_ours",
    "run_sdk",
]

INSTANCE_ID = "bench-instance"
EXECUTION_ID = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
ACTIVITY = "Step"
START = datetime(2024, 1, 1, tzinfo=UTC)
MIN_TIMED_RUNS = 5
DEFAULT_EVENTS = 10_000
DEFAULT_THRESHOLD = 5.0

Fields = dict[str, Any]
Orchestrator = Callable[[Any], Generator[Any, Any, int]]


# -- orchestrators (the same code runs on both engines: the context APIs match) --------------------
def activity_result(i: int) -> int:
    """What the scripted history says activity ``Step(i)`` returned."""
    return 3 * i + 1


def chain_orchestrator(context: Any) -> Generator[Any, Any, int]:
    """Call ``Step`` once per step, one after the other, and return the sum of the results."""
    steps: int = context.get_input()
    total = 0
    for i in range(steps):
        total += yield context.call_activity(ACTIVITY, i)
    return total


def fan_out_orchestrator(context: Any) -> Generator[Any, Any, int]:
    """Call ``Step`` for every index at once, wait for all, and return the sum of the results."""
    width: int = context.get_input()
    results = yield context.task_all([context.call_activity(ACTIVITY, i) for i in range(width)])
    return sum(results)


# -- scripted histories --------------------------------------------------------------------------
def _timestamp(moment: datetime) -> str:
    """ISO-8601 with 7 fractional digits and ``Z``, as .NET and Table storage write times."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


class _HistoryWriter:
    """Appends events as DTFx field dicts; the clock moves 1.25 s per episode."""

    def __init__(self, name: str, input_json: str) -> None:
        self.now = START
        self.events: list[Fields] = []
        self.episode_starts: list[int] = []
        self.orchestrator_started()
        self.add(
            EventType.ExecutionStarted,
            Name=name,
            Version="",
            Input=input_json,
            OrchestrationInstance={"InstanceId": INSTANCE_ID, "ExecutionId": EXECUTION_ID},
            ParentInstance=None,
            Tags=None,
            Correlation=None,
            ScheduledStartTime=None,
            Generation=0,
        )

    def add(self, event_type: EventType, *, event_id: int = -1, **members: Any) -> None:
        self.events.append(
            {
                "EventType": int(event_type),
                "EventId": event_id,
                "IsPlayed": False,
                "Timestamp": _timestamp(self.now),
                **members,
            }
        )

    def orchestrator_started(self) -> None:
        self.episode_starts.append(len(self.events))
        self.add(EventType.OrchestratorStarted)

    def next_episode(self) -> None:
        self.add(EventType.OrchestratorCompleted)
        self.now += timedelta(seconds=1, microseconds=250_000)
        self.orchestrator_started()

    def scheduled(self, i: int) -> None:
        self.add(EventType.TaskScheduled, event_id=i, Name=ACTIVITY, Version="", Input=str(i))

    def completed(self, i: int) -> None:
        self.add(EventType.TaskCompleted, TaskScheduledId=i, Result=str(activity_result(i)))

    def finish(self) -> tuple[list[Fields], int]:
        """The events, past ones marked played, and the index where the last episode starts."""
        split = self.episode_starts[-1]
        for event in self.events[:split]:
            event["IsPlayed"] = True
        return self.events, split


@dataclass(frozen=True, slots=True)
class Workload:
    """One scripted history, ready for both engines."""

    name: str
    orchestrator: Orchestrator
    tasks: int
    """Activities the orchestration calls (steps of the chain, width of the fan-out)."""
    events: list[Fields]
    """The whole history as DTFx field dicts, as storage returns it."""
    split: int
    """``events[split:]`` is the last episode (new events); the rest is replayed."""
    trigger_json: str
    """The same history as the SDK's orchestration-trigger JSON."""
    expected_output: int

    @property
    def event_count(self) -> int:
        return len(self.events)


def _trigger_json(events: Sequence[Fields], input_json: str) -> str:
    """The orchestration trigger payload the Durable extension hands the Python SDK."""
    return json.dumps(
        {
            "history": list(events),
            "instanceId": INSTANCE_ID,
            "isReplaying": True,
            "parentInstanceId": None,
            "input": input_json,
            "upperSchemaVersion": 1,
            "upperSchemaVersionNew": 2,
        }
    )


def _workload(
    name: str, orchestrator: Orchestrator, tasks: int, writer: _HistoryWriter, input_json: str
) -> Workload:
    events, split = writer.finish()
    return Workload(
        name=name,
        orchestrator=orchestrator,
        tasks=tasks,
        events=events,
        split=split,
        trigger_json=_trigger_json(events, input_json),
        expected_output=sum(activity_result(i) for i in range(tasks)),
    )


def build_chain(target_events: int) -> Workload:
    """A sequential chain: ``4 * steps + 2`` events, the fewest that reach ``target_events``."""
    steps = max(1, -(-(target_events - 2) // 4))
    input_json = json.dumps(steps)
    writer = _HistoryWriter("Chain", input_json)
    writer.scheduled(0)
    for i in range(1, steps):
        writer.next_episode()
        writer.completed(i - 1)
        writer.scheduled(i)
    writer.next_episode()
    writer.completed(steps - 1)
    return _workload("chain", chain_orchestrator, steps, writer, input_json)


def build_fan_out(target_events: int) -> Workload:
    """One task_all over ``width`` activities: ``2 * width + 4`` events, the fewest that reach
    ``target_events``."""
    width = max(1, -(-(target_events - 4) // 2))
    input_json = json.dumps(width)
    writer = _HistoryWriter("FanOut", input_json)
    for i in range(width):
        writer.scheduled(i)
    writer.next_episode()
    for i in range(width):
        writer.completed(i)
    return _workload("fan_out", fan_out_orchestrator, width, writer, input_json)


# -- the two engines -----------------------------------------------------------------------------
def run_ours(workload: Workload) -> ExecutionResult:
    """durable_ext: build events from the field dicts, replay the past, apply the last episode."""
    events = [event_from_fields(fields) for fields in workload.events]
    executor = OrchestrationExecutor(workload.orchestrator, instance_id=INSTANCE_ID)
    return executor.execute(events[: workload.split], events[workload.split :])


def run_sdk(workload: Workload) -> str:
    """azure-functions-durable: handle the trigger JSON exactly as the Functions worker does."""
    handle = SdkOrchestrator.create(workload.orchestrator)
    state: str = handle(workload.trigger_json)
    return state


def decode_ours(workload: Workload) -> list[HistoryEvent]:
    """Our share of `run_ours` that only decodes: ``event_from_fields`` over every dict."""
    return [event_from_fields(fields) for fields in workload.events]


def decode_sdk(workload: Workload) -> SdkContext:
    """The SDK's share of `run_sdk` that only decodes: ``json.loads`` and ``HistoryEvent`` objects
    (with ``dateutil`` parsing every timestamp), in ``DurableOrchestrationContext.from_json``."""
    context: SdkContext = SdkContext.from_json(workload.trigger_json)
    return context


def json_loads_sdk(workload: Workload) -> object:
    """``json.loads`` of the trigger JSON alone: a cost our timing has no counterpart for."""
    return json.loads(workload.trigger_json)


def check_ours(result: ExecutionResult, workload: Workload) -> int:
    """The orchestration output from our engine, after checking it replayed the whole history."""
    if result.status is not OrchestrationStatus.Completed:
        raise AssertionError(
            f"{workload.name}: durable_ext ended {result.status.name}, not Completed "
            f"(failure: {result.failure}, output: {result.output})"
        )
    kinds = [type(decision).__name__ for decision in result.decisions]
    if kinds != [ExecutionCompleted.__name__]:
        raise AssertionError(
            f"{workload.name}: durable_ext decided {kinds}, expected only ExecutionCompleted "
            "(every TaskScheduled in history should have matched the code)"
        )
    if result.warnings:
        raise AssertionError(f"{workload.name}: durable_ext warned {result.warnings[:3]}")
    assert result.output is not None
    output: int = json.loads(result.output)
    return output


def _leaf_actions(actions: Sequence[Any]) -> list[dict[str, Any]]:
    leaves: list[dict[str, Any]] = []
    for action in actions:
        if isinstance(action, list):
            leaves.extend(_leaf_actions(action))
        elif "compoundActions" in action:
            leaves.extend(_leaf_actions(action["compoundActions"]))
        else:
            leaves.append(action)
    return leaves


def check_sdk(state_json: str, workload: Workload) -> int:
    """The orchestration output from the SDK, after checking it replayed the whole history."""
    state = json.loads(state_json)
    if state.get("error") or not state.get("isDone"):
        raise AssertionError(
            f"{workload.name}: the SDK did not finish (isDone={state.get('isDone')}, "
            f"error={state.get('error')!r})"
        )
    leaves = _leaf_actions(state.get("actions", []))
    calls = [a for a in leaves if a.get("actionType") == 0 and a.get("functionName") == ACTIVITY]
    if len(calls) != workload.tasks or len(leaves) != workload.tasks:
        raise AssertionError(
            f"{workload.name}: the SDK produced {len(leaves)} actions ({len(calls)} calls to "
            f"{ACTIVITY}), expected {workload.tasks}"
        )
    output: int = state["output"]
    return output


def check_same_output(workload: Workload) -> int:
    """Run both engines once, check each replayed everything, and that their outputs agree."""
    ours = check_ours(run_ours(workload), workload)
    sdk = check_sdk(run_sdk(workload), workload)
    if not ours == sdk == workload.expected_output:
        raise AssertionError(
            f"{workload.name}: outputs differ: durable_ext {ours!r}, SDK {sdk!r}, "
            f"expected {workload.expected_output!r}"
        )
    return ours


# -- measuring -----------------------------------------------------------------------------------
@dataclass(slots=True)
class Measurement:
    """Wall and CPU seconds of each timed run of one piece of work on one workload."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    @property
    def wall_median(self) -> float:
        return statistics.median(self.wall)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu)

    def to_json(self) -> dict[str, Any]:
        return {
            "wall_median_s": self.wall_median,
            "cpu_median_s": self.cpu_median,
            "wall_s": self.wall,
            "cpu_s": self.cpu,
        }


@dataclass(slots=True)
class Comparison:
    """Both engines on one workload: the full runs, and their decoding parts timed on their own."""

    workload: Workload
    output: int
    ours: Measurement
    """`run_ours`: decode the dicts and replay (what the speed-up is about)."""
    sdk: Measurement
    """`run_sdk`: the SDK's whole handling of the trigger JSON (what the speed-up is about)."""
    ours_decode: Measurement
    """`decode_ours` alone (part of `ours`)."""
    sdk_decode: Measurement
    """`decode_sdk` alone (part of `sdk`)."""
    sdk_json_loads: Measurement
    """`json_loads_sdk` alone (part of `sdk_decode`)."""

    def ratios(self, cpu: bool) -> dict[str, float]:
        """SDK time over ours, from medians: ``full`` (the one the threshold applies to);
        ``with_json_loads``, as if ours also had to ``json.loads`` the same text; and
        ``replay_only``, an estimate from (full - decode) of each engine."""

        def median(m: Measurement) -> float:
            return m.cpu_median if cpu else m.wall_median

        ours, sdk = median(self.ours), median(self.sdk)
        ours_replay = ours - median(self.ours_decode)
        sdk_replay = sdk - median(self.sdk_decode)
        return {
            "full": sdk / ours,
            "with_json_loads": sdk / (ours + median(self.sdk_json_loads)),
            "replay_only": sdk_replay / ours_replay if ours_replay > 0 else float("inf"),
        }

    @property
    def wall_ratio(self) -> float:
        return self.ratios(cpu=False)["full"]

    @property
    def cpu_ratio(self) -> float:
        return self.ratios(cpu=True)["full"]

    @property
    def ratio(self) -> float:
        """The smaller of the wall and CPU ratios: what the threshold is checked against."""
        return min(self.wall_ratio, self.cpu_ratio)

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.workload.name,
            "events": self.workload.event_count,
            "replayed_events": self.workload.split,
            "new_events": self.workload.event_count - self.workload.split,
            "activities": self.workload.tasks,
            "output": self.output,
            "durable_ext": self.ours.to_json(),
            "sdk": self.sdk.to_json(),
            "durable_ext_decode_only": self.ours_decode.to_json(),
            "sdk_decode_only": self.sdk_decode.to_json(),
            "sdk_json_loads_only": self.sdk_json_loads.to_json(),
            "wall_ratio": self.wall_ratio,
            "cpu_ratio": self.cpu_ratio,
            "wall_ratios": self.ratios(cpu=False),
            "cpu_ratios": self.ratios(cpu=True),
        }


def _timed(run: Callable[[], object], into: Measurement) -> object:
    gc.collect()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    value = run()
    cpu1, wall1 = time.process_time(), time.perf_counter()
    into.wall.append(wall1 - wall0)
    into.cpu.append(cpu1 - cpu0)
    return value


def compare(workload: Workload, runs: int) -> Comparison:
    """Check both engines' outputs, then time ``runs`` rounds; each round runs both engines
    (alternating which goes first), checks their outputs again, then times the decode parts."""
    output = check_same_output(workload)  # also the warm-up run of each engine
    comparison = Comparison(
        workload, output, Measurement(), Measurement(), Measurement(), Measurement(), Measurement()
    )
    for run in range(runs):
        engines = ("ours", "sdk") if run % 2 == 0 else ("sdk", "ours")
        for engine in engines:
            if engine == "ours":
                result = _timed(lambda: run_ours(workload), comparison.ours)
                assert isinstance(result, ExecutionResult)
                if check_ours(result, workload) != output:
                    raise AssertionError(f"{workload.name}: durable_ext output changed")
            else:
                state = _timed(lambda: run_sdk(workload), comparison.sdk)
                assert isinstance(state, str)
                if check_sdk(state, workload) != output:
                    raise AssertionError(f"{workload.name}: SDK output changed")
        _timed(lambda: decode_ours(workload), comparison.ours_decode)
        _timed(lambda: decode_sdk(workload), comparison.sdk_decode)
        _timed(lambda: json_loads_sdk(workload), comparison.sdk_json_loads)
    return comparison


SCENARIOS: dict[str, Callable[[int], Workload]] = {"chain": build_chain, "fan_out": build_fan_out}
CHAIN = "chain"
FAN_OUT = "fan_out"


# -- report --------------------------------------------------------------------------------------
def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f}"


def format_table(comparisons: Sequence[Comparison], runs: int) -> str:
    """A plain-text table of the medians and ratios."""
    label_width = 36
    header = (
        f"{'scenario':<8} {'events':>7} {'tasks':>6}  {'':<{label_width}}"
        f"{'wall ms':>9} {'cpu ms':>9}"
    )
    lines = [
        f"Replay benchmark: median of {runs} runs (wall: perf_counter, cpu: process_time)",
        "",
        header,
        "-" * len(header),
    ]
    for c in comparisons:
        w = c.workload
        rows = (
            ("durable_ext", c.ours),
            ("  of which event_from_fields", c.ours_decode),
            ("azure-functions-durable 1.7", c.sdk),
            ("  of which from_json", c.sdk_decode),
            ("    of which json.loads", c.sdk_json_loads),
        )
        for i, (label, m) in enumerate(rows):
            lead = f"{w.name:<8} {w.event_count:>7,} {w.tasks:>6,}" if i == 0 else " " * 23
            lines.append(
                f"{lead}  {label:<{label_width}}{_ms(m.wall_median):>9} {_ms(m.cpu_median):>9}"
            )
        wall, cpu = c.ratios(cpu=False), c.ratios(cpu=True)
        for key, label in (
            ("full", "speed-up (SDK / durable_ext)"),
            ("with_json_loads", "  if ours also paid json.loads"),
            ("replay_only", "  replay alone (total - decode, est.)"),
        ):
            lines.append(f"{'':23}  {label:<{label_width}}{wall[key]:>8.1f}x {cpu[key]:>8.1f}x")
        lines.append("")
    return "\n".join(lines)


def _environment() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "machine": platform.machine(),
        "platform": platform.platform(),
        "azure_functions_durable": metadata.version("azure-functions-durable"),
        "durable_ext": metadata.version("durable-ext"),
    }


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Replay the same history with durable_ext and azure-functions-durable.",
    )
    parser.add_argument(
        "--events",
        type=int,
        default=DEFAULT_EVENTS,
        help=f"target history size per scenario (default {DEFAULT_EVENTS:,})",
    )
    parser.add_argument(
        "--runs",
        type=int,
        default=MIN_TIMED_RUNS,
        help=f"timed runs per engine and scenario, at least {MIN_TIMED_RUNS} (default)",
    )
    parser.add_argument(
        "--threshold",
        type=float,
        default=DEFAULT_THRESHOLD,
        help="minimum chain speed-up, by wall and by CPU time, for a zero exit status "
        f"(default {DEFAULT_THRESHOLD:g})",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures here")
    args = parser.parse_args(argv)
    if args.runs < MIN_TIMED_RUNS:
        parser.error(f"--runs must be at least {MIN_TIMED_RUNS}")
    if args.events < 10:
        parser.error("--events must be at least 10")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run every scenario, print the table, write JSON if asked; 1 if the chain is too slow."""
    args = _parse_args(argv)
    comparisons = [compare(build(args.events), args.runs) for build in SCENARIOS.values()]
    print(format_table(comparisons, args.runs))
    chain = next(c for c in comparisons if c.workload.name == CHAIN)
    passed = chain.ratio >= args.threshold
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        report = {
            "environment": _environment(),
            "runs": args.runs,
            "threshold": args.threshold,
            "passed": passed,
            "scenarios": [c.to_json() for c in comparisons],
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    if not passed:
        print(
            f"FAIL: durable_ext replays the chain only {chain.ratio:.1f}x faster than "
            f"azure-functions-durable (wall {chain.wall_ratio:.1f}x, cpu {chain.cpu_ratio:.1f}x); "
            f"required {args.threshold:g}x",
            file=sys.stderr,
        )
        return 1
    print(f"OK: chain replay is {chain.ratio:.1f}x faster (required {args.threshold:g}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
