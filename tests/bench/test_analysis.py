"""The figures the report derives (bench/analysis.py) and the goal verdicts (bench/verdicts.py),
on made-up results."""

from __future__ import annotations

from typing import Any

import pytest

from bench import analysis
from bench.results import Results, ScenarioSummary, from_json
from bench.verdicts import goal_gap


def _results(**parts: Any) -> Results:
    return from_json(
        {
            "generated_at": "2026-01-01T12:00:00+00:00",
            "duration_s": 600.0,
            "runs": 3,
            "environment": {},
            "engines": ["durable_ext", "dbos"],
            **parts,
        }
    )


def _scenarios(**figures: dict[str, Any]) -> dict[str, Any]:
    """summary.scenarios with durable_ext's figures per scenario."""
    return {"scenarios": {name: {"durable_ext": f} for name, f in figures.items()}}


def test_time_per_unit_is_per_activity_event_or_latency_run() -> None:
    results = _results(
        sizes={"hellocities_steps": 5},
        summary=_scenarios(
            sequential={"throughput_per_s": 200.0},
            hellocities={"throughput_per_s": 50.0},
            latency={"throughput_per_s": 1.0, "p50_ms": 12.5},
        ),
    )

    assert analysis.unit_ms(results, "sequential", "durable_ext") == pytest.approx(5.0)
    # 50 orchestrations/s of 5 activities each: 4 ms per activity
    assert analysis.unit_ms(results, "hellocities", "durable_ext") == pytest.approx(4.0)
    assert analysis.unit_ms(results, "latency", "durable_ext") == 12.5
    assert analysis.unit_ms(results, "fanout", "durable_ext") is None
    assert analysis.unit_ms(results, "sequential", "dbos") is None


def test_floor_ratio_divides_by_the_lean_dtfx_step_else_the_sdk_one() -> None:
    summary = _scenarios(sequential={"throughput_per_s": 100.0})
    floor = {"variants": ["dtfx", "dtfx_lean"], "dtfx": {"step_ms": 20.0}}
    lean = {**floor, "dtfx_lean": {"step_ms": 4.0}}

    with_lean = _results(summary=summary, raw={"floor": lean})
    sdk_only = _results(summary=summary, raw={"floor": floor})
    no_floor = _results(summary=summary)

    assert analysis.floor_reference(with_lean) == ("dtfx_lean", 4.0)
    assert analysis.floor_ratio(with_lean, "sequential", "durable_ext") == pytest.approx(2.5)
    assert analysis.floor_ratio(sdk_only, "sequential", "durable_ext") == pytest.approx(0.5)
    assert analysis.floor_ratio(no_floor, "sequential", "durable_ext") is None


def test_goal_values_take_the_weaker_replay_ratio_and_the_steeper_growth() -> None:
    replay = {
        "scenarios": [
            {
                "scenario": scenario,
                "events": 10_000,
                "durable_ext": {"cpu_median_s": 0.04},
                "sdk": {"cpu_median_s": 0.34},
                "wall_ratio": wall,
                "cpu_ratio": cpu,
                "cpu_ratios": {"replay_only": 9.0},
            }
            for scenario, wall, cpu in (("fan_out", 2.0, 2.0), ("chain", 8.3, 7.9))
        ]
    }
    figures = ("wall_s", "cpu_s", "storage_cpu_s", "invocations", "requests", "resumes")
    series = {key: [1] for key in (*figures, "replayed_resumes", "history_query_bytes")}
    chain = {
        "lengths": [50],
        "cache_on": {**series, "exponent_resumes": 1.0, "exponent_cpu": 1.2},
    }
    results = _results(
        raw={"replay": replay, "idle": {"error": "killed"}},
        summary={**_scenarios(fanout={"throughput_per_s": 590.0}), "chain": chain},
    )

    values = analysis.goal_values(results)

    assert values["replay"] == 7.9
    assert values["linear_replay"] == 1.2
    assert values["fanout"] == 590.0
    assert values["sequential"] is None
    assert values["latency"] is None
    assert values["idle_rss"] is None


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("sequential", 250.0, "met (2.5× the goal)"),
        ("sequential", 50.0, "**not met**: 50% of the goal, 2.0× short"),
        ("latency", 14.4, "met (14, limit 30 ms)"),
        ("latency", 60.0, "**not met**: 2.0× the limit"),
        ("idle_rss", None, "not measured"),
    ],
)
def test_goal_gap_says_how_far_from_the_goal(key: str, value: float | None, says: str) -> None:
    assert goal_gap(key, value) == says


def test_speedup_is_memory_over_disk_for_rates_and_disk_over_memory_for_latency() -> None:
    disk = ScenarioSummary(throughput_per_s=50.0, p50_ms=20.0)
    memory = ScenarioSummary(throughput_per_s=60.0, p50_ms=10.0)

    assert analysis.speedup("hellocities", disk, memory) == pytest.approx(1.2)
    assert analysis.speedup("latency", disk, memory) == pytest.approx(2.0)
    assert analysis.speedup("hellocities", disk, None) is None
    assert analysis.speedup("hellocities", disk, ScenarioSummary()) is None


def test_others_busy_over_the_successful_runs_smallest_first() -> None:
    runs = [
        {"wall_s": 10.0, "other_cpu_s": 5.0},
        {"wall_s": 10.0, "other_cpu_s": 1.0},
        {"error": "exit status 1"},
        {"wall_s": 4.0},
    ]
    results = _results(raw={"scenarios": {"fanout": {"durable_ext": runs}}})

    assert analysis.others_busy_during_scenarios(results) == [0.0, 0.1, 0.5]
    assert analysis.others_busy(ScenarioSummary(other_cpu_s=2.0, wall_s=8.0)) == 0.25
    assert analysis.others_busy(ScenarioSummary(other_cpu_s=2.0)) is None


def test_within_run_is_between_the_start_and_the_end_of_the_suite() -> None:
    results = _results()  # 12:00 for 10 minutes

    assert analysis.within_run(results, "2026-01-01T12:05:00+00:00")
    assert not analysis.within_run(results, "2026-01-01T12:11:00+00:00")
    assert analysis.within_run(results, "not a date")  # unknown: taken as the run's own
