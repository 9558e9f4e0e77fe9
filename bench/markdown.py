"""docs/performance.md from the results: the header, the summary and goals, the scenario details
and the peers; the measurement sections are in bench/storage_sections.py and
bench/engine_sections.py."""

from __future__ import annotations

from collections.abc import Sequence

from .analysis import floor_ratio, goal_values, others_busy_during_scenarios, unit_ms
from .engine_sections import (
    chain_section,
    entities_section,
    episode_section,
    idle_section,
    profile_section,
    replay_section,
)
from .formatting import ENGINE_LABELS, num, table
from .http_analysis import http_markdown
from .method import METHOD
from .peer_goals import part_verdicts, peer_goals_section, peer_verdicts
from .repeat_analysis import repeat_markdown
from .results import ChainSeries, Idle, Results
from .scale_out import scale_out_markdown
from .storage_sections import floor_section, levers_section, requests_section, sensitivity_section
from .verdicts import bound_analysis, goal_gap, sensitivity_sentence
from .workloads import DF_TARGETS, GOALS, SCENARIOS, THROUGHPUT_SCENARIOS

__all__ = ["render_markdown"]

_STEP_PHRASES = {
    "dtfx": "a step in DTFx order",
    "handoff": "a handoff step",
    "result_in_memory": "the engine's sequential shape with the result handed over in memory",
}


def _summary_table(results: Results, engines: Sequence[str]) -> str:
    header = [
        "scenario",
        "unit",
        *[ENGINE_LABELS[e] for e in engines],
        "DF target",
        "goal",
        "verdict (durable_ext)",
    ]
    rows: list[list[str]] = []
    values = goal_values(results)
    for scenario in THROUGHPUT_SCENARIOS:
        low, high = DF_TARGETS[scenario]
        target = f"{low:g}/s" if low == high else f"{low:g}–{high:g}/s"
        if scenario == "fanout":
            target += f" (fan-in {DF_TARGETS['fanin'][0]:g}/s)"
        goal = GOALS[scenario]
        cells = []
        for engine in engines:
            s = results.scenario(scenario, engine)
            cell = num(s.throughput_per_s if s else None)
            if s and not s.all_correct:
                cell += " (wrong output)"
            if s and s.error:
                cell = "failed"
            cells.append(cell)
        rows.append(
            [
                scenario,
                SCENARIOS[scenario].unit + "/s",
                *cells,
                target,
                f"≥ {goal.minimum:g}",
                goal_gap(scenario, values[scenario]),
            ]
        )
    latency_cells = []
    for engine in engines:
        s = results.scenario("latency", engine)
        latency_cells.append(f"{num(s.p50_ms if s else None)} / {num(s.p99_ms if s else None)}")
    rows.append(
        [
            "latency",
            "ms p50 / p99",
            *latency_cells,
            "—",
            f"p50 ≤ {GOALS['latency'].maximum:g}",
            goal_gap("latency", values["latency"]),
        ]
    )
    rows.append(
        [
            "replay (10k events)",
            "× azure-functions-durable 1.7",
            num(values["replay"], suffix="×"),
            *["n/a"] * (len(engines) - 1),
            "—",
            "≥ 5×",
            goal_gap("replay", values["replay"]),
        ]
    )
    chain = results.summary.chain
    on = chain.cache_on if chain else None
    off = chain.cache_off if chain else None
    rows.append(
        [
            "chain replay growth",
            "exponent (1 linear, 2 quadratic)",
            f"{num(values['linear_replay'], 2)} (cache off: "
            f"{num(off.exponent_resumes if isinstance(off, ChainSeries) else None, 2)})"
            if on
            else "—",
            *["n/a"] * (len(engines) - 1),
            "—",
            "linear",
            goal_gap("linear_replay", values["linear_replay"]),
        ]
    )
    idle_count = results.raw.idle.count if isinstance(results.raw.idle, Idle) else 0
    rows.append(
        [
            f"idle worker RSS ({idle_count:,} waiting)",
            "MB",
            num(values["idle_rss"], 0),
            *["n/a"] * (len(engines) - 1),
            "—",
            "≤ 250",
            goal_gap("idle_rss", values["idle_rss"]),
        ]
    )
    return table(header, rows)


