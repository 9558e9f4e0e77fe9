"""docs/performance.md and docs/performance.png from bench/results.json.

``python -m bench.report [--results bench/results.json]`` rewrites both from an existing results
file (the suite calls `write` at its end). Everything in the report, the verdicts and the
"what bounds it" analysis included, is computed from the results; nothing is typed in by hand.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from .workloads import DF_TARGETS, GOALS, SCENARIOS, THROUGHPUT_SCENARIOS

__all__ = [
    "METHOD",
    "ENGINE_LABELS",
    "bound_analysis",
    "episode_sentence",
    "render_markdown",
    "render_chart",
    "sensitivity_sentence",
    "write",
]

ENGINE_LABELS = {
    "durable_ext": "durable_ext (Azurite)",
    "dbos": "DBOS (SQLite)",
    "durabletask": "durabletask (in-memory)",
}
ENGINE_COLORS = {"durable_ext": "#1f6feb", "dbos": "#8250df", "durabletask": "#bf8700"}

METHOD: dict[str, str] = {
    "processes": (
        "Every scenario run is a fresh Python process (bench/child.py) holding the engine's "
        "worker and its client; durable_ext talks to one private Azurite that the suite starts "
        "on free ports (disk persistence in a temporary folder) and shares across runs, each run "
        "on a task hub of its own that is deleted afterwards. DBOS gets a fresh SQLite file per "
        "run; durabletask's in-memory backend lives and dies with the process."
    ),
    "warm-up": (
        "Before the measured run each engine runs a little of every shape (a 3-step chain, a "
        "3-wide fan-out, 2 events, 2 latency runs), so connections, imports and caches are warm."
    ),
    "timing": (
        "Wall time runs from just before the first client call of the scenario to the moment "
        "the client saw the last orchestration complete (time.perf_counter). durable_ext's "
        "client polls status every 10 ms (single instance), asks the Instances table for any "
        "Pending/Running instance every 50 ms (HelloCities), and polls every 5 ms for latency; "
        "DBOS waits on its workflow handles; durabletask on its server-side wait. The client "
        "sees an orchestration complete once its final checkpoint has written history and the "
        "Instances row; the deletes of the messages that checkpoint consumed are issued after "
        "that and are not in the time (nor, when they finish after the client noticed, in the "
        "CPU and request counts). That is one episode's deletes per orchestration: for the "
        "single-orchestration scenarios the last one's, for HelloCities only those of the "
        "orchestrations that finish last (the others' overlap the run), for latency each run's, "
        "overlapping the next run."
    ),
    "cpu": (
        "CPU seconds of the engine process over the scenario (getrusage: all threads, user + "
        "system), which for DBOS includes SQLite and for durabletask its in-memory backend. For "
        "durable_ext Azurite's CPU over the same stretch is reported apart (/proc/PID/stat). "
        "`other` is the busy CPU of the rest of the machine over the stretch (/proc/stat): load "
        "that the figures did not cause but had to share two cores with."
    ),
    "episode cost": (
        "CPU per episode along a long cached chain (bench/episode.py, a fresh process holding "
        "one durable_ext.Runtime on the suite's Azurite): a chain orchestration calls one no-op "
        "activity per step, and each call stamps the process's CPU time (time.process_time: "
        "worker, client and every thread) and the wall clock. Between two consecutive calls the "
        "worker runs exactly one episode (result handed over, episode, checkpoint, next work "
        "item, activity), so the differences are the CPU per episode. A window of episodes is "
        "measured from each position in the chain; a window beyond step 0 starts from a chain "
        "seeded to that step (as tests/worker/test_episode_cost.py does): advanced in memory "
        "with the engine's own episode code, its history written to the hub as the worker "
        "writes it, the executor and its HistorySummary handed to the worker's instance cache, "
        "and the last result sent through the control queue; from there on it is the real "
        "worker. Each position is measured once per round on a fresh instance (as many rounds "
        "as runs) and the samples are pooled. The engine alone is timed while advancing a chain "
        "in memory (thread CPU of continue_episode plus the summary update per cached episode, "
        "and the median of three full replays of the history at each position: a cache miss's "
        "engine work, without its history read)."
    ),
    "memory": (
        "Peak RSS is VmHWM of the engine process, reset (clear_refs) just before the scenario "
        "started, so it is the peak during the scenario. Idle-worker RSS is VmRSS of a "
        "separate worker process (bench/idle.py)."
    ),
    "requests": (
        "durable_ext's storage requests are counted through the connection's client options "
        "(bench/counting.py): a request watcher whose hooks the SDK clients carry "
        "(raw_request_hook/raw_response_hook) "
        "(the Azure Storage SDKs ignore azure-core's per_call_policies: they build their "
        "pipelines from a fixed policy list) and whose lean REST transports (the engine's hot "
        "path for queue messages and table rows) report every HTTP attempt to its request "
        "observer. Both run once per HTTP attempt, so every request that reaches Azurite is "
        "counted, polling and the client's own calls included; receives that return no message "
        "are counted apart. DBOS's SQL statements are counted with SQLAlchemy's "
        "before_cursor_execute event."
    ),
    "floor": (
        "The physical floor (bench/floor.py) times the raw storage calls of one orchestration "
        "step on the same Azurite with no engine, in DTFx order: send work item, receive it, "
        "send result, delete work item, receive result, write the history row under the "
        "sentinel ETag (one table transaction: upsert + merge-if-match), merge Instances, "
        "delete result; the handoff shape (both messages sent invisible and deleted by their "
        "pop receipts, no receives); and the engine's own minimal step (work item sent "
        "invisible, result handed over in memory, history transaction, work item deleted). "
        "The DTFx and handoff shapes are timed both through the Azure SDK's aio clients and "
        "through the lean REST path (durable_ext.storage.rest) the engine uses, in the same "
        "run, with this process's CPU per step (time.process_time around the loop) and "
        "Azurite's. `× floor` is an engine's time per activity (or event, or latency run) "
        "divided by the DTFx step's time on the lean path (the SDK's in results without it): "
        "1.0 means one raw DTFx step's worth of time with the requests made as cheaply as the "
        "engine makes them."
    ),
    "statistics": (
        "Figures are medians over the runs (3 unless the results say otherwise); latency p50 and "
        "p99 are the medians of each run's nearest-rank percentiles. Runs are interleaved (run 1 "
        "of everything, then run 2 ...) and the engines' order rotates between runs. The floor "
        "is the median of as many runs. To stay within `make bench`'s 15 minutes, the levers "
        "(switched off one at a time through WorkerOptions, each on the scenarios it matters "
        "for, compared with the main runs' medians), the chain lengths with the cache on and "
        "off, the idle-memory measurement and the two cProfile runs (slower; used only for "
        "where the CPU goes) are one run each; their counts (replays, requests, memory) do not "
        "depend on timing, their times do."
    ),
    "storage sensitivity": (
        "After the main scenario runs, the suite starts a second Azurite with "
        "--inMemoryPersistence (same helper, free ports, a folder in the temporary directory; "
        "stopped afterwards; the main Azurite stays up, idle) and runs durable_ext's "
        "HelloCities, sequential and latency scenarios once each on it, at the same sizes and "
        "the same way as the main runs. Only the storage medium differs: the disk Azurite "
        "appends every message and row to extent files through Node's thread pool, the "
        "in-memory one keeps them in memory. The headline figures stay on disk; the comparison "
        "(one run against the main runs' medians, so expect a few percent of noise) shows how "
        "much of them is Azurite's persistence rather than the engine. Left out when the whole "
        "suite runs with --azurite-in-memory."
    ),
    "correctness": (
        "Every run checks its orchestrations' outputs (the sums, the greetings); a run whose "
        "outputs are wrong is marked and its figures are not to be trusted. Nothing is mocked."
    ),
}


# -- formatting helpers ------------------------------------------------------------------------------
def _num(value: float | None, digits: int = 1, suffix: str = "") -> str:
    if value is None:
        return "—"
    if abs(value) >= 1000:
        return f"{value:,.0f}{suffix}"
    if abs(value) >= 100:
        return f"{value:.0f}{suffix}"
    return f"{value:.{digits}f}{suffix}"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _get(document: dict[str, Any], *path: str) -> Any:
    node: Any = document
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _scenario(document: dict[str, Any], scenario: str, engine: str) -> dict[str, Any]:
    found = _get(document, "summary", "scenarios", scenario, engine)
    return found if isinstance(found, dict) else {}


_SDK_CLIENT = "Azure SDK (aio)"
_LEGACY_FLOOR = {
    "dtfx": {"label": "DTFx order", "client": _SDK_CLIENT},
    "handoff": {"label": "handoff", "client": _SDK_CLIENT},
}


def _floor_variants(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The floor's sequential variants in order, each with its label and client (results from
    before the lean REST path have only `dtfx` and `handoff`, both on the SDK)."""
    floor = _get(document, "raw", "floor") or {}
    keys = floor.get("variants") or [k for k in _LEGACY_FLOOR if k in floor]
    return [(k, {**_LEGACY_FLOOR.get(k, {}), **floor[k]}) for k in keys if k in floor]


