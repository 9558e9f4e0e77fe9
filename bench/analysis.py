"""Figures derived from the results: time per unit, ratios to the floor, each goal's value, the
storage-sensitivity speed-up and the other processes' load. Numbers only; the sentences that
judge them are in bench/verdicts.py."""

from __future__ import annotations

from datetime import datetime, timedelta

from .results import ChainSeries, Idle, Replay, Results, ScenarioSummary
from .workloads import THROUGHPUT_SCENARIOS

__all__ = [
    "floor_ratio",
    "floor_reference",
    "goal_values",
    "others_busy",
    "others_busy_during_scenarios",
    "sensitivity_run",
    "speedup",
    "unit_ms",
    "within_run",
]


def floor_reference(results: Results) -> tuple[str, float] | None:
    """The floor step `× floor` divides by, with its key: DTFx order on the lean path, else on
    the SDK (results from before the lean path)."""
    floor = results.raw.floor
    if floor is None:
        return None
    for key in ("dtfx_lean", "dtfx"):
        step = floor.steps.get(key)
        if step is not None and step.step_ms:
            return key, float(step.step_ms)
    return None


def unit_ms(results: Results, scenario: str, engine: str) -> float | None:
    """Milliseconds per activity (per event for events, per run for latency)."""
    s = results.scenario(scenario, engine)
    if s is None:
        return None
    if scenario == "latency":
        return float(s.p50_ms) if s.p50_ms is not None else None
    if not s.throughput_per_s:
        return None
    per_unit = 1000 / s.throughput_per_s
    if scenario == "hellocities":
        per_unit /= results.sizes.hellocities_steps
    return float(per_unit)


def floor_ratio(results: Results, scenario: str, engine: str) -> float | None:
    """Time per unit over the floor's reference step (1.0: one raw step's worth of time)."""
    reference = floor_reference(results)
    unit = unit_ms(results, scenario, engine)
    return unit / reference[1] if unit is not None and reference else None


def goal_values(results: Results) -> dict[str, float | None]:
    """The measured value for each goal key of `workloads.GOALS`."""
    values: dict[str, float | None] = {}
    for scenario in THROUGHPUT_SCENARIOS:
        summary = results.scenario(scenario, "durable_ext")
        values[scenario] = summary.throughput_per_s if summary else None
    latency = results.scenario("latency", "durable_ext")
    values["latency"] = latency.p50_ms if latency else None
    replay = results.raw.replay
    chain_replay = (
        next((s for s in replay.scenarios if s.scenario == "chain"), None)
        if isinstance(replay, Replay)
        else None
    )
    values["replay"] = (
        min(chain_replay.wall_ratio, chain_replay.cpu_ratio) if chain_replay else None
    )
    on = results.summary.chain.cache_on if results.summary.chain else None
    exponents = [on.exponent_resumes, on.exponent_cpu] if isinstance(on, ChainSeries) else []
    known = [e for e in exponents if e is not None]
    values["linear_replay"] = max(known) if known else None
    idle = results.raw.idle
    values["idle_rss"] = idle.rss_idle_mb if isinstance(idle, Idle) else None
    return values


def others_busy(summary: ScenarioSummary | None) -> float | None:
    """The share of one core other processes kept busy over a run (median run)."""
    if summary is None:
        return None
    other, wall = summary.other_cpu_s, summary.wall_s
    return float(other / wall) if other is not None and wall else None


def others_busy_during_scenarios(results: Results) -> list[float]:
    """Each successful scenario run's share of a core other processes used, smallest first."""
    return sorted(
        run.other_cpu_s / run.wall_s
        for engines in results.raw.scenarios.values()
        for runs in engines.values()
        for run in runs
        if run.error is None and run.wall_s
    )


def sensitivity_run(results: Results, scenario: str) -> ScenarioSummary | None:
    """durable_ext's summary of `scenario` on the in-memory Azurite (None if not measured)."""
    sensitivity = results.summary.storage_sensitivity
    found = sensitivity.scenarios.get(scenario) if sensitivity else None
    return found if found is not None and not found.error else None


def speedup(
    scenario: str, disk: ScenarioSummary | None, memory: ScenarioSummary | None
) -> float | None:
    """How many times faster the in-memory run is (rates: memory / disk; latency: p50 ratio)."""
    if disk is None or memory is None:
        return None
    if scenario == "latency":
        on_disk, in_memory = disk.p50_ms, memory.p50_ms
    else:
        on_disk, in_memory = disk.throughput_per_s, memory.throughput_per_s
    if not on_disk or not in_memory:
        return None
    return float(on_disk / in_memory if scenario == "latency" else in_memory / on_disk)


def within_run(results: Results, moment: str) -> bool:
    """Whether `moment` (ISO 8601) falls within the suite run the results are from."""
    try:
        began = datetime.fromisoformat(results.generated_at)
        at = datetime.fromisoformat(moment)
    except ValueError:
        return True
    return began <= at <= began + timedelta(seconds=results.duration_s)