def _details_table(results: Results, engines: Sequence[str]) -> str:
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
            s = results.scenario(scenario, engine)
            if s is None:
                continue
            if s.error:
                rows.append([scenario, engine, f"failed: {s.error}", *[""] * 10])
                continue
            ops = s.requests_per_unit or s.sql_statements_per_unit
            rate = num(s.throughput_per_s)
            if scenario == "latency":
                rate = f"p50 {num(s.p50_ms)} ms"
            rows.append(
                [
                    scenario,
                    ENGINE_LABELS[engine],
                    rate,
                    num(s.wall_s, 2),
                    num(s.cpu_s, 2),
                    num(s.storage_cpu_s, 2),
                    num(s.other_cpu_s, 2),
                    num(s.cpu_ms_per_unit, 2),
                    num(s.rss_peak_mb, 0),
                    num(ops, 1),
                    num(s.client_requests_per_unit, 1),
                    num(floor_ratio(results, scenario, engine), 2),
                    f"{s.runs - s.failed_runs}/{s.runs}"
                    + ("" if s.all_correct else " (wrong output)"),
                ]
            )
    return table(header, rows)


def _fanout_split(results: Results, engines: Sequence[str]) -> str:
    rows = []
    for engine in engines:
        s = results.scenario("fanout", engine)
        if s is None:
            continue
        wall, last, units = s.wall_s, s.until_last_activity_s, s.units
        if not wall or last is None or not units:
            continue
        rows.append(
            [
                ENGINE_LABELS[engine],
                num(wall, 2),
                num(last, 2),
                num(units / last if last else None),
                num(wall - last, 2),
            ]
        )
    if not rows:
        return ""
    return table(
        [
            "engine",
            "total s",
            "until the last activity ran, s",
            "activities executed/s",
            "fan-in tail after it, s",
        ],
        rows,
    )


def _peers_section(results: Results) -> str:
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
    for engine, reason in results.unavailable_engines.items():
        lines.append(f"- **{engine} was not run**: {reason}.")
    return "\n".join(lines)


def _goals_section(results: Results) -> str:
    values = goal_values(results)
    parts = []
    for key, goal in GOALS.items():
        value = values.get(key)
        parts.append(f"**{goal.label}** — {goal_gap(key, value)}.")
        if key in THROUGHPUT_SCENARIOS or key == "latency":
            scenario = key
            analysis = bound_analysis(results, scenario)
            sensitivity = sensitivity_sentence(results, scenario)
            parts.append(analysis + (" " + sensitivity if sensitivity else ""))
            against_floor = _against_floor(results, scenario)
            if against_floor:
                parts.append(against_floor)
        parts.append("")
    return "\n".join(parts)


def _against_floor(results: Results, scenario: str) -> str:
    """durable_ext's time per unit in a scenario against the floor's steps ("" if unknown)."""
    per_unit = unit_ms(results, scenario, "durable_ext")
    floor = results.raw.floor.steps if results.raw.floor else {}
    keys: list[str] = [k for k in ("dtfx_lean", "handoff_lean", "result_in_memory") if k in floor]
    keys = keys or [k for k in ("dtfx", "handoff") if k in floor]
    steps = [(k, ms) for k in keys if (ms := floor[k].step_ms)]
    if not per_unit or not steps:
        return ""
    per = "activity" if scenario == "hellocities" else SCENARIOS[scenario].per
    comparisons = []
    for k, ms in steps:
        requests = floor[k].requests_per_step
        comparisons.append(
            f"{per_unit / ms:.2f}× {_STEP_PHRASES[k.removesuffix('_lean')]} "
            f"({ms:.1f} ms, {requests if requests is not None else '?'} requests)"
        )
    path = "the lean REST path" if "dtfx_lean" in keys else "the Azure SDK"
    return (
        f"Against the floor (raw storage steps on {path}): {per_unit:.1f} ms per "
        f"{per} is "
        + ", ".join(comparisons[:-1])
        + (" and " if len(comparisons) > 1 else "")
        + comparisons[-1]
        + "."
    )


def _known(value: object) -> str:
    return "?" if value is None else str(value)


