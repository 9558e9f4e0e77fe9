"""What the suite runs: the scenarios, their sizes, and the figures they are judged against."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "CHAIN_STEPS",
    "DF_TARGETS",
    "FULL",
    "GOALS",
    "QUICK",
    "SCENARIOS",
    "THROUGHPUT_SCENARIOS",
    "Goal",
    "Scenario",
    "Sizes",
    "expected_sum",
]


@dataclass(frozen=True, slots=True)
class Sizes:
    """How big each scenario is. `FULL` is the issue's; `QUICK` exercises the machinery only."""

    sequential: int = 200
    """Activities called one after another by one orchestration."""
    fanout: int = 1000
    """Activities fanned out at once by one orchestration, then summed."""
    hellocities: int = 500
    """Orchestrations started at once..."""
    hellocities_steps: int = 5
    """...each calling this many activities in sequence (HelloCities5)."""
    events: int = 500
    """External events one orchestration waits for in sequence."""
    latency: int = 200
    """One-activity orchestrations started and awaited one at a time (after the warm-up)."""
    chain: tuple[int, ...] = (50, 100, 200)
    """Chain lengths for the replay-growth measurement (instance cache on and off)."""
    episode_positions: tuple[int, ...] = (0, 1_000, 2_500, 5_000, 10_000)
    """Steps of a cached chain at which a window of episodes is measured (bench/episode.py)..."""
    episode_window: int = 100
    """...and the episodes in each window."""
    idle: int = 10_000
    """Orchestrations left waiting for an event while the worker's memory is measured."""
    replay_events: int = 10_000
    """History size for bench/replay.py."""
    floor_steps: int = 100
    """Raw storage steps timed per floor run."""
    floor_parallel: int = 32
    """Concurrent chains of raw storage steps for the parallel floor."""
    entity_ops: int = 2000
    """Entity operations signalled to one entity, then over 100 entities (bench/entities.py)."""
    repeat_runs: int = 20
    """Fan-outs (of `fanout` activities) run one after another on one hub (bench/repeat.py)..."""
    repeat_probe: int = 10
    """...and the passes of the raw-storage probe before each."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


FULL = Sizes()
QUICK = Sizes(
    sequential=4,
    fanout=8,
    hellocities=3,
    hellocities_steps=2,
    events=4,
    latency=3,
    chain=(3, 6),
    episode_positions=(0, 20, 50),
    episode_window=5,
    idle=20,
    replay_events=200,
    floor_steps=5,
    floor_parallel=4,
    entity_ops=20,
    repeat_runs=3,
    repeat_probe=2,
)


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    unit: str
    """What the throughput counts (per second)."""
    per: str
    """What `× floor` and per-unit costs are per (activity, event, run)."""
    description: str


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("sequential", "activities", "activity", "one orchestration, 200 no-op activities"),
        Scenario("fanout", "activities", "activity", "one orchestration fanning out 1,000 no-ops"),
        Scenario("hellocities", "orchestrations", "orchestration", "500 × 5 sequential activities"),
        Scenario("events", "events", "event", "one orchestration waiting for 500 events in turn"),
        Scenario("latency", "runs", "run", "start → completed of a one-activity orchestration"),
    )
}
THROUGHPUT_SCENARIOS = ("sequential", "fanout", "hellocities", "events")
CHAIN_STEPS = "chain"


@dataclass(frozen=True, slots=True)
class Goal:
    """A target of issue 6 (``minimum`` for throughputs and ratios, ``maximum`` for costs)."""

    key: str
    label: str
    minimum: float | None = None
    maximum: float | None = None
    unit: str = ""
    df_target: str = ""
    """Durable Functions' published per-node target on Azure Storage, as text."""
    extra: dict[str, Any] = field(default_factory=dict)

    def met(self, value: float | None) -> bool | None:
        if value is None:
            return None
        if self.minimum is not None and value < self.minimum:
            return False
        return not (self.maximum is not None and value > self.maximum)


# Durable Functions' published targets (Azure Storage provider, one node), as quoted in issue 6.
DF_TARGETS: dict[str, tuple[float, float]] = {
    "sequential": (5.0, 5.0),
    "fanout": (100.0, 100.0),
    "fanin": (150.0, 150.0),
    "events": (50.0, 50.0),
    "hellocities": (32.0, 48.0),
}

GOALS: dict[str, Goal] = {
    g.key: g
    for g in (
        Goal("sequential", "sequential", minimum=100, unit="activities/s", df_target="5/s"),
        Goal(
            "fanout",
            "fanout",
            minimum=500,
            unit="activities/s",
            df_target="100/s fan-out, 150/s fan-in",
        ),
        Goal(
            "hellocities", "hellocities", minimum=60, unit="orchestrations/s", df_target="32–48/s"
        ),
        Goal("events", "events", minimum=300, unit="events/s", df_target="50/s"),
        Goal("replay", "replay speed-up vs azure-functions-durable 1.7", minimum=5, unit="x"),
        Goal("latency", "latency p50", maximum=30, unit="ms"),
        Goal(
            "linear_replay", "replay work growth exponent (1 = linear, 2 = quadratic)", maximum=1.3
        ),
        Goal("idle_rss", "worker RSS with 10,000 idle orchestrations", maximum=250, unit="MB"),
    )
}


def expected_sum(count: int) -> int:
    """The scenarios' activities return their index (0..count-1); the orchestrations sum them."""
    return count * (count - 1) // 2
