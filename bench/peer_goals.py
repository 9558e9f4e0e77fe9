"""Issue 20's goals: durable_ext against its peers as ratios measured in the same run (absolute
figures move ±50% from day to day on this machine; ratios do not), each with met / not met and
why, computed from the results.

The rows of the other parts (HTTP mode, repeated fan-outs, two worker processes) are given by
their own modules' summaries; this module judges the in-process scenarios and renders the table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .formatting import num, table
from .results import Results, ScenarioSummary
from .workloads import SCENARIOS

__all__ = [
    "PEERS",
    "PeerGoal",
    "Verdict",
    "azurite_cap",
    "peer_goals_section",
    "http_row",
    "part_verdicts",
    "peer_verdicts",
    "repeat_verdict",
    "scale_out_row",
    "verdict_cell",
]

PEERS = ("dbos", "durabletask")
PEER_NAMES = {"dbos": "DBOS", "durabletask": "durabletask"}


@dataclass(frozen=True, slots=True)
class PeerGoal:
    """A goal on one scenario: durable_ext over a peer at least `minimum` (throughputs), or its
    p50 latency over the peer's at most `maximum`. `peer` None means the faster peer."""

    scenario: str
    peer: str | None
    minimum: float | None = None
    maximum: float | None = None

    def text(self) -> str:
        who = "the faster peer" if self.peer is None else PEER_NAMES[self.peer]
        if self.maximum is not None:
            return f"≤ {self.maximum:g}× {who}"
        return f"≥ {self.minimum:g}× {who}"


GOALS: dict[str, tuple[PeerGoal, ...]] = {
    "sequential": (PeerGoal("sequential", None, minimum=1.0),),
    "fanout": (PeerGoal("fanout", None, minimum=1.0),),
    "hellocities": (
        PeerGoal("hellocities", "dbos", minimum=1.0),
        PeerGoal("hellocities", "durabletask", minimum=0.8),
    ),
    "events": (PeerGoal("events", "dbos", minimum=2.0),),
    "latency": (PeerGoal("latency", "dbos", maximum=1.5),),
}
"""Issue 20's table: the in-process scenarios."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """One row of the goals table."""

    scenario: str
    now: str
    """The measured ratios, as text."""
    goal: str
    met: bool | None
    why: str


def _figure(s: ScenarioSummary | None, scenario: str) -> float | None:
    if s is None or s.error:
        return None
    return s.p50_ms if scenario == "latency" else s.throughput_per_s


def _ratio(ours: float | None, peer: float | None) -> float | None:
    """Ours over the peer's (for latency lower is better, for throughputs higher)."""
    return ours / peer if ours and peer else None


def azurite_cap(s: ScenarioSummary | None) -> float | None:
    """Units per second Azurite's CPU alone allows: one core over its CPU per unit."""
    if s is None or not s.storage_cpu_ms_per_unit:
        return None
    return 1000 / s.storage_cpu_ms_per_unit


def _why(results: Results, goal: PeerGoal, peer: str, ratio: float, met: bool) -> str:
    scenario = goal.scenario
    ours = results.scenario(scenario, "durable_ext")
    other = results.scenario(scenario, peer)
    assert ours is not None and other is not None
    per = SCENARIOS[scenario].per
    name = PEER_NAMES[peer]
    if scenario == "latency":
        return f"p50 {num(ours.p50_ms)} ms against {name}'s {num(other.p50_ms)} ms" + (
            "." if met else f": {_latency_why(ours)}"
        )
    unit = SCENARIOS[scenario].unit
    text = f"{num(ours.throughput_per_s)} {unit}/s against {name}'s {num(other.throughput_per_s)}"
    if met:
        return text + "."
    cap = azurite_cap(ours)
    engine_ms = ours.cpu_ms_per_unit
    peer_ms = other.cpu_ms_per_unit
    requests = ours.requests_total_per_unit
    share = (
        f" The engine process's own CPU is {num(engine_ms, 2)} ms per {per}"
        + (f" ({name}: {num(peer_ms, 2)} ms)" if peer_ms else "")
        + (f" over {requests:.1f} storage requests" if requests else "")
        + "."
    )
    floor = _floor_step(results) if scenario == "sequential" else None
    if floor is not None and other.throughput_per_s and 1000 / floor < other.throughput_per_s:
        return (
            f"{text}: **bounded by Azurite's round trips on this machine**: the storage calls of "
            f"one step alone, made with no engine at all (the floor: the work item sent, the "
            f"history transaction, the work item deleted), take {floor:.2f} ms, at most "
            f"{num(1000 / floor)} steps/s, below {name}'s {num(other.throughput_per_s)}/s. Each "
            "step's work item must be in its queue before the history that schedules it is "
            "written (DTFx's order, which keeps a crash from losing the activity), so the two "
            "round trips cannot overlap." + share
        )
    if cap is not None and other.throughput_per_s and cap < other.throughput_per_s:
        return (
            f"{text}: **bounded by Azurite on this machine**: Azurite alone used "
            f"{num(ours.storage_cpu_ms_per_unit, 2)} ms of CPU per {per}, so one core of it "
            f"allows at most {num(cap)}/s, below {name}'s {num(other.throughput_per_s)}/s "
            f"whatever the engine does." + share
        )
    if cap is not None:
        return (
            f"{text}; Azurite's CPU would allow {num(cap)}/s, so it is not the bound alone: the "
            f"round trips on the critical path and the engine's work are." + share
        )
    return text + "." + share


