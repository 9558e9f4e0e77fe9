"""The sentences that judge the figures: where each goal stands, what bounds a scenario, whether
Azurite's disk persistence does, whether the CPU per episode stays flat along a chain."""

from __future__ import annotations

from .analysis import others_busy, sensitivity_run, speedup
from .formatting import num
from .results import EpisodeSummary, Results
from .workloads import GOALS, SCENARIOS

__all__ = ["FLAT_SPREAD", "bound_analysis", "episode_sentence", "goal_gap", "sensitivity_sentence"]

SENSITIVITY_MARGIN = 1.1
"""An in-memory run at least this much faster than disk means disk persistence bounds the run."""
CONTENTION_MARGIN = 0.25
"""Other processes busier by this much of a core during the in-memory run than during the disk
runs make a smaller speed-up inconclusive."""
FLAT_SPREAD = 1.5
"""Largest over smallest median CPU per episode along the chain that still counts as flat."""


def goal_gap(key: str, value: float | None) -> str:
    """Where a goal stands: met (by how much) or not (how far short)."""
    goal = GOALS[key]
    if value is None:
        return "not measured"
    if goal.met(value):
        if goal.minimum is not None:
            return f"met ({value / goal.minimum:.1f}× the goal)"
        assert goal.maximum is not None
        shown = num(value, 2 if value < 10 else 0)
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


def bound_analysis(results: Results, scenario: str) -> str:
    """Where durable_ext's time per unit goes in a scenario, and what that says about its bound."""
    s = results.scenario(scenario, "durable_ext")
    rate = s.throughput_per_s if s else None
    cpu_ms = s.cpu_ms_per_unit if s else None
    if s is None or not rate or cpu_ms is None:
        return "No successful durable_ext run to analyse."
    unit = SCENARIOS[scenario].per
    wall_ms = 1000 / rate
    storage_ms = s.storage_cpu_ms_per_unit or 0.0
    other_ms = (s.other_cpu_s or 0.0) * 1000 / max(s.units or 1, 1)
    worker_util, storage_util = cpu_ms / wall_ms, storage_ms / wall_ms
    both = worker_util + storage_util
    requests = s.requests_per_unit
    client_requests = s.client_requests_per_unit
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
    raising, wall_s = s.raise_calls_s, s.wall_s
    if raising and wall_s and raising / wall_s >= 0.8:
        parts.append(
            f"Bound by the client: raising the events one after another took {raising:.2f} s "
            f"of the {wall_s:.2f} s ({raising / wall_s:.0%}); the orchestration kept "
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
    all_requests = s.requests_total_per_unit
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


def sensitivity_sentence(results: Results, scenario: str) -> str:
    """One sentence for a goal's "what bounds it": the same run on an in-memory Azurite, and
    whether Azurite's disk persistence bounds the scenario (empty when not measured)."""
    disk = results.scenario(scenario, "durable_ext")
    memory = sensitivity_run(results, scenario)
    faster = speedup(scenario, disk, memory)
    if faster is None or disk is None or memory is None:
        return ""
    if scenario == "latency":
        goal_value, disk_value = memory.p50_ms, disk.p50_ms
        reached = f"takes p50 {goal_value:.1f} ms against {disk_value:.1f} ms on disk"
    else:
        goal_value, disk_value = memory.throughput_per_s, disk.throughput_per_s
        reached = f"reaches {num(goal_value)}/s ({faster:.2f}× the disk figure)"
    assert goal_value is not None and disk_value is not None  # speedup() needs both
    sends = [s.request_median_ms.get("queue.send") for s in (disk, memory)]
    if sends[0] and sends[1]:
        reached += (
            f", with a median queue send of {sends[1]:.1f} ms against {sends[0]:.1f} ms on disk"
        )
    goal = GOALS.get(scenario)
    met_on_disk = goal.met(disk_value) if goal else None
    met_in_memory = goal.met(goal_value) if goal else None
    busy = [others_busy(disk), others_busy(memory)]
    if faster >= SENSITIVITY_MARGIN:
        verdict = "Azurite's disk persistence bounds this scenario"
        if met_on_disk is False and met_in_memory:
            verdict += ": with the same engine it is what keeps it below the goal"
        elif met_in_memory is False:
            verdict += ", though in memory it still falls short of the goal"
    elif busy[0] is not None and busy[1] is not None and busy[1] - busy[0] > CONTENTION_MARGIN:
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


def episode_sentence(summary: EpisodeSummary) -> str:
    """Whether the CPU per episode stays flat along the chain, from the summary's figures."""
    rows = [(r, r.cpu_ms_median) for r in summary.rows if r.cpu_ms_median]
    if len(rows) < 2:
        return ""
    (first, first_ms), (last, last_ms) = rows[0], rows[-1]
    spread = max(ms for _, ms in rows) / min(ms for _, ms in rows)
    span = (
        f"{first_ms:.2f} ms at step {first.position:,} and "
        f"{last_ms:.2f} ms at step {last.position:,} "
        f"(a history of {last.history_events:,} events)"
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
    cached = [r.engine_cached_ms_median for r, _ in rows if r.engine_cached_ms_median]
    replay = [(r.position, r.engine_replay_ms) for r, _ in rows if r.engine_replay_ms]
    if cached and len(replay) >= 2:
        low, high = f"{min(cached) * 1000:.0f}", f"{max(cached) * 1000:.0f}"
        verdict += (
            f" The engine's own share of a cached episode stays at "
            f"{low if low == high else f'{low}–{high}'} µs, while replaying the whole history (a cache miss) "
            f"grows from {replay[0][1]:.2f} ms at step "
            f"{replay[0][0]:,} to {replay[-1][1]:.1f} ms at step "
            f"{replay[-1][0]:,}."
        )
    return verdict