def _floor_reference(document: dict[str, Any]) -> tuple[str, float] | None:
    """The floor step `× floor` divides by: DTFx order on the lean path, else on the SDK."""
    floor = _get(document, "raw", "floor") or {}
    for key in ("dtfx_lean", "dtfx"):
        step = (floor.get(key) or {}).get("step_ms")
        if step:
            return key, float(step)
    return None


def _floor_step_ms(document: dict[str, Any]) -> float | None:
    reference = _floor_reference(document)
    return reference[1] if reference else None


_STEP_PHRASES = {
    "dtfx": "a step in DTFx order",
    "handoff": "a handoff step",
    "result_in_memory": "the engine's sequential shape with the result handed over in memory",
}


def _variant_name(variant: dict[str, Any]) -> str:
    client = "SDK" if variant.get("client") == _SDK_CLIENT else variant.get("client", "?")
    return f"{variant.get('label', '?')} ({client})"


def _unit_ms(document: dict[str, Any], scenario: str, engine: str) -> float | None:
    """Milliseconds per activity (per event for events, per run for latency)."""
    s = _scenario(document, scenario, engine)
    if scenario == "latency":
        p50 = s.get("p50_ms")
        return float(p50) if p50 is not None else None
    rate = s.get("throughput_per_s")
    if not rate:
        return None
    per_unit = 1000 / rate
    if scenario == "hellocities":
        per_unit /= _get(document, "sizes", "hellocities_steps") or 5
    return float(per_unit)


def floor_ratio(document: dict[str, Any], scenario: str, engine: str) -> float | None:
    step = _floor_step_ms(document)
    unit = _unit_ms(document, scenario, engine)
    return unit / step if unit is not None and step else None


# -- goals -------------------------------------------------------------------------------------------
def goal_values(document: dict[str, Any]) -> dict[str, float | None]:
    """The measured value for each goal key of `workloads.GOALS`."""
    values: dict[str, float | None] = {}
    for scenario in THROUGHPUT_SCENARIOS:
        values[scenario] = _scenario(document, scenario, "durable_ext").get("throughput_per_s")
    values["latency"] = _scenario(document, "latency", "durable_ext").get("p50_ms")
    chain_scenario = next(
        (s for s in _get(document, "raw", "replay", "scenarios") or [] if s["scenario"] == "chain"),
        None,
    )
    values["replay"] = (
        min(chain_scenario["wall_ratio"], chain_scenario["cpu_ratio"]) if chain_scenario else None
    )
    on = _get(document, "summary", "chain", "cache_on") or {}
    exponents = [on.get("exponent_resumes"), on.get("exponent_cpu")]
    known = [e for e in exponents if e is not None]
    values["linear_replay"] = max(known) if known else None
    values["idle_rss"] = _get(document, "raw", "idle", "rss_idle_mb")
    return values


def _gap(key: str, value: float | None) -> str:
    goal = GOALS[key]
    if value is None:
        return "not measured"
    if goal.met(value):
        if goal.minimum is not None:
            return f"met ({value / goal.minimum:.1f}× the goal)"
        assert goal.maximum is not None
        shown = _num(value, 2 if value < 10 else 0)
        return f"met ({shown}, limit {goal.maximum:g}{goal.unit and ' ' + goal.unit})"
    if goal.minimum is not None:
        return (
            f"**not met**: {value / goal.minimum:.0%} of the goal, "
            f"{goal.minimum / value:.1f}× short"
            if value > 0
            else "**not met**"
        )
    assert goal.maximum is not None
    return f"**not met**: {value / goal.maximum:.1f}× the limit"


# -- what bounds a scenario --------------------------------------------------------------------------
def bound_analysis(document: dict[str, Any], scenario: str) -> str:
    """Where durable_ext's time per unit goes in a scenario, and what that says about its bound."""
    s = _scenario(document, scenario, "durable_ext")
    rate = s.get("throughput_per_s")
    cpu_ms = s.get("cpu_ms_per_unit")
    if not rate or cpu_ms is None:
        return "No successful durable_ext run to analyse."
    unit = SCENARIOS[scenario].per
    wall_ms = 1000 / rate
    storage_ms = s.get("storage_cpu_ms_per_unit") or 0.0
    other_ms = (s.get("other_cpu_s") or 0.0) * 1000 / max(s.get("units") or 1, 1)
    worker_util, storage_util = cpu_ms / wall_ms, storage_ms / wall_ms
    both = worker_util + storage_util
    requests = s.get("requests_per_unit")
    client_requests = s.get("client_requests_per_unit")
    parts = [
        f"Each {unit} takes {wall_ms:.1f} ms of wall time; over it the engine process (worker "
        f"and client) used {cpu_ms:.1f} ms of CPU ({worker_util:.0%} of one core) and Azurite "
        f"{storage_ms:.1f} ms ({storage_util:.0%})"
    ]
    if requests is not None:
        parts[0] += f"; the worker made {requests:.1f} storage requests per {unit}"
        if client_requests is not None:
            parts[0] += f" and the client {client_requests:.1f}"
    parts[0] += "."
    if other_ms > 0.25 * wall_ms:
        parts.append(
            f"Other processes on the machine were busy {other_ms:.1f} ms per {unit} "
            f"({other_ms / wall_ms:.0%} of a core) during these runs: part of the wall time is "
            "waiting for a core."
        )
    raising = s.get("raise_calls_s")
    if raising and s.get("wall_s") and raising / s["wall_s"] >= 0.8:
        parts.append(
            f"Bound by the client: raising the events one after another took {raising:.2f} s "
            f"of the {s['wall_s']:.2f} s ({raising / s['wall_s']:.0%}); the orchestration kept "
            f"up with them. Each `raise_event` is {client_requests or 0:.1f} sequential storage "
            "requests (an Instances read to check the instance, then the queue send), so the "
            "event rate is one client round trip pair per event."
        )
    elif worker_util >= 0.8:
        parts.append(
            "Bound by the worker's CPU: one Python process (one event loop, one core) is busy "
            "nearly all the time, so more throughput needs less Python work per "
            f"{unit} (see where the CPU goes below) or more worker processes."
        )
    elif storage_util >= 0.8:
        parts.append(
            "Bound by Azurite's CPU: the storage emulator is busy nearly all the time, so the "
            f"{unit} rate is what its CPU per request times the requests per {unit} (below) "
            f"allows; more throughput needs fewer requests per {unit} or a faster store."
        )
    elif both > 1.05 and max(worker_util, storage_util) >= 0.65:
        busier, share, other_name, other_share = (
            ("Azurite", storage_util, "the worker", worker_util)
            if storage_util >= worker_util
            else ("the worker", worker_util, "Azurite", storage_util)
        )
        parts.append(
            f"Mostly bound by {busier}'s CPU: the work overlaps (the worker and Azurite are busy "
            f"{both:.0%} of the wall time together), and {busier} is the busier, at {share:.0%} "
            f"of a core against {other_share:.0%} for {other_name}."
        )
    elif both + other_ms / wall_ms >= 1.6:
        parts.append(
            f"Bound by the machine's two cores: the worker ({worker_util:.0%}), Azurite "
            f"({storage_util:.0%}) and the other processes ({other_ms / wall_ms:.0%}) together "
            f"keep {(both + other_ms / wall_ms) / 2:.0%} of both cores busy."
        )
    elif both >= 0.8:
        overlap = (
            "take turns (each waits for the other's answer)"
            if both <= 1.05
            else "overlap only partly"
        )
        parts.append(
            f"Bound by CPU on the critical path: the worker and Azurite {overlap}, and their "
            f"CPU adds up to {both:.0%} of the wall time, so the {unit} rate is what the two "
            f"processes' CPU per {unit} allows."
        )
    else:
        parts.append(
            f"Mostly waiting: the worker and Azurite together are busy only {both:.0%} of the "
            "wall time; the rest is spent in round trips that follow one another and in polling "
            "delays."
        )
    all_requests = s.get("requests_total_per_unit")
    if all_requests:
        per_request = cpu_ms / all_requests
        storage_per_request = storage_ms / all_requests
        caps = {
            "the engine process": 1000 / per_request if per_request else None,
            "Azurite": 1000 / storage_per_request if storage_per_request else None,
            "the two cores shared": 2000 / (per_request + storage_per_request),
        }
        known = {name: cap for name, cap in caps.items() if cap}
        binding = min(known, key=lambda name: known[name])
        cap = known[binding] / all_requests
        rates = ", ".join(f"{name} {value:.0f}" for name, value in known.items())
        parts.append(
            f"Per storage request (worker's and client's, {all_requests:.1f} per {unit}) the "
            f"engine process spent {per_request:.2f} ms of CPU and Azurite {storage_per_request:.2f} "
            "ms. At those costs, the requests per second each could carry on its own (the "
            "engine's work runs on one event loop, Azurite's on one Node.js thread): "
            f"{rates}. The lowest, {binding}, allows at most {cap:.0f} "
            f"{SCENARIOS[scenario].unit}/s with {all_requests:.1f} requests per {unit}, however "
            f"well the work overlaps; the measured {rate:.0f}/s is {rate / cap:.0%} of that."
        )
        if rate > cap * 1.02:
            parts.append(
                f"(Above 100%: {binding} used more than one core here, "
                + (
                    "Azurite's disk reads and writes running on Node.js's thread pool beside its "
                    "main thread, "
                    if binding == "Azurite"
                    else "work beside the event loop (the activity thread pool), "
                )
                + "so that bound is a rough one.)"
            )
    return " ".join(parts)