CRITICAL_PATH = (
    "table.insert",
    "table.query",
    "queue.send",
    "table.batch",
    "table.merge",
    "table.batch",
    "table.merge",
    "table.get",
)
"""The requests of a one-activity orchestration that follow one another, start to done: the
client's Instances insert (its start message goes at the same time), the worker's history read,
the work item sent, the history written and the Instances row merged (Running), the result's
history written and the row merged (Completed), the client's status read."""


def _floor_step(results: Results) -> float | None:
    """Milliseconds of the floor's step in the engine's sequential shape (raw calls, no engine)."""
    floor = results.raw.floor
    step = floor.steps.get("result_in_memory") if floor else None
    return step.step_ms if step is not None and step.step_ms else None


def _latency_why(ours: ScenarioSummary) -> str:
    worker, client = ours.request_median_ms, ours.client_request_median_ms
    trips = [worker.get(c) or client.get(c) for c in CRITICAL_PATH]
    if any(t is None for t in trips):
        return "not met."
    chain = sum(t for t in trips if t is not None)
    return (
        f"**bounded by Azurite's round trips on this machine**: {len(CRITICAL_PATH)} storage "
        f"requests follow one another from start to done (the client's Instances insert, the "
        f"history read, the work item sent, two history transactions each followed by the "
        f"Instances merge, the client's status read), and at this run's median latency of each "
        f"kind they alone take {chain:.1f} ms, before any engine work or polling delay; the "
        "peer's commits are in-process SQLite calls."
    )


def peer_verdicts(results: Results) -> list[Verdict]:
    """A verdict per in-process scenario of issue 20's table."""
    verdicts = []
    for scenario, goals in GOALS.items():
        ours = _figure(results.scenario(scenario, "durable_ext"), scenario)
        peers = {p: _figure(results.scenario(scenario, p), scenario) for p in PEERS}
        ratios = {p: _ratio(ours, v) for p, v in peers.items()}
        now = ", ".join(
            f"{ratio:.2f}× {PEER_NAMES[p]}" for p, ratio in ratios.items() if ratio is not None
        )
        met_all: list[bool] = []
        whys = []
        for goal in goals:
            peer = goal.peer or _faster_peer(peers)
            ratio = ratios.get(peer) if peer else None
            if peer is None or ratio is None:
                whys.append(f"{goal.text()}: not measured (a peer or durable_ext did not run)")
                continue
            met = (
                ratio <= goal.maximum
                if goal.maximum is not None
                else ratio >= (goal.minimum or 0.0)
            )
            met_all.append(met)
            whys.append(_why(results, goal, peer, ratio, met))
        measured = len(met_all) == len(goals)
        verdicts.append(
            Verdict(
                scenario,
                now or "not measured",
                "; ".join(g.text() for g in goals),
                all(met_all) if measured else None,
                " ".join(whys),
            )
        )
    return verdicts


def _faster_peer(peers: dict[str, float | None]) -> str | None:
    known = {p: v for p, v in peers.items() if v}
    return max(known, key=lambda p: known[p]) if known else None


def verdict_cell(met: bool | None) -> str:
    return {True: "met", False: "**not met**", None: "not measured"}[met]


def peer_goals_table(verdicts: Sequence[Verdict]) -> str:
    """The goals table: scenario, ratios now, goal, verdict."""
    rows = [[v.scenario, v.now, v.goal, verdict_cell(v.met)] for v in verdicts]
    return table(["scenario", "this run", "goal (same run)", "verdict"], rows)


def peer_goals_section(verdicts: Sequence[Verdict]) -> str:
    """The table, then one paragraph per row saying why (`verdicts`: `peer_verdicts` and the
    rows of the other parts)."""
    lines = [peer_goals_table(verdicts), ""]
    for v in verdicts:
        lines += [f"**{v.scenario}** — {verdict_cell(v.met)}. {v.why}", ""]
    return "\n".join(lines)


