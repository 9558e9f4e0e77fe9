"""Issue 20's goals as ratios against the peers of the same run (bench/peer_goals.py)."""

from __future__ import annotations

from typing import Any

from bench.peer_goals import peer_goals_section, peer_verdicts
from bench.results import Results, from_json


def _results(**scenarios: dict[str, dict[str, Any]]) -> Results:
    return from_json(
        {
            "generated_at": "2026-01-01T12:00:00+00:00",
            "duration_s": 600.0,
            "runs": 3,
            "environment": {},
            "engines": ["durable_ext", "dbos", "durabletask"],
            "summary": {"scenarios": scenarios},
        }
    )


def _by_scenario(results: Results) -> dict[str, Any]:
    return {v.scenario: v for v in peer_verdicts(results)}


def test_throughputs_are_judged_against_the_faster_peer() -> None:
    verdicts = _by_scenario(
        _results(
            sequential={
                "durable_ext": {"throughput_per_s": 300.0},
                "dbos": {"throughput_per_s": 250.0},
                "durabletask": {"throughput_per_s": 100.0},
            },
            fanout={
                "durable_ext": {
                    "throughput_per_s": 500.0,
                    "storage_cpu_ms_per_unit": 1.6,
                    "cpu_ms_per_unit": 0.8,
                    "requests_total_per_unit": 1.3,
                },
                "dbos": {"throughput_per_s": 100.0},
                "durabletask": {"throughput_per_s": 800.0, "cpu_ms_per_unit": 1.0},
            },
        )
    )
    assert verdicts["sequential"].met is True
    assert verdicts["sequential"].now == "1.20× DBOS, 3.00× durabletask"
    fanout = verdicts["fanout"]
    assert fanout.met is False
    # Azurite's 1.6 ms of CPU per activity allows 625/s: below durabletask's 800/s.
    assert "bounded by Azurite" in fanout.why and "625/s" in fanout.why
    assert verdicts["events"].met is None


def test_hellocities_needs_both_peers_and_latency_is_a_ceiling() -> None:
    verdicts = _by_scenario(
        _results(
            hellocities={
                "durable_ext": {"throughput_per_s": 50.0},
                "dbos": {"throughput_per_s": 45.0},
                "durabletask": {"throughput_per_s": 70.0},
            },
            latency={"durable_ext": {"p50_ms": 9.0}, "dbos": {"p50_ms": 5.0}},
        )
    )
    # 1.11× DBOS (≥ 1.0) but 0.71× durabletask (< 0.8).
    assert verdicts["hellocities"].met is False
    assert verdicts["latency"].met is False  # 1.8× DBOS's p50, over 1.5×
    text = peer_goals_section(list(verdicts.values()))
    assert "| hellocities | 1.11× DBOS, 0.71× durabletask |" in text
    faster = _by_scenario(
        _results(latency={"durable_ext": {"p50_ms": 7.0}, "dbos": {"p50_ms": 5.0}})
    )
    assert faster["latency"].met is True