# -- storage sensitivity -----------------------------------------------------------------------------
_SENSITIVITY_MARGIN = 1.1
"""An in-memory run at least this much faster than disk means disk persistence bounds the run."""
_CONTENTION_MARGIN = 0.25
"""Other processes busier by this much of a core during the in-memory run than during the disk
runs make a smaller speed-up inconclusive."""


def _others_busy(summary: dict[str, Any]) -> float | None:
    """The share of one core other processes kept busy over a run (median run)."""
    other, wall = summary.get("other_cpu_s"), summary.get("wall_s")
    return float(other / wall) if other is not None and wall else None


def _sensitivity(document: dict[str, Any], scenario: str) -> dict[str, Any]:
    """durable_ext's summary of `scenario` on the in-memory Azurite (empty if not measured)."""
    found = _get(document, "summary", "storage_sensitivity", "scenarios", scenario)
    return found if isinstance(found, dict) and not found.get("error") else {}


def _speedup(scenario: str, disk: dict[str, Any], memory: dict[str, Any]) -> float | None:
    """How many times faster the in-memory run is (rates: memory / disk; latency: p50 ratio)."""
    key = "p50_ms" if scenario == "latency" else "throughput_per_s"
    on_disk, in_memory = disk.get(key), memory.get(key)
    if not on_disk or not in_memory:
        return None
    return float(on_disk / in_memory if scenario == "latency" else in_memory / on_disk)


def sensitivity_sentence(document: dict[str, Any], scenario: str) -> str:
    """One sentence for a goal's "what bounds it": the same run on an in-memory Azurite, and
    whether Azurite's disk persistence bounds the scenario (empty when not measured)."""
    disk = _scenario(document, scenario, "durable_ext")
    memory = _sensitivity(document, scenario)
    speedup = _speedup(scenario, disk, memory)
    if speedup is None:
        return ""
    if scenario == "latency":
        reached = f"takes p50 {memory['p50_ms']:.1f} ms against {disk['p50_ms']:.1f} ms on disk"
        goal_value, disk_value = memory["p50_ms"], disk["p50_ms"]
    else:
        reached = f"reaches {_num(memory['throughput_per_s'])}/s ({speedup:.2f}× the disk figure)"
        goal_value, disk_value = memory["throughput_per_s"], disk["throughput_per_s"]
    sends = [(s.get("request_median_ms") or {}).get("queue.send") for s in (disk, memory)]
    if all(sends):
        reached += (
            f", with a median queue send of {sends[1]:.1f} ms against {sends[0]:.1f} ms on disk"
        )
    goal = GOALS.get(scenario)
    met_on_disk = goal.met(disk_value) if goal else None
    met_in_memory = goal.met(goal_value) if goal else None
    busy = [_others_busy(disk), _others_busy(memory)]
    if speedup >= _SENSITIVITY_MARGIN:
        verdict = "Azurite's disk persistence bounds this scenario"
        if met_on_disk is False and met_in_memory:
            verdict += ": with the same engine it is what keeps it below the goal"
        elif met_in_memory is False:
            verdict += ", though in memory it still falls short of the goal"
    elif busy[0] is not None and busy[1] is not None and busy[1] - busy[0] > _CONTENTION_MARGIN:
        verdict = (
            f"inconclusive, as other processes kept {busy[1]:.0%} of a core busy during the "
            f"in-memory run against {busy[0]:.0%} during the disk runs"
        )
    else:
        verdict = "Azurite's disk persistence is not what bounds it"
    return (
        "With Azurite keeping its data in memory instead of on disk, the same run "
        f"{reached} (one run): {verdict}."
    )


def _sensitivity_section(document: dict[str, Any]) -> str:
    measured = _get(document, "summary", "storage_sensitivity")
    if not measured:
        if _get(document, "environment", "azurite_persistence") == "in-memory":
            return "Not measured: the main runs are on an in-memory Azurite already."
        return "Not measured in this run."
    if measured.get("error"):
        return f"Not measured: the in-memory Azurite failed ({measured['error']})."
    rows = []
    for scenario, memory in (measured.get("scenarios") or {}).items():
        disk = _scenario(document, scenario, "durable_ext")
        if memory.get("error"):
            rows.append([scenario, "", "", f"failed: {memory['error']}", "", "", "", ""])
            continue
        if scenario == "latency":
            unit, key = "ms p50", "p50_ms"
        else:
            unit, key = SCENARIOS[scenario].unit + "/s", "throughput_per_s"
        sends = [(s.get("request_median_ms") or {}).get("queue.send") for s in (disk, memory)]
        rows.append(
            [
                scenario,
                unit,
                _num(disk.get(key)),
                _num(memory.get(key))
                + ("" if memory.get("all_correct", True) else " (wrong output)"),
                _num(_speedup(scenario, disk, memory), 2, "×"),
                f"{_num(disk.get('storage_cpu_ms_per_unit'), 2)} → "
                f"{_num(memory.get('storage_cpu_ms_per_unit'), 2)}",
                f"{_num(sends[0], 1)} → {_num(sends[1], 1)}",
                f"{_pct(_others_busy(disk))} → {_pct(_others_busy(memory))}",
            ]
        )
    return "\n".join(
        [
            "durable_ext on a second, fresh Azurite started with `--inMemoryPersistence`, once "
            "per scenario, against the main runs on disk (their medians). Everything else is "
            "the same; the headline figures above are the disk ones. `speed-up` is how many "
            "times faster the in-memory run is (for latency: disk p50 over in-memory p50). "
            "Per unit as in the details (per orchestration for HelloCities); `others busy` is "
            "the CPU other processes on the machine used over the run: a single run next to a "
            "busy neighbour is not a fair comparison.",
            "",
            _table(
                [
                    "scenario",
                    "unit",
                    "disk",
                    "in memory",
                    "speed-up",
                    "Azurite CPU ms/unit (disk → memory)",
                    "queue send median ms (disk → memory)",
                    "others busy, % of a core (disk → memory)",
                ],
                rows,
            ),
        ]
    )