def repeat_verdict(results: Results) -> Verdict | None:
    """The row of 20 consecutive fan-outs on one hub (bench/repeat_analysis.py's summary)."""
    summary = results.summary.repeat
    if not summary:
        return None
    goal = "last within 10% of first, or the emulator proven the cause"
    ratios, first, last = (
        summary.get("ratios", {}),
        summary.get("first", {}),
        summary.get("last", {}),
    )
    rate = ratios.get("rate")
    if rate is None:
        return Verdict("20 fan-outs on one hub", "not measured", goal, None, summary.get("why", ""))
    now = (
        f"last/first {rate:.2f} ({num(first.get('rate'), 0)} → {num(last.get('rate'), 0)}/s, "
        f"{summary.get('runs')} runs)"
    )
    why = summary.get("why", "") + "."
    chained = summary.get("back_to_back_ratio")
    tail = summary.get("tail") or {}
    if chained is not None:
        now += f"; back to back ×{chained:.2f}"
    if chained is not None and chained >= 0.9:
        why += f" Started back to back, with no pause, the runs after the first reached ×{chained:.2f}."
    elif chained is not None:
        why += (
            f" Started back to back, with no pause, the runs after the first reached ×"
            f"{chained:.2f} of the first: each pays the previous run's tail, the "
            f"{num(tail.get('deletes'), 0)} work-item deletes its last checkpoint left "
            f"({num(tail.get('wall_s'), 1)} s and {num(tail.get('storage_cpu_s'), 2)} s of "
            "Azurite CPU after the client saw the result). That is a fixed cost of every fan-out "
            "(one send and one delete per work item keep it crash-safe), not a slowdown of the "
            "hub: the sustained fan-out rate is the back-to-back one."
        )
    return Verdict("20 fan-outs on one hub", now, goal, summary.get("met"), why)


def scale_out_row(results: Results) -> Verdict | None:
    """The row of two worker processes against one (bench/scale_out.py's summary)."""
    summary = results.summary.scale_out
    if not summary:
        return None
    ratio = summary.get("ratio")
    one, two = summary.get("one") or {}, summary.get("two") or {}
    now = (
        f"{ratio:.2f}× one process ({num(two.get('throughput_per_s'))} vs "
        f"{num(one.get('throughput_per_s'))} orchestrations/s)"
        if ratio is not None
        else "not measured"
    )
    per_cpu = summary.get("per_cpu_ratio")
    why = summary.get("why", "") + "."
    shares = [one.get("storage_core_share"), two.get("storage_core_share")]
    costs = [
        one.get("storage_cpu_ms_per_orchestration"),
        two.get("storage_cpu_ms_per_orchestration"),
    ]
    if all(share is not None and share >= 0.9 for share in shares) and all(costs):
        why += (
            f" **Bounded by Azurite on this machine**: it was busy {shares[0]:.0%} of its one "
            f"Node.js core with one worker process and {shares[1]:.0%} with two, so a second "
            f"process cannot add throughput; with two it spent {num(costs[1], 1)} ms of CPU "
            f"per orchestration against {num(costs[0], 1)} (its message inserts queue up, one "
            "at a time, behind both processes' sends)."
        )
    if per_cpu is not None:
        why += (
            f" Per CPU second of the bench's own processes (workers, client, Azurite) two "
            f"processes do {per_cpu:.2f}× the work of one."
        )
    return Verdict(
        "two worker processes (HelloCities)", now, "≥ 1.0× one process", summary.get("met"), why
    )


def http_row(results: Results) -> Verdict | None:
    """The row of the scenarios over HTTP through `durable-ext start` against in-process
    (bench/http_analysis.py's summary; latency as in-process p50 over HTTP p50)."""
    summary = results.summary.http
    if not summary:
        return None
    ratios = {s: r.get("ratio") for s, r in summary.get("scenarios", {}).items()}
    now = ", ".join(f"{s} {r:.2f}×" for s, r in ratios.items() if r is not None)
    why = summary.get("why", "") + " (where the time goes: the HTTP section below)."
    return Verdict(
        "the same scenarios over HTTP (`durable-ext start`)",
        now or "not measured",
        f"≥ {summary.get('goal_ratio', 0.85):g}× in-process, each",
        summary.get("met"),
        why,
    )


def part_verdicts(results: Results) -> list[Verdict]:
    """The rows of the parts beside the scenarios: HTTP mode, repeats, scale-out."""
    rows = (http_row(results), repeat_verdict(results), scale_out_row(results))
    return [v for v in rows if v is not None]