def render_markdown(results: Results, chart_name: str) -> str:
    """The whole page; `chart_name` is the chart's file name, next to the page."""
    env = results.environment
    machine = env.machine
    engines = [e for e in results.engines if e in ENGINE_LABELS]
    dirty = env.durable_ext_uncommitted_files
    other = others_busy_during_scenarios(results)
    other_note = (
        f"Other processes kept the machine busy a median {other[len(other) // 2]:.0%} of one "
        f"core during the scenario runs (max {other[-1]:.0%}); "
        if other
        else ""
    )
    method = METHOD if results.method is None else results.method
    quick = ""
    if results.quick:
        quick = " **Quick run (tiny sizes): these figures only show that the machinery works.**"
    header = [
        "# Performance",
        "",
        "<!-- Generated by `make bench` (bench/suite.py, bench/report.py) from bench/results.json."
        " Do not edit by hand: change bench/report.py and run `python -m bench.report`. -->",
        "",
        f"Measured on {results.generated_at} by `make bench` in "
        f"{results.duration_s / 60:.1f} min.{quick} Machine: {_known(machine.cpu)}, "
        f"{_known(machine.cores)} cores, {num(machine.memory_gb, 0)} GB; Python "
        f"{_known(env.python)}, Azurite {_known(env.azurite)} "
        f"({_known(env.azurite_persistence)}) on Node {_known(env.node)}; durable_ext at "
        f"commit `{(env.git_commit or '?')[:10]}`"
        + (f" with {len(dirty)} uncommitted file(s) in durable_ext/" if dirty else "")
        + (
            " (**durable_ext's source changed while the suite ran**: runs may mix two versions)"
            if env.durable_ext_source_at_start != env.durable_ext_source_at_end
            else ""
        )
        + f". {other_note}load average {_known(env.load_average_at_start)} at the start, "
        f"{_known(env.load_average_at_end)} at the end. Medians of "
        f"{results.runs} runs; the method is at the end.",
        "",
        "## Issue 20's goals: ratios against the peers, measured in the same run",
        "",
        peer_goals_section([*peer_verdicts(results), *part_verdicts(results)]),
        "## Summary",
        "",
        "durable_ext (worker + a private Azurite, one process, 2 cores) against DBOS (SQLite) "
        "and durabletask (in-memory, no storage), Durable Functions' published per-node targets "
        "on Azure Storage, and the goals of issue 6.",
        "",
        _summary_table(results, engines),
        "",
        f"![Throughput, latency, replay growth and where durable_ext's time goes]({chart_name})",
        "",
        "## Goals: where each stands and what bounds it",
        "",
        _goals_section(results),
        "## Scenario details",
        "",
        "`CPU s` is the engine process (worker and client; SQLite or the in-memory backend for "
        "the peers), `Azurite CPU s` the storage emulator over the same stretch, `others' CPU s` "
        "the rest of the machine. `× floor` is the time per activity (per event; per run for "
        "latency) over the floor's time per raw DTFx-order step on the lean REST path (the "
        "requests the engine makes, made as cheaply as it makes them).",
        "",
        _details_table(results, engines),
        "",
        "Fan-out, split at the moment the last activity ran (recorded by the activity code):",
        "",
        _fanout_split(results, engines),
        "",
        "## Storage sensitivity: Azurite on disk and in memory",
        "",
        sensitivity_section(results),
        "",
        "## The physical floor",
        "",
        floor_section(results),
        "",
        "## Storage requests per unit (durable_ext)",
        "",
        requests_section(results),
        "",
        "## Where durable_ext's CPU goes",
        "",
        profile_section(results),
        "",
        "## Replay",
        "",
        replay_section(results),
        "",
        "## Replay growth: instance cache on and off",
        "",
        chain_section(results),
        "",
        "## CPU per episode along a cached chain",
        "",
        episode_section(results),
        "",
        "## Entities",
        "",
        entities_section(results),
        "",
        "## Worker memory with idle orchestrations",
        "",
        idle_section(results),
        "",
        "## Fan-out repeated on one hub",
        "",
        *(repeat_markdown(results.summary.repeat) if results.summary.repeat else ["Not run.", ""]),
        "## Scale-out: two worker processes on one hub",
        "",
        *scale_out_markdown(results.summary.scale_out or {}),
        "",
        "## Over HTTP through `durable-ext start`",
        "",
        *http_markdown(results.summary.http),
        "",
        "## Levers",
        "",
        levers_section(results),
        "",
        "## Peers",
        "",
        _peers_section(results),
        "",
        "## Method",
        "",
        *[f"- **{key}**: {text}" for key, text in method.items()],
        "",
        "Run it: `make bench` (installs the `bench` extra, starts its own Azurite, about 15 "
        "minutes), or `.venv/bin/python -m bench --help` for parts, sizes and runs; "
        "`.venv/bin/python -m bench.report` re-renders this page from bench/results.json.",
        "",
    ]
    return "\n".join(header)