# -- markdown ----------------------------------------------------------------------------------------
def _summary_table(document: dict[str, Any], engines: Sequence[str]) -> str:
    header = [
        "scenario",
        "unit",
        *[ENGINE_LABELS[e] for e in engines],
        "DF target",
        "goal",
        "verdict (durable_ext)",
    ]
    rows: list[list[str]] = []
    values = goal_values(document)
    for scenario in THROUGHPUT_SCENARIOS:
        low, high = DF_TARGETS[scenario]
        target = f"{low:g}/s" if low == high else f"{low:g}–{high:g}/s"
        if scenario == "fanout":
            target += f" (fan-in {DF_TARGETS['fanin'][0]:g}/s)"
        goal = GOALS[scenario]
        cells = []
        for engine in engines:
            s = _scenario(document, scenario, engine)
            cell = _num(s.get("throughput_per_s"))
            if s and not s.get("all_correct", True):
                cell += " (wrong output)"
            if s.get("error"):
                cell = "failed"
            cells.append(cell)
        rows.append(
            [
                scenario,
                SCENARIOS[scenario].unit + "/s",
                *cells,
                target,
                f"≥ {goal.minimum:g}",
                _gap(scenario, values[scenario]),
            ]
        )
    latency_cells = []
    for engine in engines:
        s = _scenario(document, "latency", engine)
        latency_cells.append(f"{_num(s.get('p50_ms'))} / {_num(s.get('p99_ms'))}")
    rows.append(
        [
            "latency",
            "ms p50 / p99",
            *latency_cells,
            "—",
            f"p50 ≤ {GOALS['latency'].maximum:g}",
            _gap("latency", values["latency"]),
        ]
    )
    rows.append(
        [
            "replay (10k events)",
            "× azure-functions-durable 1.7",
            _num(values["replay"], suffix="×"),
            *["n/a"] * (len(engines) - 1),
            "—",
            "≥ 5×",
            _gap("replay", values["replay"]),
        ]
    )
    on = _get(document, "summary", "chain", "cache_on") or {}
    off = _get(document, "summary", "chain", "cache_off") or {}
    rows.append(
        [
            "chain replay growth",
            "exponent (1 linear, 2 quadratic)",
            f"{_num(values['linear_replay'], 2)} (cache off: "
            f"{_num(off.get('exponent_resumes'), 2)})"
            if on
            else "—",
            *["n/a"] * (len(engines) - 1),
            "—",
            "linear",
            _gap("linear_replay", values["linear_replay"]),
        ]
    )
    idle_count = _get(document, "raw", "idle", "count") or 0
    rows.append(
        [
            f"idle worker RSS ({idle_count:,} waiting)",
            "MB",
            _num(values["idle_rss"], 0),
            *["n/a"] * (len(engines) - 1),
            "—",
            "≤ 250",
            _gap("idle_rss", values["idle_rss"]),
        ]
    )
    return _table(header, rows)


def _details_table(document: dict[str, Any], engines: Sequence[str]) -> str:
    header = [
        "scenario",
        "engine",
        "rate/s",
        "wall s",
        "CPU s",
        "Azurite CPU s",
        "others' CPU s",
        "CPU ms/unit",
        "peak RSS MB",
        "worker storage requests (DBOS: SQL) per unit",
        "client requests/unit",
        "× floor",
        "runs",
    ]
    rows = []
    for scenario in SCENARIOS:
        for engine in engines:
            s = _scenario(document, scenario, engine)
            if not s:
                continue
            if s.get("error"):
                rows.append([scenario, engine, f"failed: {s['error']}", *[""] * 10])
                continue
            ops = s.get("requests_per_unit") or s.get("sql_statements_per_unit")
            rate = _num(s.get("throughput_per_s"))
            if scenario == "latency":
                rate = f"p50 {_num(s.get('p50_ms'))} ms"
            rows.append(
                [
                    scenario,
                    ENGINE_LABELS[engine],
                    rate,
                    _num(s.get("wall_s"), 2),
                    _num(s.get("cpu_s"), 2),
                    _num(s.get("storage_cpu_s"), 2),
                    _num(s.get("other_cpu_s"), 2),
                    _num(s.get("cpu_ms_per_unit"), 2),
                    _num(s.get("rss_peak_mb"), 0),
                    _num(ops, 1),
                    _num(s.get("client_requests_per_unit"), 1),
                    _num(floor_ratio(document, scenario, engine), 2),
                    f"{s['runs'] - s['failed_runs']}/{s['runs']}"
                    + ("" if s.get("all_correct") else " (wrong output)"),
                ]
            )
    return _table(header, rows)


def _fanout_split(document: dict[str, Any], engines: Sequence[str]) -> str:
    rows = []
    for engine in engines:
        s = _scenario(document, "fanout", engine)
        wall, last = s.get("wall_s"), s.get("until_last_activity_s")
        units = s.get("units")
        if not wall or last is None or not units:
            continue
        rows.append(
            [
                ENGINE_LABELS[engine],
                _num(wall, 2),
                _num(last, 2),
                _num(units / last if last else None),
                _num(wall - last, 2),
            ]
        )
    if not rows:
        return ""
    return _table(
        [
            "engine",
            "total s",
            "until the last activity ran, s",
            "activities executed/s",
            "fan-in tail after it, s",
        ],
        rows,
    )


def _floor_section(document: dict[str, Any]) -> str:
    floor = _get(document, "raw", "floor")
    if not floor:
        return "Not measured in this run."
    variants = _floor_variants(document)
    rows = []
    for _, v in variants:
        rows.append(
            [
                v.get("label", "?"),
                v.get("client", "?"),
                str(v.get("requests_per_step", "?")),
                f"**{_num(v.get('step_ms'), 2)}**",
                _num(v.get("steps_per_s"), 0),
                _num(v.get("cpu_ms_per_step"), 2),
                _num(v.get("cpu_ms_per_request"), 2),
                _num(v.get("storage_cpu_ms_per_step"), 2),
                _num(v.get("storage_cpu_ms_per_request"), 2),
                ", ".join(f"{x:.1f}" for x in v.get("runs_step_ms", [])),
            ]
        )
    lines = [
        f"One orchestration step's raw storage calls with no engine, {floor.get('steps_per_run', '?')} "
        "steps in a row per run: in DTFx order (every message received), as a handoff (both "
        "messages sent invisible and deleted by the pop receipt the send returns; no "
        "receives), and as the engine's own sequential step now (the work item sent invisible, "
        "the result handed over in memory: no result message, no receive, no Instances merge "
        "while the status is unchanged). The DTFx and handoff shapes go through the Azure SDK's aio "
        "clients and through the lean REST path the engine uses, the engine's shape through the "
        "lean path, all in the same run. `CPU` is this (client) process's CPU per step "
        "(time.process_time around the loop), `Azurite CPU` the emulator's over the same steps.",
        "",
        _table(
            [
                "step",
                "client",
                "requests",
                "ms/step",
                "steps/s",
                "CPU ms/step",
                "CPU ms/request",
                "Azurite CPU ms/step",
                "Azurite ms/request",
                "runs (ms/step)",
            ],
            rows,
        ),
        "",
    ]
    by_key = dict(variants)
    sdk, lean = by_key.get("dtfx", {}), by_key.get("dtfx_lean", {})
    if sdk.get("cpu_ms_per_request") and lean.get("cpu_ms_per_request"):
        lines.append(
            f"The lean REST path costs **{lean['cpu_ms_per_request']:.2f} ms** of client CPU per "
            f"request against the SDK's {sdk['cpu_ms_per_request']:.2f} ms "
            f"({sdk['cpu_ms_per_request'] / lean['cpu_ms_per_request']:.1f}× less) and makes the "
            f"DTFx step {sdk['step_ms'] / lean['step_ms']:.1f}× faster "
            f"({sdk['step_ms']:.1f} → {lean['step_ms']:.1f} ms)"
            + (
                f"; what is left of a lean step is mostly Azurite "
                f"({lean['storage_cpu_ms_per_step']:.1f} ms of its CPU per step) and the round "
                "trips."
                if lean.get("storage_cpu_ms_per_step")
                else "."
            )
        )
        lines.append("")
    for key in ("parallel", "parallel_lean"):
        parallel = floor.get(key)
        if not parallel:
            continue
        client = parallel.get("client", _SDK_CLIENT)
        shares = ""
        if parallel.get("cpu_share") is not None:
            shares = f"; the client process was busy {_pct(parallel['cpu_share'])} of a core"
            if parallel.get("storage_cpu_share") is not None:
                shares += f", Azurite {_pct(parallel['storage_cpu_share'])}"
        lines.append(
            f"- {parallel['chains']} independent chains of DTFx-order steps at once through "
            f"{'the ' + client if client == _SDK_CLIENT else 'the ' + client + ' path'}: "
            f"**{parallel['steps_per_s']:.0f} steps/s** ({parallel['requests_per_s']:.0f} "
            f"requests/s){shares}."
        )
    lines += [
        "",
        "The parallel figures are what this client and Azurite sustain for many concurrent "
        "steps made one request at a time; the engine does better than that on fan-out and "
        "HelloCities because it needs fewer requests per activity (results in memory, one "
        "history transaction for many results).",
        "",
        "Median latency of each request, as the client saw it (ms; the sum of medians is below "
        "the step time because each request also has a tail):",
        "",
    ]
    ops: list[str] = []
    for _, v in variants:
        for op in v.get("op_median_ms", {}):
            if op not in ops:
                ops.append(op)
    op_rows = [
        [op, *[_num(v.get("op_median_ms", {}).get(op), 2) for _, v in variants]] for op in ops
    ]
    lines.append(_table(["request", *[_variant_name(v) for _, v in variants]], op_rows))
    return "\n".join(lines)


def _requests_section(document: dict[str, Any]) -> str:
    scenarios = [
        s
        for s in SCENARIOS
        if _scenario(document, s, "durable_ext").get("requests_by_category_per_unit")
    ]
    if not scenarios:
        return "Not measured in this run."
    categories = sorted(
        {
            c
            for s in scenarios
            for c in _scenario(document, s, "durable_ext")["requests_by_category_per_unit"]
        }
    )
    rows = []
    for category in categories:
        row = [category]
        for scenario in scenarios:
            per_unit = _scenario(document, scenario, "durable_ext")["requests_by_category_per_unit"]
            row.append(_num(per_unit.get(category, 0.0), 2))
        rows.append(row)
    rows.append(
        ["**total**"]
        + [
            _num(_scenario(document, s, "durable_ext").get("requests_per_unit"), 2)
            for s in scenarios
        ]
    )
    header = ["request", *[f"{s} (per {SCENARIOS[s].per})" for s in scenarios]]
    latency_rows = []
    for category in categories:
        cells = [category]
        for scenario in scenarios:
            medians = _scenario(document, scenario, "durable_ext").get("request_median_ms", {})
            cells.append(_num(medians.get(category), 2))
        latency_rows.append(cells)
    return "\n".join(
        [
            "Every request durable_ext's worker sent during the measured stretch, per unit of "
            "the scenario (leases and idle polling included; `queue.receive.empty` are receives "
            "that found nothing); the bench client's own requests are not in it (they are the "
            "`client requests/unit` column above). The floor's "
            "DTFx step is 8 requests, its handoff step 6, the engine's sequential shape (result "
            "handed over in memory) 3.",
            "",
            _table(header, rows),
            "",
            "Median latency per request, as the worker saw it (ms, from sending to the answer):",
            "",
            _table(["request", *scenarios], latency_rows),
        ]
    )


def _profile_section(document: dict[str, Any]) -> str:
    profiles = _get(document, "raw", "profile") or {}
    usable = {s: p for s, p in profiles.items() if "by_area" in p}
    if not usable:
        return "Not profiled in this run."
    areas: list[str] = []
    for profile in usable.values():
        for area in profile["by_area"]:
            if area not in areas:
                areas.append(area)
    rows = []
    for area in areas:
        row = [area]
        for profile in usable.values():
            entry = profile["by_area"].get(area)
            row.append(f"{_pct(entry['share'])} ({entry['seconds']:.2f} s)" if entry else "—")
        rows.append(row)
    parts = [
        "Own CPU time of the event-loop thread by area, under cProfile with a thread-CPU "
        "timer (sync activities run on the thread pool and are not in it; cProfile slows the "
        "run, so read shares, not absolute times):",
        "",
        _table(["area", *usable], rows),
    ]
    for scenario, profile in usable.items():
        parts += [
            "",
            f"Top functions by own time, `{scenario}`:",
            "",
            _table(
                ["function", "own s", "calls"],
                [
                    [f"`{f['function']}`", _num(f["own_s"], 3), f"{f['calls']:,}"]
                    for f in profile["top_functions"][:10]
                ],
            ),
        ]
    return "\n".join(parts)


def _replay_section(document: dict[str, Any]) -> str:
    replay = _get(document, "raw", "replay")
    if not replay or "scenarios" not in replay:
        error = (replay or {}).get("error", "not run")
        return f"bench/replay.py did not produce results: {error}."
    rows = []
    for s in replay["scenarios"]:
        rows.append(
            [
                s["scenario"],
                f"{s['events']:,}",
                _num(s["durable_ext"]["cpu_median_s"] * 1000, 1),
                _num(s["sdk"]["cpu_median_s"] * 1000, 1),
                f"{s['wall_ratio']:.1f}×",
                f"{s['cpu_ratio']:.1f}×",
                f"{s['cpu_ratios']['replay_only']:.1f}×",
            ]
        )
    return "\n".join(
        [
            "bench/replay.py replays the same scripted history with both engines in one process "
            "(ours: decode storage-shaped rows + `OrchestrationExecutor.execute`; the SDK: "
            "`Orchestrator.create(fn)(trigger_json)`), median of "
            f"{replay.get('runs', '?')} runs each:",
            "",
            _table(
                [
                    "history",
                    "events",
                    "durable_ext CPU ms",
                    "azure-functions-durable 1.7 CPU ms",
                    "speed-up (wall)",
                    "speed-up (CPU)",
                    "replay alone (CPU, est.)",
                ],
                rows,
            ),
        ]
    )


def _chain_section(document: dict[str, Any]) -> str:
    chain = _get(document, "summary", "chain")
    if not chain:
        return "Not measured in this run."
    lengths = chain["lengths"]
    rows = []
    for label, title in (("cache_on", "cache on"), ("cache_off", "cache off")):
        data = chain.get(label) or {}
        if "error" in data or not data:
            rows.append([title, "failed", *[""] * 7])
            continue
        for i, n in enumerate(lengths):
            rows.append(
                [
                    title,
                    str(n),
                    _num(data["wall_s"][i], 2),
                    _num(data["cpu_s"][i], 2),
                    _num(data["storage_cpu_s"][i], 2),
                    f"{data['invocations'][i]:,}",
                    f"{data['replayed_resumes'][i]:,}",
                    f"{data['history_query_bytes'][i] / 1024:,.0f}",
                    f"{data['requests'][i]:,}" if data["requests"][i] is not None else "—",
                ]
            )
    exponent_rows = []
    for label, title in (("cache_on", "cache on"), ("cache_off", "cache off")):
        data = chain.get(label) or {}
        exponent_rows.append(
            [
                title,
                _num(data.get("exponent_resumes"), 2),
                _num(data.get("exponent_cpu"), 2),
                _num(data.get("exponent_storage_cpu"), 2),
                _num(data.get("exponent_history_query_bytes"), 2),
            ]
        )
    return "\n".join(
        [
            "An N-step chain (the `sequential` orchestration) run with the instance cache on "
            "(default) and off (`instance_cache_size=0`). The orchestrator counts its own work: "
            "`invocations` is how often the function was started from the first event (a full "
            "replay), `replayed resumes` how many activity results it was handed from history "
            "again. `history read` is the bytes of history-table queries Azurite returned.",
            "",
            _table(
                [
                    "instance cache",
                    "N",
                    "wall s",
                    "worker CPU s",
                    "Azurite CPU s",
                    "invocations",
                    "replayed resumes",
                    "history read KiB",
                    "requests",
                ],
                rows,
            ),
            "",
            "Growth exponents (least-squares slope of log(value) over log(N); 1 = linear, "
            "2 = quadratic):",
            "",
            _table(
                [
                    "instance cache",
                    "orchestrator resumes",
                    "worker CPU",
                    "Azurite CPU",
                    "history read",
                ],
                exponent_rows,
            ),
        ]
    )


def _within_run(document: dict[str, Any], moment: str) -> bool:
    """Whether `moment` (ISO 8601) falls within the suite run the document is from."""
    try:
        began = datetime.fromisoformat(document["generated_at"])
        at = datetime.fromisoformat(moment)
    except (KeyError, TypeError, ValueError):
        return True
    return began <= at <= began + timedelta(seconds=document.get("duration_s", 0.0))


FLAT_SPREAD = 1.5
"""Largest over smallest median CPU per episode along the chain that still counts as flat."""


def episode_sentence(summary: dict[str, Any]) -> str:
    """Whether the CPU per episode stays flat along the chain, from the summary's figures."""
    rows = [r for r in summary.get("rows", []) if r.get("cpu_ms_median")]
    if len(rows) < 2:
        return ""
    first, last = rows[0], rows[-1]
    spread = max(r["cpu_ms_median"] for r in rows) / min(r["cpu_ms_median"] for r in rows)
    span = (
        f"{first['cpu_ms_median']:.2f} ms at step {first['position']:,} and "
        f"{last['cpu_ms_median']:.2f} ms at step {last['position']:,} "
        f"(a history of {last['history_events']:,} events)"
    )
    if spread <= FLAT_SPREAD:
        verdict = (
            f"The worker's CPU per episode is **flat** along the chain: {span}; the largest "
            f"median is {spread:.2f}× the smallest."
        )
    else:
        verdict = (
            f"The worker's CPU per episode is **not flat** along the chain: {span}; the largest "
            f"median is {spread:.2f}× the smallest (flat means at most {FLAT_SPREAD}×)."
        )
    cached = [r["engine_cached_ms_median"] for r in rows if r.get("engine_cached_ms_median")]
    replay = [r for r in rows if r.get("engine_replay_ms")]
    if cached and len(replay) >= 2:
        low, high = f"{min(cached) * 1000:.0f}", f"{max(cached) * 1000:.0f}"
        verdict += (
            f" The engine's own share of a cached episode stays at "
            f"{low if low == high else f'{low}–{high}'} µs, while replaying the whole history (a cache miss) "
            f"grows from {replay[0]['engine_replay_ms']:.2f} ms at step "
            f"{replay[0]['position']:,} to {replay[-1]['engine_replay_ms']:.1f} ms at step "
            f"{replay[-1]['position']:,}."
        )
    return verdict


def _episode_section(document: dict[str, Any]) -> str:
    summary = _get(document, "summary", "episode")
    if not summary:
        return "Not measured in this run."
    if "error" in summary or not summary.get("rows"):
        return f"The measurement failed: {summary.get('error', 'no windows')}."
    window = summary.get("window")
    rounds = summary.get("rounds", 1)
    rows = [
        [
            f"{r['position']:,}–{r['position'] + window:,}",
            f"{r['history_events']:,}",
            _num(r["cpu_ms_median"], 2),
            _num(r["cpu_ms_mean"], 2),
            _num(r["wall_ms_median"], 2),
            _num(r["storage_cpu_ms_per_episode"], 1),
            _num(r["engine_cached_ms_median"] and r["engine_cached_ms_median"] * 1000, 0),
            _num(r["engine_replay_ms"], 2),
            "yes" if r["correct"] else "**no**",
        ]
        for r in summary["rows"]
    ]
    measured_at = summary.get("measured_at")
    when = (
        f" Measured on {measured_at}"
        + (f" at commit `{summary['git_commit'][:10]}`" if summary.get("git_commit") else "")
        + ", in a run of this part alone (the rest of the page is from the run above)."
        if measured_at and not _within_run(document, measured_at)
        else ""
    )
    return "\n".join(
        [
            f"A chain orchestration with the instance cache on, {window} episodes measured from "
            f"each position ({rounds} round{'s' if rounds != 1 else ''}, samples pooled; beyond "
            "step 0 the chain is seeded to the position and handed to the worker's cache, then "
            "runs for real). `worker CPU` is the process's CPU between two consecutive activity "
            "calls, which is one episode with its checkpoint and the activity; `engine alone` "
            "is a cached episode's `continue_episode` and summary update, `full replay` what "
            f"the engine spends on a cache miss at that step (history read not included).{when}",
            "",
            _table(
                [
                    "steps",
                    "history events seeded",
                    "worker CPU ms/episode (median)",
                    "(mean)",
                    "wall ms/episode",
                    "Azurite CPU ms/episode",
                    "engine alone µs",
                    "full replay ms",
                    "outputs correct",
                ],
                rows,
            ),
            "",
            episode_sentence(summary),
        ]
    )


def _idle_section(document: dict[str, Any]) -> str:
    idle = _get(document, "raw", "idle")
    if not idle:
        return "Not measured in this run."
    if "error" in idle:
        return f"The measurement failed: {idle['error']}"
    return (
        f"{idle['count']:,} orchestrations each waiting for an external event: the worker "
        f"process's RSS was **{idle['rss_idle_mb']:.0f} MB** once all were idle "
        f"({idle['rss_before_mb']:.0f} MB before the first start; peak "
        f"{idle['rss_peak_mb']:.0f} MB; about {idle['rss_per_instance_kb']:.1f} KB per "
        f"instance), with {idle['cached_instances']:,} instances in its instance cache. "
        f"Starting them (the client's {idle['count']:,} `start_new` calls, 16 in flight; "
        f"{idle.get('start_retries_after_connection_errors', 0)} retried after Azurite dropped "
        "the connection) and "
        f"running every first episode took {idle['all_running_s']:.0f} s "
        f"({idle['running_per_s']:.0f} orchestrations/s) and "
        f"{idle['worker_cpu_s']:.0f} s of worker CPU"
        + (
            f", {idle['client_cpu_s']:.0f} s of the client's and "
            f"{idle['storage_cpu_s']:.0f} s of Azurite's (other processes: "
            f"{idle['other_cpu_s']:.0f} s)"
            if idle.get("storage_cpu_s") is not None
            else ""
        )
        + ". The memory figure is what the goal is about; the start-up rate is bounded by the "
        "client's three sequential requests per start (an Instances read, the queue send, the "
        "Instances insert)"
        + (
            f"; it went from {rates[0]:.0f} starts/s in the first tenth to {rates[-1]:.0f} in "
            "the last as the hub grew"
            if (rates := idle.get("starts_per_s_by_tenth"))
            else ""
        )
        + "."
    )


def _levers_section(document: dict[str, Any]) -> str:
    levers = _get(document, "summary", "levers") or []
    parts: list[str] = []
    for lever in levers:
        parts += [f"### {lever['label']}", "", lever["description"], ""]
        if "missing" in lever:
            parts += [f"Not measured: {lever['missing']}.", ""]
            continue
        rows = []
        for scenario, off in lever.get("off", {}).items():
            on = lever.get("on", {}).get(scenario, {})
            on_rate, off_rate = on.get("throughput_per_s"), off.get("throughput_per_s")
            unit = SCENARIOS[scenario].per if scenario in SCENARIOS else "unit"
            rows.append(
                [
                    f"{scenario} (per {unit})",
                    _num(on_rate),
                    _num(off_rate) if not off.get("error") else f"failed: {off['error']}",
                    f"{on_rate / off_rate:.2f}×" if on_rate and off_rate else "—",
                    _num(on.get("requests_per_unit"), 1),
                    _num(off.get("requests_per_unit"), 1),
                    _num(on.get("cpu_ms_per_unit"), 2),
                    _num(off.get("cpu_ms_per_unit"), 2),
                ]
            )
        runs = document.get("lever_runs", 1)
        parts += [
            f"Measured by switching it off (`{lever['off_option']}`) on "
            + ", ".join(f"`{s}`" for s in lever.get("off", {}))
            + f" ({runs} run{'s' if runs != 1 else ''} each, against the main runs' medians), "
            "everything else equal:",
            "",
            _table(
                [
                    "scenario",
                    "on /s",
                    "off /s",
                    "effect",
                    "requests/unit on",
                    "off",
                    "CPU ms/unit on",
                    "off",
                ],
                rows,
            ),
            "",
        ]
        if lever["key"] == "instance_cache":
            parts += ["Its effect on replay growth is in the chain measurement above.", ""]
    parts += ["### Fewer and cheaper requests (not switchable)", "", *_request_savings(document)]
    return "\n".join(parts)


def _request_savings(document: dict[str, Any]) -> list[str]:
    """What the engine does to make fewer and cheaper requests, with the figures of this run."""
    floor = dict(_floor_variants(document))
    sdk, lean = floor.get("dtfx", {}), floor.get("dtfx_lean", {})
    lean_text = (
        "The lean REST path (`durable_ext.storage.rest`): queue message put/get/delete/update "
        "and table row get/insert/write/query/transaction go straight over aiohttp, signed "
        "like the SDK's requests (Shared Key, SAS or a Microsoft Entra token), storing the "
        "same bytes and raising the same `azure.core` errors, instead of through the Azure "
        "SDK's pipeline; creating and deleting queues, tables and containers, leases and blobs "
        "stay on the SDK."
    )
    if sdk.get("cpu_ms_per_request") and lean.get("cpu_ms_per_request"):
        lean_text += (
            f" In the floor above it costs {lean['cpu_ms_per_request']:.2f} ms of client CPU "
            f"per request against the SDK's {sdk['cpu_ms_per_request']:.2f} ms, and a DTFx-order "
            f"step takes {lean['step_ms']:.1f} ms instead of {sdk['step_ms']:.1f} ms."
        )
    sequential = _scenario(document, "sequential", "durable_ext").get("requests_per_unit")
    memory_text = (
        "Results handed over in memory: an activity's result goes to the orchestration that "
        "this process owns without a result message (bound to its work item, which the "
        "recording checkpoint deletes), so a sequential activity is the floor's "
        "result-in-memory shape: send the work item (invisible), the history transaction, "
        "delete the work item, 3 requests against DTFx's 8"
    )
    memory_text += (
        f"; this run's `sequential` made {sequential:.1f} worker requests per activity."
        if sequential
        else "."
    )
    fanout = _scenario(document, "fanout", "durable_ext").get("requests_by_category_per_unit") or {}
    batch_text = (
        "One history transaction per checkpoint: all the rows an episode adds go in one "
        "table transaction with the sentinel merge (split only beyond a transaction's 100 "
        "operations or about 3 MB), so a "
        "fan-out records many results per transaction"
    )
    batch = fanout.get("table.batch")
    batch_text += (
        f" (this run's `fanout`: {batch:.2f} transactions per activity)." if batch else "."
    )
    return [
        f"- {lean_text}",
        f"- {memory_text}",
        "- Statuses coalesced: a running orchestration's unchanged status is not merged into "
        "Instances at every checkpoint (the `instance_status_refresh` lever above).",
        f"- {batch_text}",
        "- Parallel sends and deletes: a checkpoint sends its outbound messages concurrently "
        "before the history write and deletes the messages it consumed concurrently after it.",
        "- Not batched: work items. Every activity is its own DTFx message in the work-item "
        "queue (one send and one delete per activity), not several work items packed into one "
        "queue message, so the queues keep the storage contract DTFx and other workers read.",
    ]


def _peers_section(document: dict[str, Any]) -> str:
    lines = [
        "- **DBOS** (`dbos`, SQLite system database, a fresh file per run): steps called "
        "in-process by a workflow for `sequential` and HelloCities; a durable queue (`Queue`, "
        "polling every 50 ms; DBOS's default is 1 s) with one enqueued step per activity for "
        "`fanout`; one workflow per HelloCities orchestration started with "
        "`DBOS.start_workflow`; `DBOS.recv` in the workflow and `DBOS.send` from the client for "
        "`events`.",
        "- **durabletask** (Microsoft's Durable Task Python SDK) with its in-memory backend "
        "(`durabletask.testing.InMemoryOrchestrationBackend`, served over gRPC on loopback in "
        "the same process): nothing is stored, so it bounds what the programming model costs, "
        "not what a durable engine can do.",
    ]
    for engine, reason in (document.get("unavailable_engines") or {}).items():
        lines.append(f"- **{engine} was not run**: {reason}.")
    return "\n".join(lines)


def _goals_section(document: dict[str, Any]) -> str:
    values = goal_values(document)
    parts = []
    for key, goal in GOALS.items():
        value = values.get(key)
        parts.append(f"**{goal.label}** — {_gap(key, value)}.")
        if key in THROUGHPUT_SCENARIOS or key == "latency":
            scenario = key
            analysis = bound_analysis(document, scenario)
            sensitivity = sensitivity_sentence(document, scenario)
            parts.append(analysis + (" " + sensitivity if sensitivity else ""))
            unit_ms = _unit_ms(document, scenario, "durable_ext")
            floor = _get(document, "raw", "floor") or {}
            keys = [k for k in ("dtfx_lean", "handoff_lean", "result_in_memory") if k in floor]
            keys = keys or [k for k in ("dtfx", "handoff") if k in floor]
            steps = [(k, floor[k].get("step_ms")) for k in keys]
            steps = [(k, ms) for k, ms in steps if ms]
            if unit_ms and steps:
                per = "activity" if scenario == "hellocities" else SCENARIOS[scenario].per
                comparisons = [
                    f"{unit_ms / ms:.2f}× {_STEP_PHRASES[k.removesuffix('_lean')]} "
                    f"({ms:.1f} ms, {floor[k].get('requests_per_step', '?')} requests)"
                    for k, ms in steps
                ]
                path = "the lean REST path" if "dtfx_lean" in keys else "the Azure SDK"
                parts.append(
                    f"Against the floor (raw storage steps on {path}): {unit_ms:.1f} ms per "
                    f"{per} is "
                    + ", ".join(comparisons[:-1])
                    + (" and " if len(comparisons) > 1 else "")
                    + comparisons[-1]
                    + "."
                )
        parts.append("")
    return "\n".join(parts)


def render_markdown(document: dict[str, Any], chart_name: str) -> str:
    env = document.get("environment", {})
    machine = env.get("machine", {})
    engines = [e for e in document.get("engines", []) if e in ENGINE_LABELS]
    dirty = env.get("durable_ext_uncommitted_files") or []
    other = [
        r.get("other_cpu_s", 0.0) / r["wall_s"]
        for runs in (_get(document, "raw", "scenarios") or {}).values()
        for engine_runs in runs.values()
        for r in engine_runs
        if "error" not in r and r.get("wall_s")
    ]
    other.sort()
    other_note = (
        f"Other processes kept the machine busy a median {other[len(other) // 2]:.0%} of one "
        f"core during the scenario runs (max {other[-1]:.0%}); "
        if other
        else ""
    )
    quick = ""
    if document.get("quick"):
        quick = " **Quick run (tiny sizes): these figures only show that the machinery works.**"
    header = [
        "# Performance",
        "",
        "<!-- Generated by `make bench` (bench/suite.py, bench/report.py) from bench/results.json."
        " Do not edit by hand: change bench/report.py and run `python -m bench.report`. -->",
        "",
        f"Measured on {document.get('generated_at', '?')} by `make bench` in "
        f"{document.get('duration_s', 0) / 60:.1f} min.{quick} Machine: {machine.get('cpu', '?')}, "
        f"{machine.get('cores', '?')} cores, {_num(machine.get('memory_gb'), 0)} GB; Python "
        f"{env.get('python', '?')}, Azurite {env.get('azurite', '?')} "
        f"({env.get('azurite_persistence', '?')}) on Node {env.get('node', '?')}; durable_ext at "
        f"commit `{(env.get('git_commit') or '?')[:10]}`"
        + (f" with {len(dirty)} uncommitted file(s) in durable_ext/" if dirty else "")
        + (
            " (**durable_ext's source changed while the suite ran**: runs may mix two versions)"
            if env.get("durable_ext_source_at_start") != env.get("durable_ext_source_at_end")
            else ""
        )
        + f". {other_note}load average {env.get('load_average_at_start', '?')} at the start, "
        f"{env.get('load_average_at_end', '?')} at the end. Medians of "
        f"{document.get('runs', '?')} runs; the method is at the end.",
        "",
        "## Summary",
        "",
        "durable_ext (worker + a private Azurite, one process, 2 cores) against DBOS (SQLite) "
        "and durabletask (in-memory, no storage), Durable Functions' published per-node targets "
        "on Azure Storage, and the goals of issue 6.",
        "",
        _summary_table(document, engines),
        "",
        f"![Throughput, latency, replay growth and where durable_ext's time goes]({chart_name})",
        "",
        "## Goals: where each stands and what bounds it",
        "",
        _goals_section(document),
        "## Scenario details",
        "",
        "`CPU s` is the engine process (worker and client; SQLite or the in-memory backend for "
        "the peers), `Azurite CPU s` the storage emulator over the same stretch, `others' CPU s` "
        "the rest of the machine. `× floor` is the time per activity (per event; per run for "
        "latency) over the floor's time per raw DTFx-order step on the lean REST path (the "
        "requests the engine makes, made as cheaply as it makes them).",
        "",
        _details_table(document, engines),
        "",
        "Fan-out, split at the moment the last activity ran (recorded by the activity code):",
        "",
        _fanout_split(document, engines),
        "",
        "## Storage sensitivity: Azurite on disk and in memory",
        "",
        _sensitivity_section(document),
        "",
        "## The physical floor",
        "",
        _floor_section(document),
        "",
        "## Storage requests per unit (durable_ext)",
        "",
        _requests_section(document),
        "",
        "## Where durable_ext's CPU goes",
        "",
        _profile_section(document),
        "",
        "## Replay",
        "",
        _replay_section(document),
        "",
        "## Replay growth: instance cache on and off",
        "",
        _chain_section(document),
        "",
        "## CPU per episode along a cached chain",
        "",
        _episode_section(document),
        "",
        "## Worker memory with idle orchestrations",
        "",
        _idle_section(document),
        "",
        "## Levers",
        "",
        _levers_section(document),
        "",
        "## Peers",
        "",
        _peers_section(document),
        "",
        "## Method",
        "",
        *[f"- **{key}**: {text}" for key, text in document.get("method", METHOD).items()],
        "",
        "Run it: `make bench` (installs the `bench` extra, starts its own Azurite, about 15 "
        "minutes), or `.venv/bin/python -m bench --help` for parts, sizes and runs; "
        "`.venv/bin/python -m bench.report` re-renders this page from bench/results.json.",
        "",
    ]
    return "\n".join(header)


# -- chart -------------------------------------------------------------------------------------------
def render_chart(document: dict[str, Any], path: Path) -> None:
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    engines = [e for e in document.get("engines", []) if e in ENGINE_LABELS]
    figure, axes = plt.subplots(2, 2, figsize=(14, 10))
    throughput, latency, chain, breakdown = axes[0][0], axes[0][1], axes[1][0], axes[1][1]

    # Throughput per scenario, log scale, with DF targets and goals.
    width = 0.8 / max(len(engines), 1)
    positions = list(range(len(THROUGHPUT_SCENARIOS)))
    for i, engine in enumerate(engines):
        values = [
            _scenario(document, s, engine).get("throughput_per_s") or 0.0
            for s in THROUGHPUT_SCENARIOS
        ]
        xs = [p + (i - (len(engines) - 1) / 2) * width for p in positions]
        bars = throughput.bar(
            xs, values, width, label=ENGINE_LABELS[engine], color=ENGINE_COLORS[engine]
        )
        throughput.bar_label(bars, labels=[_num(v) for v in values], fontsize=7, padding=1)
    for p, scenario in zip(positions, THROUGHPUT_SCENARIOS, strict=True):
        low, high = DF_TARGETS[scenario]
        throughput.hlines(
            high,
            p - 0.45,
            p + 0.45,
            colors="#cf222e",
            linestyles="--",
            linewidth=1.5,
            label="Durable Functions target" if p == 0 else None,
        )
        goal = GOALS[scenario].minimum
        throughput.hlines(
            goal,
            p - 0.45,
            p + 0.45,
            colors="#1a7f37",
            linewidth=2,
            label="issue 6 goal" if p == 0 else None,
        )
    throughput.set_yscale("log")
    throughput.set_xticks(
        positions, [f"{s}\n({SCENARIOS[s].unit}/s)" for s in THROUGHPUT_SCENARIOS], fontsize=8
    )
    throughput.set_title("Throughput (higher is better)")
    throughput.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=3)

    # Latency p50 / p99 per engine.
    labels, p50s, p99s = [], [], []
    for engine in engines:
        s = _scenario(document, "latency", engine)
        labels.append(ENGINE_LABELS[engine])
        p50s.append(s.get("p50_ms") or 0.0)
        p99s.append(s.get("p99_ms") or 0.0)
    xs = list(range(len(labels)))
    bars50 = latency.bar([x - 0.2 for x in xs], p50s, 0.4, label="p50", color="#1f6feb")
    bars99 = latency.bar([x + 0.2 for x in xs], p99s, 0.4, label="p99", color="#9ec5fe")
    latency.bar_label(bars50, labels=[_num(v) for v in p50s], fontsize=7)
    latency.bar_label(bars99, labels=[_num(v) for v in p99s], fontsize=7)
    if GOALS["latency"].maximum:
        latency.axhline(GOALS["latency"].maximum, color="#1a7f37", label="goal: p50 ≤ 30 ms")
    latency.set_yscale("log")
    latency.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    latency.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    latency.set_xticks(xs, labels, fontsize=8)
    latency.set_ylabel("ms")
    latency.set_title("Start → completed, one activity (lower is better)")
    latency.legend(fontsize=7)

    # Replay growth with the cache on and off.
    summary = _get(document, "summary", "chain") or {}
    lengths = summary.get("lengths") or []
    twin = chain.twinx()
    for label, style in (("cache_on", "-"), ("cache_off", "--")):
        data = summary.get(label) or {}
        if "cpu_s" not in data:
            continue
        name = label.replace("_", " ")
        chain.plot(
            lengths,
            data["cpu_s"],
            style,
            marker="o",
            color="#1f6feb",
            label=f"worker CPU s, {name}",
        )
        twin.plot(
            lengths,
            data["resumes"],
            style,
            marker="s",
            color="#bf8700",
            label=f"orchestrator resumes, {name}",
        )
    chain.set_xlabel("chain length N (activities)")
    chain.set_ylabel("worker CPU seconds")
    twin.set_ylabel("orchestrator resumes (replay work)")
    chain.set_title("N-step chain: replay work, instance cache on vs off")
    handles = chain.get_legend_handles_labels()
    twin_handles = twin.get_legend_handles_labels()
    chain.legend(handles[0] + twin_handles[0], handles[1] + twin_handles[1], fontsize=7)

    # Where durable_ext's wall time per unit goes.
    names: list[str] = []
    worker: list[float] = []
    storage: list[float] = []
    others: list[float] = []
    for scenario in SCENARIOS:
        s = _scenario(document, scenario, "durable_ext")
        rate = s.get("throughput_per_s")
        if not rate or s.get("cpu_ms_per_unit") is None:
            continue
        wall = 1000 / rate
        names.append(scenario)
        worker.append(s["cpu_ms_per_unit"] / wall * 100)
        storage.append((s.get("storage_cpu_ms_per_unit") or 0.0) / wall * 100)
        others.append((s.get("other_cpu_s") or 0.0) * 1000 / (s.get("units") or 1) / wall * 100)
    xs = list(range(len(names)))
    breakdown.bar(xs, worker, label="worker process CPU", color="#1f6feb")
    breakdown.bar(xs, storage, bottom=worker, label="Azurite CPU", color="#8250df")
    stacked = [w + a for w, a in zip(worker, storage, strict=True)]
    breakdown.bar(
        xs, others, bottom=stacked, label="other processes on the machine", color="#ffb3b3"
    )
    breakdown.axhline(100, color="#57606a", linewidth=1, linestyle=":")
    breakdown.axhline(200, color="#57606a", linewidth=1, linestyle=":")
    tops = [x + o for x, o in zip(stacked, others, strict=True)]
    breakdown.set_ylim(0, max([210.0, *tops]) * 1.05)
    breakdown.set_xticks(xs, names, fontsize=8)
    breakdown.set_ylabel("% of one core over the wall time (2 cores = 200%)")
    breakdown.set_title("durable_ext: who used the CPU while it ran")
    breakdown.legend(fontsize=7)

    figure.suptitle(
        f"durable_ext vs peers — {document.get('generated_at', '')}"
        + (" (quick run)" if document.get("quick") else ""),
        fontsize=11,
    )
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write(document: dict[str, Any], markdown: Path, chart: Path) -> None:
    """Write the report and its chart (the chart is linked by file name, next to the report)."""
    render_chart(document, chart)
    markdown.parent.mkdir(parents=True, exist_ok=True)
    markdown.write_text(render_markdown(document, chart.name))


def main(argv: Sequence[str] | None = None) -> int:
    from .suite import DEFAULT_CHART, DEFAULT_MARKDOWN, DEFAULT_RESULTS

    parser = argparse.ArgumentParser(description="Render the performance report from results.")
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    parser.add_argument("--markdown", type=Path, default=DEFAULT_MARKDOWN)
    parser.add_argument("--chart", type=Path, default=DEFAULT_CHART)
    args = parser.parse_args(argv)
    write(json.loads(args.results.read_text()), args.markdown, args.chart)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
